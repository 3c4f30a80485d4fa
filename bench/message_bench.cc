// message_bench: cross-core message throughput and round-trip latency between two pollux
// Threads on two reactors, beside raw DPDK rte_ring doing the same transfer in the same run,
// on the same two cores (the reactor lcores, before the reactors start).
//
// Throughput: one producer core sends N messages {fn, arg} to one consumer core, which runs
// fn(arg) for each (the same handler on both sides); messages/s = N / (first send .. last
// handler). Latency: one message bounces between the two cores; round trip, median and p99.
//
// Each round measures the raw peers first (EAL lcores launched with rte_eal_remote_launch),
// then starts the ReactorRuntime, measures pollux, and destroys the runtime; the table shows
// the median over rounds (the VMs these run on are noisy).
#include <getopt.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "bench_common.h"
#include "nlohmann/json.hpp"
#include "pollux/env/eal.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux::bench {
namespace {

constexpr unsigned kBurst = 32;         // the reactor drains 32 messages per thread per pass
constexpr uint32_t kRingSize = 65536;   // a Thread's default ring (ThreadOptions::ring_size)
constexpr uint64_t kPingWarmup = 1000;  // round trips discarded before sampling
// Bursts move messages ~10x faster: send more of them so that each measurement lasts long
// enough for the contention meter (clock ticks of 10 ms) to judge it.
constexpr uint64_t kBurstMessageFactor = 8;

constexpr char kUsage[] = R"(Usage: pollux-message-bench [OPTIONS]

Cross-core message throughput and round-trip latency: pollux Thread::SendMessage(s) beside
raw DPDK rte_ring (MP enqueue, SC dequeue, 16-byte elements) on the same two cores.

Options:
      --cpus A,B           producer core and consumer core (default 0,1)
  -n, --messages N         messages per throughput measurement (default 5000000; bursts
                           of 32 send 8 times as many)
  -p, --pings N            round trips per latency measurement (default 500000)
  -r, --rounds N           rounds; figures are medians over clean rounds (default 3)
      --max-contention PCT a round is clean when other processes took at most PCT% of a
                           core from the two cores meanwhile (default 10)
      --mode MODE          reactor mode: poll or interrupt (default poll)
      --spin-window-us N   spin window in interrupt mode (default 100)
      --diagnose           also run raw variants that isolate Mailbox::Send's costs: MP
                           enqueue (Mailbox's ring for senders on reactors) with a full
                           fence; RTS enqueue (its ring for other threads) with and without
                           the fence; single-producer enqueue
      --only CASE          run one measurement and print its figure per round (for perf):
                           raw_single_single, raw_single_burst, raw_burst_burst,
                           raw_single_fence_burst, raw_rts_single_burst,
                           raw_rts_single_fence_burst, raw_sp_single_burst,
                           raw_pingpong, pollux_single,
                           pollux_burst, pollux_pingpong
      --json               print JSON instead of the table
  -h, --help               print this help
)";

struct Options {
  int producer_cpu = 0;
  int consumer_cpu = 1;
  uint64_t messages = 5'000'000;
  uint64_t pings = 500'000;
  uint64_t rounds = 3;
  double max_contention_pct = 10;
  ReactorMode mode = ReactorMode::kPoll;
  uint64_t spin_window_us = 100;
  bool diagnose = false;
  bool json = false;
  std::string only;  // run just this measurement (one of kCases), for profiling
};

// ---- shared pieces ----

// Sleeps (never spins: the control thread floats over the measured cores) until pred().
template <typename Pred>
void SleepUntil(Pred&& pred) {
  const timespec nap = {0, 2'000'000};
  while (!pred()) nanosleep(&nap, nullptr);
}

// One throughput measurement. The consumer's fields sit on their own cache line.
struct Transfer {
  alignas(64) uint64_t count = 0;  // consumer's copy
  uint64_t received = 0;
  uint64_t end_tsc = 0;
  std::atomic<bool> done{false};
  alignas(64) uint64_t start_tsc = 0;  // producer side
};

// The handler of every throughput message, raw or pollux: count, and stamp the last one.
void Consume(void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  if (++t->received == t->count) {
    t->end_tsc = rte_rdtsc();
    t->done.store(true, std::memory_order_release);
  }
}

double MessagesPerSecond(const Transfer& t) {
  return static_cast<double>(t.count) * static_cast<double>(rte_get_tsc_hz()) /
         static_cast<double>(t.end_tsc - t.start_tsc);
}

// A ring built like pollux's Mailbox: plain aligned memory, SC dequeue, 16-byte elements.
class RawRing {
 public:
  // flags: RING_F_SC_DEQ (classic MP enqueue: Mailbox's ring for senders on reactors), or with
  // RING_F_MP_RTS_ENQ (its ring for every other sender).
  RawRing(uint32_t capacity, unsigned flags) {
    ssize_t bytes = rte_ring_get_memsize_elem(sizeof(Message), capacity);
    memory_ = std::aligned_alloc(RTE_CACHE_LINE_SIZE,
                                 RTE_ALIGN_CEIL(static_cast<size_t>(bytes), RTE_CACHE_LINE_SIZE));
    if (memory_ == nullptr || rte_ring_init(ring(), "bench", capacity, flags) != 0) {
      std::fprintf(stderr, "message_bench: cannot create a %u-entry ring\n", capacity);
      std::abort();
    }
  }
  ~RawRing() { std::free(memory_); }
  RawRing(const RawRing&) = delete;
  RawRing& operator=(const RawRing&) = delete;
  rte_ring* ring() const { return static_cast<rte_ring*>(memory_); }

