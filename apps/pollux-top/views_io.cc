// The I/O views: bdevs (bdev_get_iostat) and virtio queues (vhost_get_controllers for the
// vhost-user-blk target's controllers, bdev_virtio_get_controllers for the initiator's).
#include "absl/strings/numbers.h"
#include "view_models.h"

namespace pollux::top {

namespace {

// bdev_get_iostat's fields of one I/O type, and the latency histogram its p99 comes from.
struct IoTypeFields {
  const char* label;
  const char* ops;
  const char* bytes;  // nullptr: the type moves no data
  const char* latency_ticks;
  const char* histogram;  // "read", "write", or "other" (shared by the types below)
};
constexpr IoTypeFields kIoTypes[] = {
    {"read", "num_read_ops", "bytes_read", "read_latency_ticks", "read"},
    {"write", "num_write_ops", "bytes_written", "write_latency_ticks", "write"},
    {"unmap", "num_unmap_ops", "bytes_unmapped", "unmap_latency_ticks", "other"},
    {"wzeroes", "num_write_zeroes_ops", "bytes_zeroed", "write_zeroes_latency_ticks", "other"},
    {"flush", "num_flush_ops", "bytes_flushed", "flush_latency_ticks", "other"},
    {"reset", "num_reset_ops", nullptr, "reset_latency_ticks", "other"},
};

const Json& BucketsOf(const Json& bdev, const char* histogram) {
  static const Json kNone = Json::array();
  auto buckets = bdev.find("latency_buckets");
  if (buckets == bdev.end() || !buckets->is_object()) return kNone;
  auto list = buckets->find(histogram);
  return list != buckets->end() ? *list : kNone;
}

// The p99 of one type over the interval, in microseconds. The "other" histogram is shared, so
// it is that type's only when no other type of its group had I/O in the interval.
std::optional<double> IntervalP99Us(const Json& before, const Json& after, const IoTypeFields& t,
                                    double tick_rate) {
  if (std::string_view(t.histogram) == "other") {
    for (const IoTypeFields& other : kIoTypes) {
      if (&other == &t || std::string_view(other.histogram) != "other") continue;
      if (CounterOf(after, other.ops) != CounterOf(before, other.ops)) return std::nullopt;
    }
  }
  std::optional<uint64_t> ticks =
      IntervalPercentile(BucketsOf(before, t.histogram), BucketsOf(after, t.histogram), 99);
  if (!ticks || tick_rate <= 0) return std::nullopt;
  return static_cast<double>(*ticks) * 1e6 / tick_rate;
}

}  // namespace

Table BuildBdevsView(const SamplePair& iostat) {
  Table table;
  table.columns = {{"BDEV", 16, false}, {"TYPE", 7, false},  {"IOPS", 9, true}, {"MiB/S", 9, true},
                   {"AVG US", 9, true}, {"P99 US", 9, true}, {"OPS", 10, true}};
  table.empty_note = "no bdev";
  if (!iostat.current) return table;
  const Json& now = iostat.current->result;
  const double tick_rate = static_cast<double>(CounterOf(now, "tick_rate"));
  // The target's own clock when both samples have it: exact, whatever the RPC's delays.
  double seconds = SecondsBetween(iostat);
  if (iostat.previous && tick_rate > 0) {
    const uint64_t t0 = CounterOf(iostat.previous->result, "ticks");
    const uint64_t t1 = CounterOf(now, "ticks");
    if (t0 != 0 && t1 > t0) seconds = static_cast<double>(t1 - t0) / tick_rate;
  }
  const auto previous =
      IndexBy(ListOf(iostat.previous, "bdevs"), [](const Json& b) { return TextOf(b, "name"); });
  for (const Json& bdev : ListOf(iostat.current, "bdevs")) {
    const Json* before = Find(previous, TextOf(bdev, "name"));
    for (const IoTypeFields& t : kIoTypes) {
      const uint64_t ops = CounterOf(bdev, t.ops);
      const bool data_type = t.label == kIoTypes[0].label || t.label == kIoTypes[1].label;
      if (!data_type && ops == 0) continue;  // types never used would only fill the screen
      std::optional<double> iops, mib_per_s, avg_us, p99_us;
      if (before != nullptr) {
        iops = RatePerSecond(CounterOf(*before, t.ops), ops, seconds);
        if (t.bytes != nullptr) {
          mib_per_s = RatePerSecond(CounterOf(*before, t.bytes), CounterOf(bdev, t.bytes), seconds);
          if (mib_per_s) *mib_per_s /= 1024.0 * 1024.0;
        }
        const uint64_t ops_before = CounterOf(*before, t.ops);
        const uint64_t ticks_before = CounterOf(*before, t.latency_ticks);
        const uint64_t ticks_now = CounterOf(bdev, t.latency_ticks);
        if (ops > ops_before && ticks_now >= ticks_before && tick_rate > 0) {
          avg_us = static_cast<double>(ticks_now - ticks_before) /
                   static_cast<double>(ops - ops_before) * 1e6 / tick_rate;
          p99_us = IntervalP99Us(*before, bdev, t, tick_rate);
        }
      }
      table.rows.push_back({TextCell(TextOf(bdev, "name")), TextCell(t.label), QuantityCell(iops),
                            QuantityCell(mib_per_s), QuantityCell(avg_us), QuantityCell(p99_us),
                            QuantityCell(static_cast<double>(ops))});
    }
  }
  return table;
}

Table BuildVirtioView(const SamplePair& vhost_controllers, const SamplePair& virtio_controllers) {
  Table table;
  table.columns = {{"CONTROLLER", 14, false}, {"KIND", 6, false}, {"QUEUE", 5, true},
                   {"THREAD", 14, false},     {"REQ/S", 8, true}, {"KICK/S", 8, true},
                   {"INTR/S", 8, true},       {"INFLT", 5, true}};
  table.empty_note =
      "no vhost-user-blk controller (vhost_create_blk_controller) and no "
      "virtio-blk initiator (bdev_virtio_attach_controller)";
  // The target's controllers: a guest's kicks received and interrupts sent.
  {
    const double seconds = SecondsBetween(vhost_controllers);
    std::map<std::string, const Json*> previous;
    for (const Json& ctrlr : ListOf(vhost_controllers.previous, "")) {
      if (!ctrlr.contains("queues")) continue;
      for (const Json& q : ctrlr["queues"]) {
        previous.emplace(TextOf(ctrlr, "ctrlr") + "/" + TextOf(q, "queue"), &q);
      }
    }
    for (const Json& ctrlr : ListOf(vhost_controllers.current, "")) {
      if (!ctrlr.contains("queues") || !ctrlr["queues"].is_array()) continue;
      for (const Json& q : ctrlr["queues"]) {
        const std::string name = TextOf(ctrlr, "ctrlr");
        const Json* before = Find(previous, name + "/" + TextOf(q, "queue"));
        auto rate = [&](const char* field) { return RateOf(before, q, field, seconds); };
        // "vhost.0 queue 1": the index is the last word.
        const std::string queue = TextOf(q, "queue");
        const std::string index = queue.substr(queue.rfind(' ') + 1);
        int number = 0;
        table.rows.push_back(
            {TextCell(name), TextCell("vhost"),
             absl::SimpleAtoi(index, &number) ? Cell{index, number} : TextCell(index),
             TextCell(TextOf(q, "thread")), QuantityCell(rate("requests")),
             QuantityCell(rate("kicks")), QuantityCell(rate("interrupts")),
             QuantityCell(static_cast<double>(CounterOf(q, "in_flight")))});
      }
    }
  }
  // The initiator's: kicks it sent to the back-end; interrupts it asked for (it does not read
  // its call fd: an edge-triggered watch wakes its reactor without a read, so that the count
  // of interrupts received would cost a system call).
  {
    const double seconds = SecondsBetween(virtio_controllers);
    auto queues_of = [](const Json& controller) -> const Json& {
      static const Json kNone = Json::array();
      if (!controller.contains("virtio") || !controller["virtio"].contains("queues")) return kNone;
      return controller["virtio"]["queues"];
    };
    std::map<std::string, const Json*> previous;
    for (const Json& controller : ListOf(virtio_controllers.previous, "")) {
      for (const Json& q : queues_of(controller)) {
        previous.emplace(TextOf(controller, "name") + "/" + TextOf(q, "index"), &q);
      }
    }
    for (const Json& controller : ListOf(virtio_controllers.current, "")) {
      for (const Json& q : queues_of(controller)) {
        const std::string name = TextOf(controller, "name");
        const Json* before = Find(previous, name + "/" + TextOf(q, "index"));
        auto rate = [&](const char* field) { return RateOf(before, q, field, seconds); };
        const uint64_t requests = CounterOf(q, "requests");
        const uint64_t completions = CounterOf(q, "completions");
        table.rows.push_back({TextCell(name), TextCell("virtio"),
                              QuantityCell(static_cast<double>(CounterOf(q, "index"))),
                              TextCell(""), QuantityCell(rate("requests")),
                              QuantityCell(rate("kicks")), QuantityCell(rate("interrupt_arms")),
                              QuantityCell(static_cast<double>(
                                  requests >= completions ? requests - completions : 0))});
      }
    }
  }
  return table;
}

}  // namespace pollux::top
