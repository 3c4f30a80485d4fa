// wakeup_bench: how long a message takes to reach a Thread whose reactor sleeps (interrupt
// mode), beside a bare eventfd + epoll_wait wake-up between the same two cores in the same run.
//
// Sleeping: the sender (the control thread, pinned to the sender core) stamps rte_rdtsc() into
// the message argument and sends it to a Thread on the receiver core, whose reactor has been
// asleep for --gap-us (spin window 0); the handler records rdtsc - stamp. The peer is a pthread
// pinned to the receiver core blocked in epoll_wait on an eventfd that the sender writes after
// stamping. Samples alternate pollux / peer, so both see the same noise.
//
// Busy a moment ago: the same with messages --busy-gap-us apart and a spin window longer than
// the gap, so the reactor never sleeps; the peer spins in epoll_wait(timeout 0) for the same
// window before blocking.
#include <getopt.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "nlohmann/json.hpp"
#include "pollux/env/eal.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux::bench {
namespace {

constexpr char kUsage[] = R"(Usage: pollux-wakeup-bench [OPTIONS]

Wake-up latency of a message to a Thread on a sleeping reactor (interrupt mode), beside a bare
eventfd + epoll_wait wake-up between the same two cores, and the same for a reactor that was
busy a moment ago (spin windows longer than the gap between messages).

Options:
      --cpus A,B            sender core and receiver core (default 0,1)
  -n, --samples N           samples per side on a sleeping receiver (default 2000)
      --gap-us N            pause before each sleeping sample (default 1000)
      --busy-samples N      samples per side and spin window when busy (default 20000)
      --busy-gap-us N       spacing of messages when busy (default 10)
      --spin-windows LIST   spin windows for the busy case, us (default 20,50,100)
      --max-contention PCT  keep only blocks of samples during which other processes took
                            at most PCT% of a core from the two cores (default 10)
      --json                print JSON instead of the table
  -h, --help                print this help
)";

// Sleeping samples are taken in blocks, each judged clean or not by the contention meter.
constexpr uint64_t kSleepingBlock = 100;

struct Options {
  int sender_cpu = 0;
  int receiver_cpu = 1;
  uint64_t samples = 2000;
  uint64_t gap_us = 1000;
  uint64_t busy_samples = 20000;
  uint64_t busy_gap_us = 10;
  std::vector<uint64_t> spin_windows_us = {20, 50, 100};
  double max_contention_pct = 10;
  bool json = false;
};

uint64_t UsToTsc(uint64_t us) { return rte_get_tsc_hz() * us / 1000000; }