 private:
  void* memory_ = nullptr;
};

unsigned LcoreOfCpu(const EalSession& eal, int cpu) {
  for (const ReactorLcore& l : eal.reactor_lcores()) {
    if (l.cpu == cpu) return l.lcore_id;
  }
  std::fprintf(stderr, "message_bench: no reactor lcore on core %d\n", cpu);
  std::abort();
}

// Runs producer(arg) on the producer core's lcore and consumer(arg) on the consumer core's,
// and waits (sleeping) until both returned.
void RunOnLcores(const EalSession& eal, const Options& o, lcore_function_t* producer,
                 lcore_function_t* consumer, void* arg, const std::atomic<bool>& finished) {
  unsigned p = LcoreOfCpu(eal, o.producer_cpu);
  unsigned c = LcoreOfCpu(eal, o.consumer_cpu);
  if (rte_eal_remote_launch(consumer, arg, c) != 0 ||
      rte_eal_remote_launch(producer, arg, p) != 0) {
    std::fprintf(stderr, "message_bench: rte_eal_remote_launch failed\n");
    std::abort();
  }
  // rte_eal_wait_lcore spins; sleep until the work is done, then collect the lcores.
  SleepUntil([&] { return finished.load(std::memory_order_acquire); });
  rte_eal_wait_lcore(p);
  rte_eal_wait_lcore(c);
}

// ---- raw rte_ring throughput ----

enum class RawVariant {
  kSingleSingle,      // rte_ring_mp_enqueue_elem / rte_ring_sc_dequeue_elem
  kSingleBurst,       // single enqueue / dequeue bursts of 32 (what a reactor does)
  kBurstBurst,        // bursts of 32 both sides
  // Diagnostic: single enqueue + a seq_cst fence and the load of `armed_` (Mailbox::WakeIfArmed
  // off x86; on x86 it needs only a compiler barrier after the enqueue's locked CAS).
  kSingleFenceBurst,
  // Diagnostics with RTS producers (relaxed tail sync; Mailbox's ring for senders that are not
  // reactors), generic enqueue.
  kRtsSingleBurst,
  kRtsSingleFenceBurst,  // Mailbox::Send's producer path up to issue 2's fix
  // Diagnostic: single-producer enqueue (no CAS), what a per-core-pair ring would cost.
  kSpSingleBurst,
};

bool IsRts(RawVariant v) {
  return v == RawVariant::kRtsSingleBurst || v == RawVariant::kRtsSingleFenceBurst;
}

unsigned RingFlags(RawVariant v) {
  if (IsRts(v)) return RING_F_MP_RTS_ENQ | RING_F_SC_DEQ;
  if (v == RawVariant::kSpSingleBurst) return RING_F_SP_ENQ | RING_F_SC_DEQ;
  return RING_F_SC_DEQ;
}

struct RawThroughputJob {
  RawVariant variant;
  rte_ring* ring;
  Transfer transfer;
  std::atomic<bool> consumer_ready{false};
  alignas(64) std::atomic<bool> armed{false};  // never set: the load WakeIfArmed does
};

int RawProducer(void* arg) {
  auto* job = static_cast<RawThroughputJob*>(arg);
  Transfer& t = job->transfer;
  const uint64_t count = t.count;
  while (!job->consumer_ready.load(std::memory_order_acquire)) rte_pause();
  t.start_tsc = rte_rdtsc();
  if (job->variant == RawVariant::kBurstBurst) {
    Message burst[kBurst];
    for (Message& m : burst) m = Message{&Consume, &t};
    for (uint64_t sent = 0; sent < count;) {
      unsigned want = static_cast<unsigned>(std::min<uint64_t>(kBurst, count - sent));
      unsigned n = rte_ring_mp_enqueue_burst_elem(job->ring, burst, sizeof(Message), want, nullptr);
      sent += n;
      if (n == 0) rte_pause();
    }
  } else {
    const bool fence = job->variant == RawVariant::kSingleFenceBurst ||
                       job->variant == RawVariant::kRtsSingleFenceBurst;
    // The generic enqueue follows the ring's producer mode (RTS, SP); MP is called directly.
    const bool generic = IsRts(job->variant) || job->variant == RawVariant::kSpSingleBurst;
    Message m{&Consume, &t};
    for (uint64_t sent = 0; sent < count;) {
      int rc = generic ? rte_ring_enqueue_elem(job->ring, &m, sizeof(Message))
                       : rte_ring_mp_enqueue_elem(job->ring, &m, sizeof(Message));
      if (rc != 0) {
        rte_pause();
        continue;
      }
      ++sent;
      if (fence) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (job->armed.load(std::memory_order_relaxed)) std::abort();
      }
    }
  }
  return 0;
}

