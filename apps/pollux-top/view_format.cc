// The views' shared parts: names, the methods each reads, sorting, rates and number formats.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_format.h"
#include "view_models.h"

namespace pollux::top {

namespace {

struct ViewNames {
  ViewKind view;
  const char* name;
  const char* title;
};
constexpr ViewNames kViewNames[kViewCount] = {
    {ViewKind::kReactors, "reactors", "Reactors"}, {ViewKind::kThreads, "threads", "Threads"},
    {ViewKind::kPollers, "pollers", "Pollers"},    {ViewKind::kBdevs, "bdevs", "Bdevs"},
    {ViewKind::kVirtio, "virtio", "Virtio"},
};

}  // namespace

const char* ViewName(ViewKind view) { return kViewNames[static_cast<int>(view)].name; }
const char* ViewTitle(ViewKind view) { return kViewNames[static_cast<int>(view)].title; }

std::optional<ViewKind> ParseViewKind(std::string_view name) {
  for (const ViewNames& names : kViewNames) {
    if (name == names.name) return names.view;
  }
  return std::nullopt;
}

std::vector<MethodCall> MethodsOf(ViewKind view) {
  switch (view) {
    case ViewKind::kReactors:
      return {{"framework_get_reactors", nullptr}};
    case ViewKind::kThreads:
      return {{"thread_get_stats", nullptr}};
    case ViewKind::kPollers:
      return {{"thread_get_pollers", nullptr}};
    case ViewKind::kBdevs:
      // The histograms' buckets give the p99 of the last interval, not of the target's life.
      return {{"bdev_get_iostat", Json{{"latency_buckets", true}}}};
    case ViewKind::kVirtio:
      return {{"vhost_get_controllers", nullptr}, {"bdev_virtio_get_controllers", nullptr}};
  }
  return {};
}

Table BuildView(ViewKind view, const std::vector<const SamplePair*>& samples) {
  static const SamplePair kNone;
  auto sample = [&](size_t i) -> const SamplePair& {
    return i < samples.size() && samples[i] != nullptr ? *samples[i] : kNone;
  };
  switch (view) {
    case ViewKind::kReactors:
      return BuildReactorsView(sample(0));
    case ViewKind::kThreads:
      return BuildThreadsView(sample(0));
    case ViewKind::kPollers:
      return BuildPollersView(sample(0));
    case ViewKind::kBdevs:
      return BuildBdevsView(sample(0));
    case ViewKind::kVirtio:
      return BuildVirtioView(sample(0), sample(1));
  }
  return {};
}

void SortTable(Table& table, SortOrder order) {
  if (order.column < 0 || order.column >= static_cast<int>(table.columns.size())) return;
  const size_t c = static_cast<size_t>(order.column);
  const bool numeric = table.columns[c].numeric;
  // Rows without a value ("-") go last whichever the direction: they say nothing yet.
  auto before = [&](const std::vector<Cell>& a, const std::vector<Cell>& b) {
    if (numeric) {
      const std::optional<double>& x = a[c].value;
      const std::optional<double>& y = b[c].value;
      if (x.has_value() != y.has_value()) return x.has_value();
      if (!x.has_value() || *x == *y) return false;
      return order.reversed ? *x < *y : *x > *y;
    }
    return order.reversed ? b[c].text < a[c].text : a[c].text < b[c].text;
  };
  std::stable_sort(table.rows.begin(), table.rows.end(), before);
}

SortOrder DefaultSort(ViewKind view) {
  switch (view) {
    case ViewKind::kReactors:
      return {0, true};  // core 0 first
    case ViewKind::kThreads:
      return {4, false};  // the busiest first
    case ViewKind::kPollers:
      return {3, false};  // the most runs per second first
    case ViewKind::kBdevs:
      return {0, false};  // by name, a bdev's types together
    case ViewKind::kVirtio:
      return {0, false};  // by controller
  }
  return {};
}

std::optional<double> RatePerSecond(uint64_t before, uint64_t after, double seconds) {
  if (!(seconds > 0) || after < before) return std::nullopt;
  return static_cast<double>(after - before) / seconds;
}

std::optional<double> Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return std::nullopt;
  return 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::optional<uint64_t> IntervalPercentile(const Json& before, const Json& after, double percent) {
  // Counts per bucket bound, `after` less `before`. Both lists are short (the buckets that ever
  // held a sample), so a map is fine.
  std::map<uint64_t, int64_t> counts;
  auto add = [&](const Json& buckets, int64_t sign) {
    if (!buckets.is_array()) return;
    for (const Json& bucket : buckets) {
      // Counts and bounds are never negative; a parsed one is unsigned, a built one maybe not.
      if (!bucket.is_array() || bucket.size() != 2 || !bucket[0].is_number_integer() ||
          !bucket[1].is_number_integer() || bucket[0].get<int64_t>() < 0 ||
          bucket[1].get<int64_t>() < 0) {
        continue;
      }
      counts[bucket[0].get<uint64_t>()] += sign * bucket[1].get<int64_t>();
    }
  };
  add(after, 1);
  add(before, -1);
  int64_t total = 0;
  for (const auto& [bound, count] : counts) {
    if (count < 0) return std::nullopt;
    total += count;
  }
  if (total == 0) return std::nullopt;
  const double exact = std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(total);
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(exact)));
  int64_t seen = 0;
  for (const auto& [bound, count] : counts) {
    seen += count;
    if (seen >= rank) return bound;
  }
  return counts.rbegin()->first;
}

