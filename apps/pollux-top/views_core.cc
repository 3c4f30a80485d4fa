// The reactor component's views: reactors (framework_get_reactors), threads (thread_get_stats)
// and pollers (thread_get_pollers).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "view_models.h"

namespace pollux::top {

namespace {

std::string IdKey(const Json& object) { return TextOf(object, "id"); }

}  // namespace

Table BuildReactorsView(const SamplePair& reactors) {
  Table table;
  table.columns = {{"CORE", 4, true},    {"STATE", 8, false},       {"MODE", 9, false},
                   {"BUSY%", 6, true},   {"SLEEP%", 6, true},       {"WAKE/S", 7, true},
                   {"THREADS", 7, true}, {"THREAD NAMES", 0, false}};
  table.empty_note = "no reactor";
  const double seconds = SecondsBetween(reactors);
  const auto previous = IndexBy(ListOf(reactors.previous, "reactors"),
                                [](const Json& r) { return TextOf(r, "core"); });
  for (const Json& reactor : ListOf(reactors.current, "reactors")) {
    const Json* before = Find(previous, TextOf(reactor, "core"));
    std::optional<double> busy, sleep;
    const auto d_busy = GrowthOf(before, reactor, "busy");
    const auto d_idle = GrowthOf(before, reactor, "idle");
    const auto d_sleep = GrowthOf(before, reactor, "sleep");
    const bool sleeping = reactor.value("in_interrupt", false);
    if (d_busy && d_idle && d_sleep) {
      busy = Percent(*d_busy, *d_busy + *d_idle + *d_sleep);
      sleep = Percent(*d_sleep, *d_busy + *d_idle + *d_sleep);
      // A reactor asleep all along has counted nothing yet: its sleep is added when it wakes.
      if (!busy && sleeping && before != nullptr && before->value("in_interrupt", false)) {
        busy = 0.0;
        sleep = 100.0;
      }
    }
    std::vector<std::string> names;
    const Json& threads = reactor.contains("lw_threads") ? reactor["lw_threads"] : Json::array();
    for (const Json& thread : threads) names.push_back(TextOf(thread, "name"));
    table.rows.push_back({QuantityCell(static_cast<double>(CounterOf(reactor, "core"))),
                          TextCell(sleeping ? "sleeping" : "polling"),
                          TextCell(TextOf(reactor, "mode")), PercentCell(busy), PercentCell(sleep),
                          QuantityCell(RateOf(before, reactor, "wakeups", seconds)),
                          QuantityCell(static_cast<double>(names.size())),
                          TextCell(absl::StrJoin(names, ","))});
  }
  return table;
}

Table BuildThreadsView(const SamplePair& thread_stats) {
  Table table;
  table.columns = {{"THREAD", 16, false}, {"ID", 4, true},    {"CORE", 4, true},
                   {"POLLERS", 7, true},  {"BUSY%", 6, true}, {"MSGS/S", 8, true},
                   {"RUNS/S", 8, true},   {"CHANS", 5, true}, {"MOVES", 5, true}};
  table.empty_note = "no thread";
  const double seconds = SecondsBetween(thread_stats);
  const double tick_rate =
      thread_stats.current
          ? static_cast<double>(CounterOf(thread_stats.current->result, "tick_rate"))
          : 0;
  const auto previous = IndexBy(ListOf(thread_stats.previous, "threads"), IdKey);
  for (const Json& thread : ListOf(thread_stats.current, "threads")) {
    const Json* before = Find(previous, IdKey(thread));
    // Busy time over the time between the samples (pollux-top's clock): a thread's idle ticks
    // leave out the time its reactor slept, so busy / (busy + idle) would overstate it.
    std::optional<double> busy;
    if (auto ticks = GrowthOf(before, thread, "busy"); ticks && seconds > 0 && tick_rate > 0) {
      busy = std::min(100.0, 100.0 * static_cast<double>(*ticks) / (seconds * tick_rate));
    }
    const uint64_t pollers =
        CounterOf(thread, "active_pollers_count") + CounterOf(thread, "timed_pollers_count") +
        CounterOf(thread, "paused_pollers_count") + CounterOf(thread, "parked_pollers_count");
    const Json& core = thread.contains("core") ? thread["core"] : Json();
    table.rows.push_back(
        {TextCell(TextOf(thread, "name")),
         QuantityCell(static_cast<double>(CounterOf(thread, "id"))),
         core.is_number_unsigned() ? QuantityCell(core.get<double>()) : QuantityCell(std::nullopt),
         QuantityCell(static_cast<double>(pollers)), PercentCell(busy),
         QuantityCell(RateOf(before, thread, "messages", seconds)),
         QuantityCell(RateOf(before, thread, "poller_runs", seconds)),
         QuantityCell(static_cast<double>(CounterOf(thread, "io_channels_count"))),
         QuantityCell(static_cast<double>(CounterOf(thread, "moves")))});
  }
  return table;
}

Table BuildPollersView(const SamplePair& thread_pollers) {
  Table table;
  // Room for "vhost_blk vhost.0 queue 0".
  table.columns = {{"POLLER", 25, false}, {"THREAD", 12, false}, {"TYPE", 6, false},
                   {"RUNS/S", 7, true},   {"BUSY/S", 7, true},   {"RUNS", 7, true},
                   {"BUSY RUNS", 9, true}};
  table.empty_note = "no poller";
  const double seconds = SecondsBetween(thread_pollers);
  // Pollers by thread id and poller id: names repeat (one poller per channel of a module).
  auto key_of = [](const Json& thread, const Json& poller) {
    return absl::StrCat(TextOf(thread, "id"), "/", TextOf(poller, "id"), "/",
                        TextOf(poller, "name"));
  };
  std::map<std::string, const Json*> previous;
  for (const Json& thread : ListOf(thread_pollers.previous, "threads")) {
    for (const char* list : {"active_pollers", "timed_pollers", "paused_pollers"}) {
      if (!thread.contains(list)) continue;
      for (const Json& poller : thread[list]) previous.emplace(key_of(thread, poller), &poller);
    }
  }
  for (const Json& thread : ListOf(thread_pollers.current, "threads")) {
    for (const char* list : {"active_pollers", "timed_pollers", "paused_pollers"}) {
      if (!thread.contains(list) || !thread[list].is_array()) continue;
      for (const Json& poller : thread[list]) {
        const Json* before = Find(previous, key_of(thread, poller));
        std::string type = list[0] == 'a' ? "active" : list[0] == 't' ? "timed" : "paused";
        if (TextOf(poller, "state") == "parked") type = "parked";
        table.rows.push_back({TextCell(TextOf(poller, "name")), TextCell(TextOf(thread, "name")),
                              TextCell(type),
                              QuantityCell(RateOf(before, poller, "run_count", seconds)),
                              QuantityCell(RateOf(before, poller, "busy_count", seconds)),
                              QuantityCell(static_cast<double>(CounterOf(poller, "run_count"))),
                              QuantityCell(static_cast<double>(CounterOf(poller, "busy_count")))});
      }
    }
  }
  return table;
}

}  // namespace pollux::top