int RawConsumer(void* arg) {
  auto* job = static_cast<RawThroughputJob*>(arg);
  Transfer& t = job->transfer;
  job->consumer_ready.store(true, std::memory_order_release);
  if (job->variant == RawVariant::kSingleSingle) {
    Message m;
    while (t.received < t.count) {
      if (rte_ring_sc_dequeue_elem(job->ring, &m, sizeof(Message)) == 0) m.fn(m.arg);
    }
  } else {
    Message burst[kBurst];
    while (t.received < t.count) {
      unsigned n =
          rte_ring_sc_dequeue_burst_elem(job->ring, burst, sizeof(Message), kBurst, nullptr);
      for (unsigned i = 0; i < n; ++i) burst[i].fn(burst[i].arg);
    }
  }
  return 0;
}

double RunRawThroughput(const EalSession& eal, const Options& o, RawVariant variant) {
  RawRing ring(kRingSize, RingFlags(variant));
  auto job = std::make_unique<RawThroughputJob>();
  job->variant = variant;
  job->ring = ring.ring();
  job->transfer.count =
      variant == RawVariant::kBurstBurst ? o.messages * kBurstMessageFactor : o.messages;
  RunOnLcores(eal, o, &RawProducer, &RawConsumer, job.get(), job->transfer.done);
  return MessagesPerSecond(job->transfer);
}

// ---- raw rte_ring ping-pong ----

struct RawPingJob {
  uint64_t rounds;
  rte_ring* there;  // producer core -> consumer core
  rte_ring* back;   // consumer core -> producer core
  std::vector<uint64_t> samples;
  std::atomic<bool> responder_ready{false};
  std::atomic<bool> finished{false};
};

void* const kStop = reinterpret_cast<void*>(~uintptr_t{0});

void Noop(void*) {}