std::string FormatQuantity(std::optional<double> value) {
  if (!value) return "-";
  const double v = *value;
  if (v < 100 && v != std::floor(v)) return absl::StrFormat("%.1f", v);
  if (v < 10000) return absl::StrFormat("%.0f", v);
  if (v < 1e6) return absl::StrFormat("%.1fk", v / 1e3);
  if (v < 1e9) return absl::StrFormat("%.2fM", v / 1e6);
  return absl::StrFormat("%.2fG", v / 1e9);
}

std::string FormatPercent(std::optional<double> value) {
  if (!value) return "-";
  return absl::StrFormat("%.1f", *value);
}

Cell QuantityCell(std::optional<double> value) { return Cell{FormatQuantity(value), value}; }
Cell PercentCell(std::optional<double> value) { return Cell{FormatPercent(value), value}; }
Cell TextCell(std::string text) { return Cell{std::move(text), std::nullopt}; }

const Json& ListOf(const std::optional<MethodSample>& sample, std::string_view field) {
  static const Json kEmpty = Json::array();
  if (!sample) return kEmpty;
  const Json& result = sample->result;
  if (field.empty()) return result.is_array() ? result : kEmpty;
  if (!result.is_object()) return kEmpty;
  auto it = result.find(field);
  return it != result.end() && it->is_array() ? *it : kEmpty;
}

std::map<std::string, const Json*> IndexBy(const Json& list,
                                           const std::function<std::string(const Json&)>& key_of) {
  std::map<std::string, const Json*> index;
  if (!list.is_array()) return index;
  for (const Json& object : list) index.emplace(key_of(object), &object);
  return index;
}

double SecondsBetween(const SamplePair& pair) {
  if (!pair.previous || !pair.current) return 0;
  return pair.current->time_s - pair.previous->time_s;
}

const Json* Find(const std::map<std::string, const Json*>& index, const std::string& key) {
  auto it = index.find(key);
  return it != index.end() ? it->second : nullptr;
}

std::optional<double> RateOf(const Json* before, const Json& after, std::string_view field,
                             double seconds) {
  if (before == nullptr) return std::nullopt;
  return RatePerSecond(CounterOf(*before, field), CounterOf(after, field), seconds);
}

std::optional<uint64_t> GrowthOf(const Json* before, const Json& after, std::string_view field) {
  if (before == nullptr) return std::nullopt;
  const uint64_t b = CounterOf(*before, field), a = CounterOf(after, field);
  if (a < b) return std::nullopt;
  return a - b;
}

uint64_t CounterOf(const Json& object, std::string_view field) {
  if (!object.is_object()) return 0;
  auto it = object.find(field);
  if (it == object.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  if (it->is_number_float()) return static_cast<uint64_t>(std::max(0.0, it->get<double>()));
  return 0;
}

std::string TextOf(const Json& object, std::string_view field) {
  if (!object.is_object()) return "";
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

}  // namespace pollux::top
