// split_ring_floor_bench: what this machine allows any pair of polling vhost-user-blk initiator
// and target, whoever wrote them. Two OS threads pinned to two cores speak the split virtqueue
// protocol over one ring in shared memory and do nothing else: the driver writes a 3-descriptor
// chain (16-byte request header, 4 KiB data buffer, status byte), its avail entry and, once per
// batch, the avail index; the device reads the avail index, walks the chain, reads the header,
// writes the status byte and the used entry and, once per batch, the used index; the driver
// reaps and resubmits. No notifications (both sides poll), no block layer, no data copied.
//
// What is left is the cache lines that must cross between the two cores per request (the avail
// and used entries, the descriptors, the header and the status byte): the floor under
// bench/vhost_target_bench.py's pollux figures, which add a block device, an application
// framework and pollux-perf on top. It prints IOPS at the given depth and the round-trip
// latency (submit to reap, TSC) percentiles; --json prints one JSON object instead.
#include <getopt.h>
#include <rte_cycles.h>
#include <rte_pause.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace pollux::bench {
namespace {

constexpr uint16_t kRingSize = 256;
constexpr uint16_t kFlagNext = 1;
constexpr uint16_t kFlagWrite = 2;
constexpr uint32_t kDataBytes = 4096;

struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct RequestHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
struct UsedElement {
  uint32_t id;
  uint32_t len;
};

// The ring's three areas on separate cache lines, as a driver lays them out.
struct alignas(64) SplitRing {
  Descriptor desc[kRingSize];
  alignas(64) std::atomic<uint16_t> avail_idx{0};
  uint16_t avail_ring[kRingSize];
  alignas(64) std::atomic<uint16_t> used_idx{0};
  UsedElement used_ring[kRingSize];
};

// One request's buffers (header and status on their own line, as a driver allocates them).
struct alignas(64) RequestSlot {
  RequestHeader header;
  alignas(64) uint8_t status;
};

struct Shared {
  SplitRing ring;
  RequestSlot slots[kRingSize / 3];
  std::unique_ptr<uint8_t[]> data = std::make_unique<uint8_t[]>(kDataBytes);
  std::atomic<bool> stop{false};
};

// Device: serve every avail entry, publish the used index once per batch.
void RunDevice(Shared& s) {
  SplitRing& ring = s.ring;
  uint16_t last_avail = 0;
  uint16_t used = 0;
  while (!s.stop.load(std::memory_order_relaxed)) {
    uint16_t avail = ring.avail_idx.load(std::memory_order_acquire);
    if (avail == last_avail) {
      rte_pause();
      continue;
    }
    for (; last_avail != avail; ++last_avail, ++used) {
      uint16_t head = ring.avail_ring[last_avail % kRingSize];
      const Descriptor& hd = ring.desc[head];
      const auto* header = reinterpret_cast<const RequestHeader*>(hd.addr);
      const Descriptor& data = ring.desc[hd.next];
      const Descriptor& status = ring.desc[data.next];
      // A read of a null device: the header says which sector; nothing is copied.
      uint32_t len = header->sector != UINT64_MAX ? data.len + status.len : 0;
      *reinterpret_cast<uint8_t*>(status.addr) = 0;  // VIRTIO_BLK_S_OK
      ring.used_ring[used % kRingSize] = UsedElement{head, len};
    }
    ring.used_idx.store(used, std::memory_order_release);
  }
}

struct Result {
  double iops = 0;
  LatencySummary latency;
};

// Driver: keep `depth` requests in flight for `seconds`, reaping and resubmitting in batches.
Result RunDriver(Shared& s, unsigned depth, double seconds, uint64_t tsc_hz) {
  SplitRing& ring = s.ring;
  std::vector<uint64_t> submitted_at(kRingSize);
  std::vector<uint64_t> samples;
  samples.reserve(1 << 22);
  uint16_t avail = 0;
  uint16_t last_used = 0;
  uint64_t sector = 0;
  auto submit = [&](unsigned slot, uint64_t now) {
    uint16_t head = static_cast<uint16_t>(slot * 3);
    RequestSlot& r = s.slots[slot];
    r.header = RequestHeader{0, 0, (sector++ * 8) % (1u << 20)};
    ring.desc[head] = {reinterpret_cast<uint64_t>(&r.header), sizeof(RequestHeader), kFlagNext,
                       static_cast<uint16_t>(head + 1)};
    ring.desc[head + 1] = {reinterpret_cast<uint64_t>(s.data.get()), kDataBytes,
                           kFlagNext | kFlagWrite, static_cast<uint16_t>(head + 2)};
    ring.desc[head + 2] = {reinterpret_cast<uint64_t>(&r.status), 1, kFlagWrite, 0};
    ring.avail_ring[avail++ % kRingSize] = head;
    submitted_at[slot] = now;
  };
  uint64_t now = rte_rdtsc();
  for (unsigned i = 0; i < depth; ++i) submit(i, now);
  ring.avail_idx.store(avail, std::memory_order_release);

  const uint64_t start = rte_rdtsc();
  const uint64_t end = start + static_cast<uint64_t>(seconds * static_cast<double>(tsc_hz));
  uint64_t completed = 0;
  while (true) {
    uint16_t used = ring.used_idx.load(std::memory_order_acquire);
    if (used == last_used) {
      if (rte_rdtsc() >= end) break;
      continue;
    }
    now = rte_rdtsc();
    for (; last_used != used; ++last_used) {
      unsigned slot = ring.used_ring[last_used % kRingSize].id / 3;
      if (s.slots[slot].status != 0) std::abort();
      if (samples.size() < samples.capacity()) samples.push_back(now - submitted_at[slot]);
      ++completed;
      submit(slot, now);
    }
    ring.avail_idx.store(avail, std::memory_order_release);
  }
  double elapsed = static_cast<double>(rte_rdtsc() - start) / static_cast<double>(tsc_hz);
  s.stop.store(true, std::memory_order_relaxed);
  Result result;
  result.iops = static_cast<double>(completed) / elapsed;
  result.latency = SummarizeTsc(samples, tsc_hz);
  return result;
}

// The TSC's rate against the steady clock over 100 ms (no EAL here, so not rte_get_tsc_hz).
uint64_t MeasureTscHz() {
  auto t0 = std::chrono::steady_clock::now();
  uint64_t c0 = rte_rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  uint64_t c1 = rte_rdtsc();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<uint64_t>(static_cast<double>(c1 - c0) / wall);
}

int Main(int argc, char** argv) {
  unsigned depth = 32;
  double seconds = 4;
  std::pair<int, int> cpus{0, 1};
  bool json = false;
  static const option kOptions[] = {{"depth", required_argument, nullptr, 'q'},
                                    {"seconds", required_argument, nullptr, 't'},
                                    {"cpus", required_argument, nullptr, 'c'},
                                    {"json", no_argument, nullptr, 'j'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  for (int opt; (opt = getopt_long(argc, argv, "", kOptions, nullptr)) != -1;) {
    absl::Status status;
    if (opt == 'q') {
      auto v = ParseCount("--depth", optarg);
      if (v.ok() && (*v == 0 || *v > kRingSize / 3)) {
        v = absl::InvalidArgumentError(absl::StrFormat("--depth: 1 to %d", kRingSize / 3));
      }
      if (v.ok()) depth = static_cast<unsigned>(*v);
      status = v.status();
    } else if (opt == 't') {
      auto v = ParseCount("--seconds", optarg);
      if (v.ok()) seconds = static_cast<double>(*v);
      status = v.status();
    } else if (opt == 'c') {
      auto v = ParseCorePair(optarg);
      if (v.ok()) cpus = *v;
      status = v.status();
    } else if (opt == 'j') {
      json = true;
    } else {
      std::fprintf(opt == 'h' ? stdout : stderr,
                   "usage: %s [--depth N (32)] [--seconds S (4)] [--cpus DRIVER,DEVICE (0,1)] "
                   "[--json]\n", argv[0]);
      return opt == 'h' ? 0 : 2;
    }
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
      return 2;
    }
  }
  const uint64_t tsc_hz = MeasureTscHz();
  auto shared = std::make_unique<Shared>();
  absl::Status device_pinned;
  std::thread device([&] {
    device_pinned = PinCurrentThread(cpus.second);
    if (device_pinned.ok()) RunDevice(*shared);
  });
  absl::Status pinned = PinCurrentThread(cpus.first);
  Result r;
  if (pinned.ok()) r = RunDriver(*shared, depth, seconds, tsc_hz);
  shared->stop.store(true);
  device.join();
  for (const absl::Status& s : {pinned, device_pinned}) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  if (json) {
    std::printf("{\"iops\": %.0f, \"latency_us\": {\"p50\": %.3f, \"p99\": %.3f}}\n", r.iops,
                r.latency.median_ns / 1000, r.latency.p99_ns / 1000);
  } else {
    std::printf("split ring floor, depth %u, driver core %d, device core %d: %s IOPS, round "
                "trip p50 %s p99 %s\n", depth, cpus.first, cpus.second,
                FormatRate(r.iops).c_str(), FormatNs(r.latency.median_ns).c_str(),
                FormatNs(r.latency.p99_ns).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace pollux::bench

int main(int argc, char** argv) { return pollux::bench::Main(argc, argv); }