int RawPinger(void* arg) {
  auto* job = static_cast<RawPingJob*>(arg);
  while (!job->responder_ready.load(std::memory_order_acquire)) rte_pause();
  Message m{&Noop, nullptr};
  for (uint64_t i = 0; i < job->rounds + kPingWarmup; ++i) {
    uint64_t t0 = rte_rdtsc();
    m.arg = reinterpret_cast<void*>(t0);
    while (rte_ring_mp_enqueue_elem(job->there, &m, sizeof(Message)) != 0) rte_pause();
    while (rte_ring_sc_dequeue_elem(job->back, &m, sizeof(Message)) != 0) {
    }
    uint64_t t1 = rte_rdtsc();
    if (i >= kPingWarmup) job->samples.push_back(t1 - t0);
  }
  m.arg = kStop;
  while (rte_ring_mp_enqueue_elem(job->there, &m, sizeof(Message)) != 0) rte_pause();
  return 0;
}

int RawPonger(void* arg) {
  auto* job = static_cast<RawPingJob*>(arg);
  job->responder_ready.store(true, std::memory_order_release);
  Message m;
  for (;;) {
    if (rte_ring_sc_dequeue_elem(job->there, &m, sizeof(Message)) != 0) continue;
    if (m.arg == kStop) break;
    m.fn(m.arg);
    while (rte_ring_mp_enqueue_elem(job->back, &m, sizeof(Message)) != 0) rte_pause();
  }
  job->finished.store(true, std::memory_order_release);
  return 0;
}

std::vector<uint64_t> RunRawPingPong(const EalSession& eal, const Options& o) {
  RawRing there(kRingSize, RING_F_SC_DEQ), back(kRingSize, RING_F_SC_DEQ);
  auto job = std::make_unique<RawPingJob>();
  job->rounds = o.pings;
  job->there = there.ring();
  job->back = back.ring();
  job->samples.reserve(o.pings);
  RunOnLcores(eal, o, &RawPinger, &RawPonger, job.get(), job->finished);
  return std::move(job->samples);
}

// ---- pollux ----

struct PolluxThroughputJob {
  Thread* consumer;
  bool burst;
  Transfer transfer;
};

// Runs on the producer Thread: sends every message, retrying when the ring is full.
void PolluxProduce(void* arg) {
  auto* job = static_cast<PolluxThroughputJob*>(arg);
  Transfer& t = job->transfer;
  const uint64_t count = t.count;
  Thread* consumer = job->consumer;
  t.start_tsc = rte_rdtsc();
  if (job->burst) {
    Message burst[kBurst];
    for (Message& m : burst) m = Message{&Consume, &t};
    for (uint64_t sent = 0; sent < count;) {
      unsigned want = static_cast<unsigned>(std::min<uint64_t>(kBurst, count - sent));
      unsigned n = consumer->SendMessages(burst, want);
      sent += n;
      if (n == 0) rte_pause();
    }
  } else {
    for (uint64_t sent = 0; sent < count;) {
      if (consumer->SendMessage(&Consume, &t)) {
        ++sent;
      } else {
        rte_pause();
      }
    }
  }
}

double RunPolluxThroughput(const Options& o, Thread* producer, Thread* consumer, bool burst) {
  auto job = std::make_unique<PolluxThroughputJob>();
  job->consumer = consumer;
  job->burst = burst;
  job->transfer.count = burst ? o.messages * kBurstMessageFactor : o.messages;
  while (!producer->SendMessage(&PolluxProduce, job.get())) rte_pause();
  SleepUntil([&] { return job->transfer.done.load(std::memory_order_acquire); });
  return MessagesPerSecond(job->transfer);
}

struct PolluxPingJob {
  Thread* pinger;
  Thread* ponger;
  uint64_t rounds;
  uint64_t i = 0;
  uint64_t t0 = 0;
  std::vector<uint64_t> samples;
  std::atomic<bool> finished{false};
};

void PolluxPong(void* arg);

