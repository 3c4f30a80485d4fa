// pollux-top's views as tables: which RPC methods each view reads, and how two samples of them
// become rows (rates from the difference between the samples), sorting, and the number formats.
// Pure functions of JSON, so that they are tested without a target or a terminal.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pollux/rpc/json_rpc.h"

namespace pollux::top {

using rpc::Json;

enum class ViewKind : uint8_t { kReactors, kThreads, kPollers, kBdevs, kVirtio };
inline constexpr int kViewCount = 5;

// "reactors", "threads", "pollers", "bdevs", "virtio": -v's names.
const char* ViewName(ViewKind view);
// "Reactors", ..., "Virtio": the tab bar's.
const char* ViewTitle(ViewKind view);
std::optional<ViewKind> ParseViewKind(std::string_view name);

// One RPC call a view reads.
struct MethodCall {
  const char* method;
  Json params;  // null: none
};
// What `view` reads, in the order its builder takes them.
std::vector<MethodCall> MethodsOf(ViewKind view);

// One method's result at one instant.
struct MethodSample {
  Json result;
  double time_s = 0;  // pollux-top's monotonic clock, in seconds
};
// The two latest samples of one method: rates come from their difference. Without `previous`
// (the first sample, or the first after reconnecting) rates show as "-".
struct SamplePair {
  std::optional<MethodSample> previous;
  std::optional<MethodSample> current;
};

struct Column {
  std::string title;
  int width = 0;         // 0: the room the other columns leave (the last column only)
  bool numeric = false;  // right-aligned, and sorted largest first
};

struct Cell {
  std::string text;
  // The sort key of a numeric column; nullopt ("-", no rate yet) sorts after every number.
  std::optional<double> value;
};

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;
  // Shown in place of the rows when there are none ("no bdev", "this target has no ...").
  std::string empty_note;
};

// Which column the rows are sorted by. Numeric columns go largest first and text ones A to Z;
// `reversed` turns that round. Ties keep the builder's order.
struct SortOrder {
  int column = 0;
  bool reversed = false;
};
void SortTable(Table& table, SortOrder order);
// How each view is sorted until the user presses s or r.
SortOrder DefaultSort(ViewKind view);

// The table of `view` from the samples of MethodsOf(view), in that order.
Table BuildView(ViewKind view, const std::vector<const SamplePair*>& samples);

Table BuildReactorsView(const SamplePair& reactors);
Table BuildThreadsView(const SamplePair& thread_stats);
Table BuildPollersView(const SamplePair& thread_pollers);
Table BuildBdevsView(const SamplePair& iostat);
Table BuildVirtioView(const SamplePair& vhost_controllers, const SamplePair& virtio_controllers);

// ---- Rates and formats (view_format.cc) ----

// A counter's change per second between two samples; nullopt when the interval is not
// positive or the counter went back (the target restarted, an object was replaced).
std::optional<double> RatePerSecond(uint64_t before, uint64_t after, double seconds);
// 100 * part / whole; nullopt when whole is 0.
std::optional<double> Percent(uint64_t part, uint64_t whole);
// The value under which `percent` % of the samples that arrived between two snapshots of a
// histogram lie: each snapshot is bdev_get_iostat's sparse [[upper bound, count], ...]. nullopt
// when no sample arrived or a count went back.
std::optional<uint64_t> IntervalPercentile(const Json& before, const Json& after, double percent);

// Numbers that fit a narrow column: "987", "12.3k", "4.56M"; fractions below 100 keep one
// decimal ("0.5"). nullopt is "-".
std::string FormatQuantity(std::optional<double> value);
// A percentage with one decimal, "-" for nullopt.
std::string FormatPercent(std::optional<double> value);
// A numeric cell: the text and its sort key.
Cell QuantityCell(std::optional<double> value);
Cell PercentCell(std::optional<double> value);
Cell TextCell(std::string text);

// ---- For the builders ----

// The array `field` of a sample's result (an empty array when absent). `field` empty: the
// result itself, when it is an array.
const Json& ListOf(const std::optional<MethodSample>& sample, std::string_view field);
// The objects of `list` by the key `key_of` gives them: to find an object's previous sample.
std::map<std::string, const Json*> IndexBy(const Json& list,
                                           const std::function<std::string(const Json&)>& key_of);
// Seconds between the two samples; 0 without a previous one.
double SecondsBetween(const SamplePair& pair);
// The previous sample's object of the same key, or nullptr.
const Json* Find(const std::map<std::string, const Json*>& index, const std::string& key);
// A counter's change per second from `before` to `after`; nullopt without `before`.
std::optional<double> RateOf(const Json* before, const Json& after, std::string_view field,
                             double seconds);
// How much a counter grew; nullopt without `before` or when it went back.
std::optional<uint64_t> GrowthOf(const Json* before, const Json& after, std::string_view field);

// A JSON field as an unsigned counter (0 when absent or not a number).
uint64_t CounterOf(const Json& object, std::string_view field);
// A JSON field as text ("" when absent; numbers printed).
std::string TextOf(const Json& object, std::string_view field);

}  // namespace pollux::top