void SleepUs(uint64_t us) {
  timespec t = {static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  nanosleep(&t, nullptr);
}

void SpinUntilTsc(uint64_t deadline) {
  while (rte_rdtsc() < deadline) rte_pause();
}

// What a receiver records, written by the receiving core, read by the sender.
struct Samples {
  std::vector<uint64_t> tsc;  // reserved up front: the handler never allocates
  std::atomic<uint64_t> received{0};
};

// ---- pollux receiver ----

Samples* g_pollux_samples = nullptr;

// The message handler: the argument is the sender's rdtsc stamp.
void OnWakeMessage(void* stamp) {
  uint64_t now = rte_rdtsc();
  Samples* s = g_pollux_samples;
  s->tsc.push_back(now - reinterpret_cast<uint64_t>(stamp));
  s->received.fetch_add(1, std::memory_order_release);
}

// ---- bare eventfd + epoll receiver ----

class EventfdReceiver {
 public:
  // spin_tsc: how long to poll (epoll_wait with timeout 0) after an event before blocking.
  EventfdReceiver(int cpu, uint64_t spin_tsc, Samples* samples)
      : samples_(samples), spin_tsc_(spin_tsc) {
    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (event_fd_ < 0 || epoll_fd_ < 0 ||
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) != 0) {
      std::fprintf(stderr, "wakeup_bench: eventfd/epoll: %s\n", strerror(errno));
      std::abort();
    }
    thread_ = std::thread([this, cpu] { Run(cpu); });
    while (!ready_.load(std::memory_order_acquire)) SleepUs(100);
  }
  ~EventfdReceiver() {
    stop_.store(true, std::memory_order_release);
    Notify(0);
    thread_.join();
    close(epoll_fd_);
    close(event_fd_);
  }
  EventfdReceiver(const EventfdReceiver&) = delete;
  EventfdReceiver& operator=(const EventfdReceiver&) = delete;

  // Sender side: publish the stamp, then write the eventfd.
  void Notify(uint64_t stamp) {
    stamp_.store(stamp, std::memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(event_fd_, &one, sizeof(one));
    (void)n;
  }

 private:
  void Run(int cpu) {
    if (absl::Status s = PinCurrentThread(cpu); !s.ok()) {
      std::fprintf(stderr, "wakeup_bench: %s\n", std::string(s.message()).c_str());
      std::abort();
    }
    ready_.store(true, std::memory_order_release);
    uint64_t last_event = 0;
    while (!stop_.load(std::memory_order_acquire)) {
      epoll_event ev;
      // Spin (non-blocking waits) for the spin window after the last event, then block.
      bool spin = spin_tsc_ != 0 && rte_rdtsc() - last_event < spin_tsc_;
      int n = epoll_wait(epoll_fd_, &ev, 1, spin ? 0 : -1);
      if (n <= 0) continue;
      uint64_t now = rte_rdtsc();
      uint64_t value;
      ssize_t r = read(event_fd_, &value, sizeof(value));
      (void)r;
      if (stop_.load(std::memory_order_acquire)) break;
      samples_->tsc.push_back(now - stamp_.load(std::memory_order_acquire));
      samples_->received.fetch_add(1, std::memory_order_release);
      last_event = rte_rdtsc();
    }
  }

  Samples* samples_;
  const uint64_t spin_tsc_;
  int event_fd_ = -1;
  int epoll_fd_ = -1;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<uint64_t> stamp_{0};
  std::thread thread_;
};

// Waits (spinning: the sender's core has nothing else to do) until `s` holds `count` samples.
void AwaitSample(const Samples& s, uint64_t count) {
  while (s.received.load(std::memory_order_acquire) < count) rte_pause();
}

// ---- the two scenarios ----

struct Side {
  LatencySummary latency;
  std::vector<uint64_t> tsc;
};

struct Scenario {
  std::string name;
  uint64_t spin_window_us = 0;
  Side pollux, peer;            // samples of the clean blocks (of all, if none was clean)
  uint64_t reactor_sleeps = 0;  // sleeps of the receiver's reactor during the pollux samples
  uint64_t reactor_wakeups = 0;
  size_t blocks = 0;        // blocks of samples, and those during which other processes
  size_t clean_blocks = 0;  // took at most --max-contention of a core
  double others_pct = 0;    // over the whole scenario
};

// Collects blocks of samples; keeps the clean blocks apart from the others.
struct BlockPool {
  std::vector<uint64_t> all_pollux, all_peer, clean_pollux, clean_peer;
  size_t blocks = 0;
  size_t clean_blocks = 0;

  // Adds pollux[from..] and peer[from..].
  void Add(const std::vector<uint64_t>& pollux, const std::vector<uint64_t>& peer, size_t from,
           bool clean) {
    ++blocks;
    all_pollux.insert(all_pollux.end(), pollux.begin() + from, pollux.end());
    all_peer.insert(all_peer.end(), peer.begin() + from, peer.end());
    if (!clean) return;
    ++clean_blocks;
    clean_pollux.insert(clean_pollux.end(), pollux.begin() + from, pollux.end());
    clean_peer.insert(clean_peer.end(), peer.begin() + from, peer.end());
  }
  void MoveInto(Scenario& sc) {
    sc.blocks = blocks;
    sc.clean_blocks = clean_blocks;
    sc.pollux.tsc = clean_blocks != 0 ? std::move(clean_pollux) : std::move(all_pollux);
    sc.peer.tsc = clean_blocks != 0 ? std::move(clean_peer) : std::move(all_peer);
  }
};

ReactorInfo InfoOf(ReactorRuntime& runtime, int cpu) {
  for (ReactorInfo& info : runtime.Info()) {
    if (info.cpu == cpu) return info;
  }
  std::abort();
}

double OthersPct(const ContentionMeter& meter) {
  ContentionMeter::Result used = meter.Measure();
  return used.others_pct + used.steal_pct;
}

// Sleeping receiver: samples alternate pollux / peer, each after a pause of gap_us and once the
// receiving reactor says it sleeps.
Scenario RunSleeping(const Options& o, ReactorRuntime& runtime, Thread* receiver) {
  Scenario sc;
  sc.name = "sleeping (spin window 0)";
  runtime.SetSpinWindow(std::chrono::microseconds(0));
  Reactor* reactor = runtime.ReactorOnCpu(o.receiver_cpu);
  Samples pollux_samples, peer_samples;
  EventfdReceiver peer(o.receiver_cpu, 0, &peer_samples);
  g_pollux_samples = &pollux_samples;

  ContentionMeter whole({o.sender_cpu, o.receiver_cpu});
  ReactorInfo before = InfoOf(runtime, o.receiver_cpu);
  BlockPool pool;
  for (uint64_t first = 0; first < o.samples; first += kSleepingBlock) {
    uint64_t end = std::min(o.samples, first + kSleepingBlock);
    pollux_samples.tsc.clear();
    peer_samples.tsc.clear();
    pollux_samples.tsc.reserve(kSleepingBlock);
    peer_samples.tsc.reserve(kSleepingBlock);
    pollux_samples.received.store(0);
    peer_samples.received.store(0);
    ContentionMeter meter({o.sender_cpu, o.receiver_cpu});
    for (uint64_t i = 0; i < end - first; ++i) {
      SleepUs(o.gap_us);
      while (!reactor->sleeping()) SleepUs(50);
      uint64_t stamp = rte_rdtsc();
      while (!receiver->SendMessage(&OnWakeMessage, reinterpret_cast<void*>(stamp))) rte_pause();
      AwaitSample(pollux_samples, i + 1);

      SleepUs(o.gap_us);
      peer.Notify(rte_rdtsc());
      AwaitSample(peer_samples, i + 1);
    }
    pool.Add(pollux_samples.tsc, peer_samples.tsc, 0, OthersPct(meter) <= o.max_contention_pct);
  }
  ReactorInfo after = InfoOf(runtime, o.receiver_cpu);
  sc.others_pct = OthersPct(whole);
  sc.reactor_sleeps = after.sleeps - before.sleeps;
  sc.reactor_wakeups = after.wakeups - before.wakeups;
  pool.MoveInto(sc);
  return sc;
}

// Busy a moment ago: messages busy_gap_us apart, spin window `window_us`. The pollux receiver
// and the peer take turns in blocks (not sample by sample: a spinning reactor and a spinning
// peer on one core would share it).
Scenario RunBusy(const Options& o, ReactorRuntime& runtime, Thread* receiver, uint64_t window_us) {
  Scenario sc;
  sc.name = absl::StrFormat("busy a moment ago (spin %lu us, gap %lu us)",
                            static_cast<unsigned long>(window_us),
                            static_cast<unsigned long>(o.busy_gap_us));
  sc.spin_window_us = window_us;
  const uint64_t gap = UsToTsc(o.busy_gap_us);
  Samples pollux_samples, peer_samples;
  pollux_samples.tsc.reserve(o.busy_samples + 1);
  peer_samples.tsc.reserve(o.busy_samples + 1);
  g_pollux_samples = &pollux_samples;
  ContentionMeter meter({o.sender_cpu, o.receiver_cpu});

  // pollux: the first message wakes the reactor; the rest arrive within its spin window.
  runtime.SetSpinWindow(std::chrono::microseconds(window_us));
  ReactorInfo before = InfoOf(runtime, o.receiver_cpu);
  for (uint64_t i = 0; i <= o.busy_samples; ++i) {
    uint64_t stamp = rte_rdtsc();
    while (!receiver->SendMessage(&OnWakeMessage, reinterpret_cast<void*>(stamp))) rte_pause();
    AwaitSample(pollux_samples, i + 1);
    SpinUntilTsc(stamp + gap);
  }
  ReactorInfo after = InfoOf(runtime, o.receiver_cpu);
  sc.reactor_sleeps = after.sleeps - before.sleeps;
  sc.reactor_wakeups = after.wakeups - before.wakeups;
  // Let the reactor go back to sleep before the peer uses its core.
  runtime.SetSpinWindow(std::chrono::microseconds(0));
  SleepUs(5000);

  {
    EventfdReceiver peer(o.receiver_cpu, UsToTsc(window_us), &peer_samples);
    for (uint64_t i = 0; i <= o.busy_samples; ++i) {
      uint64_t stamp = rte_rdtsc();
      peer.Notify(stamp);
      AwaitSample(peer_samples, i + 1);
      SpinUntilTsc(stamp + gap);
    }
  }
  sc.others_pct = OthersPct(meter);
  BlockPool pool;
  // The first sample of each side woke a sleeping receiver: not part of "busy".
  pool.Add(pollux_samples.tsc, peer_samples.tsc, 1, sc.others_pct <= o.max_contention_pct);
  pool.MoveInto(sc);
  return sc;
}

// ---- report ----

void Report(const Options& o, std::vector<Scenario>& scenarios) {
  const uint64_t hz = rte_get_tsc_hz();
  for (Scenario& sc : scenarios) {
    sc.pollux.latency = SummarizeTsc(sc.pollux.tsc, hz);
    sc.peer.latency = SummarizeTsc(sc.peer.tsc, hz);
  }
  if (o.json) {
    nlohmann::json j;
    j["benchmark"] = "wakeup_bench";
    j["sender_cpu"] = o.sender_cpu;
    j["receiver_cpu"] = o.receiver_cpu;
    j["samples"] = o.samples;
    j["gap_us"] = o.gap_us;
    j["busy_samples"] = o.busy_samples;
    j["busy_gap_us"] = o.busy_gap_us;
    j["max_contention_pct"] = o.max_contention_pct;
    for (const Scenario& sc : scenarios) {
      const LatencySummary& p = sc.pollux.latency;
      const LatencySummary& e = sc.peer.latency;
      j["scenarios"].push_back({{"name", sc.name},
                                {"spin_window_us", sc.spin_window_us},
                                {"pollux_ns", {{"median", p.median_ns}, {"p99", p.p99_ns}}},
                                {"eventfd_ns", {{"median", e.median_ns}, {"p99", e.p99_ns}}},
                                {"ratio_median", p.median_ns / e.median_ns},
                                {"samples", p.samples},
                                {"reactor_sleeps", sc.reactor_sleeps},
                                {"reactor_wakeups", sc.reactor_wakeups},
                                {"blocks", sc.blocks},
                                {"clean_blocks", sc.clean_blocks},
                                {"others_cpu_pct", sc.others_pct}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("wakeup_bench: sender core %d -> receiver core %d; send -> handler runs\n",
              o.sender_cpu, o.receiver_cpu);
  for (const Scenario& sc : scenarios) {
    const LatencySummary& p = sc.pollux.latency;
    const LatencySummary& e = sc.peer.latency;
    double ratio = p.median_ns / e.median_ns;
    bool sleeping = sc.spin_window_us == 0;
    std::string title =
        absl::StrFormat("%s: %zu samples each; receiver reactor slept %lu times, woke %lu times",
                        sc.name, p.samples, static_cast<unsigned long>(sc.reactor_sleeps),
                        static_cast<unsigned long>(sc.reactor_wakeups));
    PrintTable(title, sleeping ? "eventfd+epoll" : "eventfd+spin",
               {{"median", FormatNs(p.median_ns), FormatNs(e.median_ns), ratio,
                 sleeping ? (ratio <= 1.2 ? "met (<= 1.20)" : "NOT met (<= 1.20)") : ""},
                {"p99", FormatNs(p.p99_ns), FormatNs(e.p99_ns), p.p99_ns / e.p99_ns, ""}});
    std::printf(
        "  blocks of samples kept: %zu clean of %zu%s; other processes took %.0f%% of a "
        "core meanwhile\n",
        sc.clean_blocks, sc.blocks, sc.clean_blocks == 0 ? " (none clean: all kept)" : "",
        sc.others_pct);
  }
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  enum { kCpus = 256, kGap, kBusySamples, kBusyGap, kWindows, kMaxContention, kJson };
  static const option kLong[] = {
      {"cpus", required_argument, nullptr, kCpus},
      {"samples", required_argument, nullptr, 'n'},
      {"gap-us", required_argument, nullptr, kGap},
      {"busy-samples", required_argument, nullptr, kBusySamples},
      {"busy-gap-us", required_argument, nullptr, kBusyGap},
      {"spin-windows", required_argument, nullptr, kWindows},
      {"max-contention", required_argument, nullptr, kMaxContention},
      {"json", no_argument, nullptr, kJson},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":n:h", kLong, nullptr)) != -1) {
    switch (opt) {
      case kCpus: {
        auto cpus = ParseCorePair(optarg);
        if (!cpus.ok()) return cpus.status();
        std::tie(o.sender_cpu, o.receiver_cpu) = *cpus;
        break;
      }
      case 'n':
      case kGap:
      case kBusySamples:
      case kBusyGap:
      case kMaxContention: {
        const char* flag = opt == 'n'            ? "--samples"
                           : opt == kGap         ? "--gap-us"
                           : opt == kBusySamples ? "--busy-samples"
                           : opt == kBusyGap     ? "--busy-gap-us"
                                                 : "--max-contention";
        auto v = ParseCount(flag, optarg);
        if (!v.ok()) return v.status();
        if (opt == kMaxContention) {
          o.max_contention_pct = static_cast<double>(*v);
          break;
        }
        if (*v == 0) {
          return absl::InvalidArgumentError(absl::StrFormat("%s: must be positive", flag));
        }
        uint64_t* field = opt == 'n'            ? &o.samples
                          : opt == kGap         ? &o.gap_us
                          : opt == kBusySamples ? &o.busy_samples
                                                : &o.busy_gap_us;
        *field = *v;
        break;
      }
      case kWindows: {
        auto windows = ParseList("--spin-windows", optarg);
        if (!windows.ok()) return windows.status();
        o.spin_windows_us = *windows;
        break;
      }
      case kJson:
        o.json = true;
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        std::exit(0);
      default:
        return absl::InvalidArgumentError(
            absl::StrFormat("unknown or incomplete option \"%s\"", argv[optind - 1]));
    }
  }
  return o;
}

int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "pollux-wakeup-bench: %s\n", std::string(status.message()).c_str());
  return code;
}

int Main(int argc, char** argv) {
  auto options = ParseOptions(argc, argv);
  if (!options.ok()) return Fail(options.status(), 2);
  EalOptions eo;
  eo.cpus = {options->sender_cpu, options->receiver_cpu};
  auto eal = InitEal(eo);
  if (!eal.ok()) return Fail(eal.status(), 1);
  // The sender: this control thread, moved from floating over both cores to the sender core.
  if (absl::Status s = PinCurrentThread(options->sender_cpu); !s.ok()) return Fail(s, 1);

  auto runtime =
      ReactorRuntime::Start(**eal, {ReactorMode::kInterrupt, std::chrono::microseconds(0)});
  if (!runtime.ok()) return Fail(runtime.status(), 1);
  auto receiver = Thread::Create("wake_receiver", {.cpu = options->receiver_cpu});
  if (!receiver.ok()) return Fail(receiver.status(), 1);

  std::vector<Scenario> scenarios;
  scenarios.push_back(RunSleeping(*options, **runtime, *receiver));
  for (uint64_t window : options->spin_windows_us) {
    scenarios.push_back(RunBusy(*options, **runtime, *receiver, window));
  }

  while (!(*receiver)->SendMessage([](void*) { Thread::Current()->Exit(); }, nullptr)) {
    rte_pause();
  }
  runtime->reset();
  Report(*options, scenarios);
  return 0;
}

}  // namespace
}  // namespace pollux::bench

int main(int argc, char** argv) { return pollux::bench::Main(argc, argv); }