// On the pinger Thread: the reply arrived (or, with i == 0 and t0 == 0, the start).
void PolluxPing(void* arg) {
  auto* job = static_cast<PolluxPingJob*>(arg);
  if (job->t0 != 0) {
    uint64_t t1 = rte_rdtsc();
    if (job->i >= kPingWarmup) job->samples.push_back(t1 - job->t0);
    if (++job->i == job->rounds + kPingWarmup) {
      job->finished.store(true, std::memory_order_release);
      return;
    }
  }
  job->t0 = rte_rdtsc();
  while (!job->ponger->SendMessage(&PolluxPong, job)) rte_pause();
}

// On the ponger Thread: reply.
void PolluxPong(void* arg) {
  auto* job = static_cast<PolluxPingJob*>(arg);
  while (!job->pinger->SendMessage(&PolluxPing, job)) rte_pause();
}

std::vector<uint64_t> RunPolluxPingPong(const Options& o, Thread* pinger, Thread* ponger) {
  auto job = std::make_unique<PolluxPingJob>();
  job->pinger = pinger;
  job->ponger = ponger;
  job->rounds = o.pings;
  job->samples.reserve(o.pings);
  while (!pinger->SendMessage(&PolluxPing, job.get())) rte_pause();
  SleepUntil([&] { return job->finished.load(std::memory_order_acquire); });
  return std::move(job->samples);
}

// ---- rounds and report ----

// One measurement and how much CPU other processes took from the two cores meanwhile.
struct Measured {
  double rate = 0;            // messages/s (throughput measurements)
  std::vector<uint64_t> tsc;  // round trips (latency measurements)
  double others_pct = 0;      // others + steal, % of one core
};

// Every measurement of a run, by case name, one entry per round.
struct Figures {
  std::map<std::string, std::vector<Measured>> runs;
  std::string contention;  // over the whole run
};

// The measurement names, for --only and the per-round listing.
constexpr const char* kCases[] = {
    "raw_single_single",      "raw_single_burst",     "raw_burst_burst",
    "raw_single_fence_burst", "raw_rts_single_burst", "raw_rts_single_fence_burst",
    "raw_sp_single_burst",    "raw_pingpong",         "pollux_single",
    "pollux_burst",           "pollux_pingpong"};

bool Wanted(const Options& o, std::string_view name) {
  bool diagnostic = name.find("fence") != std::string_view::npos ||
                    name.find("rts") != std::string_view::npos ||
                    name.find("_sp_") != std::string_view::npos;
  if (o.only.empty()) return !diagnostic || o.diagnose;
  return o.only == name;
}

// Runs fn (returning a rate or samples) under a contention meter and files the result.
template <typename Fn>
void Measure(const Options& o, Figures& f, const std::string& name, Fn&& fn) {
  if (!Wanted(o, name)) return;
  ContentionMeter meter({o.producer_cpu, o.consumer_cpu});
  Measured m;
  if constexpr (std::is_same_v<decltype(fn()), double>) {
    m.rate = fn();
  } else {
    m.tsc = fn();
  }
  ContentionMeter::Result used = meter.Measure();
  m.others_pct = used.others_pct + used.steal_pct;
  f.runs[name].push_back(std::move(m));
}

absl::Status RunRound(const EalSession& eal, const Options& o, Figures& f) {
  const std::pair<const char*, RawVariant> raw[] = {
      {"raw_single_single", RawVariant::kSingleSingle},
      {"raw_single_burst", RawVariant::kSingleBurst},
      {"raw_burst_burst", RawVariant::kBurstBurst},
      {"raw_single_fence_burst", RawVariant::kSingleFenceBurst},
      {"raw_rts_single_burst", RawVariant::kRtsSingleBurst},
      {"raw_rts_single_fence_burst", RawVariant::kRtsSingleFenceBurst},
      {"raw_sp_single_burst", RawVariant::kSpSingleBurst}};
  for (const auto& [name, variant] : raw) {
    Measure(o, f, name, [&] { return RunRawThroughput(eal, o, variant); });
  }
  Measure(o, f, "raw_pingpong", [&] { return RunRawPingPong(eal, o); });

  ReactorRuntimeOptions ro;
  ro.mode = o.mode;
  ro.spin_window = std::chrono::microseconds(o.spin_window_us);
  auto runtime = ReactorRuntime::Start(eal, ro);
  if (!runtime.ok()) return runtime.status();
  auto producer = Thread::Create("bench_producer", {.cpu = o.producer_cpu});
  if (!producer.ok()) return producer.status();
  auto consumer = Thread::Create("bench_consumer", {.cpu = o.consumer_cpu});
  if (!consumer.ok()) return consumer.status();

  Measure(o, f, "pollux_single",
          [&] { return RunPolluxThroughput(o, *producer, *consumer, false); });
  Measure(o, f, "pollux_burst", [&] { return RunPolluxThroughput(o, *producer, *consumer, true); });
  Measure(o, f, "pollux_pingpong", [&] { return RunPolluxPingPong(o, *producer, *consumer); });

  for (Thread* t : {*producer, *consumer}) {
    while (!t->SendMessage([](void*) { Thread::Current()->Exit(); }, nullptr)) rte_pause();
  }
  runtime->reset();  // stops the reactors: the lcores are free for the next round's raw peers
  return absl::OkStatus();
}

// The figure of one case: the median over its clean rounds (others took at most
// --max-contention), or over all rounds when none was clean.
struct Figure {
  double rate = 0;
  LatencySummary latency;
  size_t clean = 0;
  size_t rounds = 0;
};

Figure Summarize(const Options& o, const std::vector<Measured>& runs) {
  Figure fig;
  fig.rounds = runs.size();
  for (const Measured& m : runs) fig.clean += m.others_pct <= o.max_contention_pct;
  std::vector<double> rates;
  std::vector<uint64_t> tsc;
  for (const Measured& m : runs) {
    if (fig.clean != 0 && m.others_pct > o.max_contention_pct) continue;
    rates.push_back(m.rate);
    tsc.insert(tsc.end(), m.tsc.begin(), m.tsc.end());
  }
  fig.rate = Median(rates);
  fig.latency = SummarizeTsc(tsc, rte_get_tsc_hz());
  return fig;
}

std::string Goal(double ratio, double at_least) { return ratio >= at_least ? "met" : "NOT met"; }

std::string CleanNote(const Figure& a, const Figure& b) {
  return absl::StrFormat("clean %zu/%zu, %zu/%zu", a.clean, a.rounds, b.clean, b.rounds);
}

// With --only: the one figure per round (for profiling runs).
void ReportOnly(const Options& o, const Figures& f) {
  std::string line = absl::StrFormat("%s:", o.only);
  for (const auto& [key, runs] : f.runs) {
    for (const Measured& m : runs) {
      if (m.tsc.empty()) {
        line += absl::StrFormat(" %.2fM/s", m.rate / 1e6);
      } else {
        LatencySummary l = SummarizeTsc(m.tsc, rte_get_tsc_hz());
        line += absl::StrFormat(" median %s p99 %s", FormatNs(l.median_ns), FormatNs(l.p99_ns));
      }
      line += absl::StrFormat(" (others %.0f%%)", m.others_pct);
    }
  }
  std::printf("%s\n%s\n", line.c_str(), f.contention.c_str());
}

void Report(const Options& o, const Figures& f) {
  if (!o.only.empty()) return ReportOnly(o, f);
  std::map<std::string, Figure> fig;
  for (const auto& [key, runs] : f.runs) fig[key] = Summarize(o, runs);
  const Figure& lp = fig.at("pollux_pingpong");
  const Figure& lr = fig.at("raw_pingpong");

  struct Pair {
    std::string what, pollux, peer;
    double goal;  // minimum ratio, 0 for none
  };
  std::vector<Pair> pairs = {
      {"SendMessage vs raw single enq + single deq", "pollux_single", "raw_single_single", 0.8},
      {"SendMessage vs raw single enq + burst deq 32", "pollux_single", "raw_single_burst", 0.8},
      {"SendMessages(32) vs raw burst 32 both sides", "pollux_burst", "raw_burst_burst", 0},
  };
  if (o.diagnose) {
    // Where SendMessage's cost goes: producer mode, fence, then the reactor loop.
    pairs.push_back(
        {"(raw MP+fence vs raw MP; burst deq)", "raw_single_fence_burst", "raw_single_burst", 0});
    pairs.push_back(
        {"(raw RTS vs raw MP; burst deq)", "raw_rts_single_burst", "raw_single_burst", 0});
    pairs.push_back({"(raw RTS+fence vs raw RTS; burst deq)", "raw_rts_single_fence_burst",
                     "raw_rts_single_burst", 0});
    pairs.push_back({"SendMessage vs raw RTS+fence (its old ring ops)", "pollux_single",
                     "raw_rts_single_fence_burst", 0});
    pairs.push_back(
        {"(raw SP vs raw MP; burst deq)", "raw_sp_single_burst", "raw_single_burst", 0});
  }

  if (o.json) {
    nlohmann::json j;
    j["benchmark"] = "message_bench";
    j["producer_cpu"] = o.producer_cpu;
    j["consumer_cpu"] = o.consumer_cpu;
    j["messages"] = o.messages;
    j["burst_messages"] = o.messages * kBurstMessageFactor;
    j["pings"] = o.pings;
    j["rounds"] = o.rounds;
    j["max_contention_pct"] = o.max_contention_pct;
    j["mode"] = std::string(ReactorModeName(o.mode));
    j["contention"] = f.contention;
    for (const auto& [key, runs] : f.runs) {
      for (const Measured& m : runs) {
        nlohmann::json r = {{"others_pct", m.others_pct}};
        if (m.tsc.empty()) {
          r["rate"] = m.rate;
        } else {
          LatencySummary l = SummarizeTsc(m.tsc, rte_get_tsc_hz());
          r["median_ns"] = l.median_ns;
          r["p99_ns"] = l.p99_ns;
        }
        j["per_round"][key].push_back(r);
      }
    }
    for (const Pair& p : pairs) {
      const Figure& a = fig.at(p.pollux);
      const Figure& b = fig.at(p.peer);
      j["throughput"].push_back({{"case", p.what},
                                 {"pollux", a.rate},
                                 {"peer", b.rate},
                                 {"ratio", a.rate / b.rate},
                                 {"clean_rounds", {a.clean, b.clean}}});
    }
    j["round_trip_ns"]["pollux"] = {{"median", lp.latency.median_ns},
                                    {"p99", lp.latency.p99_ns},
                                    {"samples", lp.latency.samples}};
    j["round_trip_ns"]["raw_ring"] = {{"median", lr.latency.median_ns},
                                      {"p99", lr.latency.p99_ns},
                                      {"samples", lr.latency.samples}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }

  std::printf(
      "message_bench: producer core %d -> consumer core %d, %s mode, %lu messages (bursts: "
      "%lu), %lu round trips, %lu rounds\n",
      o.producer_cpu, o.consumer_cpu, std::string(ReactorModeName(o.mode)).c_str(),
      static_cast<unsigned long>(o.messages),
      static_cast<unsigned long>(o.messages * kBurstMessageFactor),
      static_cast<unsigned long>(o.pings), static_cast<unsigned long>(o.rounds));
  std::vector<Row> rows;
  for (const Pair& p : pairs) {
    const Figure& a = fig.at(p.pollux);
    const Figure& b = fig.at(p.peer);
    double ratio = a.rate / b.rate;
    rows.push_back({p.what, FormatRate(a.rate), FormatRate(b.rate), ratio,
                    (p.goal > 0 ? Goal(ratio, p.goal) + " (>= 0.80); " : "") + CleanNote(a, b)});
  }
  std::string clean_rule = absl::StrFormat(
      "median of clean rounds: others took <= %.0f%% of a core", o.max_contention_pct);
  PrintTable(absl::StrFormat("Throughput, messages/s (%s)", clean_rule), "raw rte_ring", rows);
  PrintTable(absl::StrFormat("Round trip between the two cores (clean rounds pooled)"),
             "raw rte_ring",
             {{"median", FormatNs(lp.latency.median_ns), FormatNs(lr.latency.median_ns),
               lp.latency.median_ns / lr.latency.median_ns, CleanNote(lp, lr)},
              {"p99", FormatNs(lp.latency.p99_ns), FormatNs(lr.latency.p99_ns),
               lp.latency.p99_ns / lr.latency.p99_ns, ""}});
  std::printf("\nPer round (M messages/s or median round trip; others' CPU %% in brackets):\n");
  for (const auto& [key, runs] : f.runs) {
    std::string line = absl::StrFormat("  %-24s", key);
    for (const Measured& m : runs) {
      std::string value = m.tsc.empty() ? absl::StrFormat("%.2f", m.rate / 1e6)
                                        : FormatNs(SummarizeTsc(m.tsc, rte_get_tsc_hz()).median_ns);
      line += absl::StrFormat(" %9s [%3.0f]", value, m.others_pct);
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("\nContention: %s\n", f.contention.c_str());
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  enum { kCpus = 256, kMode, kSpin, kDiagnose, kJson, kOnly, kMaxContention };
  static const option kLong[] = {
      {"cpus", required_argument, nullptr, kCpus},
      {"messages", required_argument, nullptr, 'n'},
      {"pings", required_argument, nullptr, 'p'},
      {"rounds", required_argument, nullptr, 'r'},
      {"mode", required_argument, nullptr, kMode},
      {"spin-window-us", required_argument, nullptr, kSpin},
      {"diagnose", no_argument, nullptr, kDiagnose},
      {"json", no_argument, nullptr, kJson},
      {"only", required_argument, nullptr, kOnly},
      {"max-contention", required_argument, nullptr, kMaxContention},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":n:p:r:h", kLong, nullptr)) != -1) {
    switch (opt) {
      case kCpus: {
        auto cpus = ParseCorePair(optarg);
        if (!cpus.ok()) return cpus.status();
        std::tie(o.producer_cpu, o.consumer_cpu) = *cpus;
        break;
      }
      case 'n':
      case 'p':
      case 'r':
      case kSpin: {
        auto v = ParseCount(opt == 'n'   ? "--messages"
                            : opt == 'p' ? "--pings"
                            : opt == 'r' ? "--rounds"
                                         : "--spin-window-us",
                            optarg);
        if (!v.ok()) return v.status();
        if (*v == 0 && opt != kSpin) return absl::InvalidArgumentError("counts must be positive");
        (opt == 'n'   ? o.messages
         : opt == 'p' ? o.pings
         : opt == 'r' ? o.rounds
                      : o.spin_window_us) = *v;
        break;
      }
      case kMode: {
        auto mode = ParseReactorMode(optarg);
        if (!mode.ok()) return mode.status();
        o.mode = *mode;
        break;
      }
      case kDiagnose:
        o.diagnose = true;
        break;
      case kJson:
        o.json = true;
        break;
      case kMaxContention: {
        auto v = ParseCount("--max-contention", optarg);
        if (!v.ok()) return v.status();
        o.max_contention_pct = static_cast<double>(*v);
        break;
      }
      case kOnly:
        o.only = optarg;
        if (std::find(std::begin(kCases), std::end(kCases), o.only) == std::end(kCases)) {
          return absl::InvalidArgumentError(absl::StrFormat("--only: unknown case \"%s\"", optarg));
        }
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

int Main(int argc, char** argv) {
  auto options = ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "pollux-message-bench: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  EalOptions eo;
  eo.cpus = {options->producer_cpu, options->consumer_cpu};
  auto eal = InitEal(eo);
  if (!eal.ok()) {
    std::fprintf(stderr, "pollux-message-bench: %s\n", std::string(eal.status().message()).c_str());
    return 1;
  }
  Figures figures;
  ContentionMeter meter({options->producer_cpu, options->consumer_cpu});
  for (uint64_t round = 0; round < options->rounds; ++round) {
    if (absl::Status s = RunRound(**eal, *options, figures); !s.ok()) {
      std::fprintf(stderr, "pollux-message-bench: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  figures.contention = meter.Describe();
  Report(*options, figures);
  return 0;
}

}  // namespace
}  // namespace pollux::bench

int main(int argc, char** argv) { return pollux::bench::Main(argc, argv); }
