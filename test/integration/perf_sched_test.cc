// pollux-perf's options for the scheduler benchmarks (bench/scheduler_bench.py) as a real
// process: --scheduler (job threads movable, verify intact while the dynamic scheduler moves
// them), --thread-per-job, --idle-channels, --ramp-time and the CPU figure. What a thread looks
// like is read over RPC (thread_get_stats) while the run goes on. Behaviour only: no figure is
// held to a speed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "perf_runner.h"
#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// Two 32 MiB malloc bdevs.
constexpr char kTwoMallocConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}},
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc1", "num_blocks": 65536, "block_size": 512}}]}]})";

// A target (Malloc0), two bdevs nobody uses (Malloc1, Null0) and a passthru over a third
// malloc: Malloc2 is claimed, PT0 is not.
constexpr char kIdleConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}},
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc1", "num_blocks": 16384, "block_size": 512}},
  {"method": "bdev_null_create",
   "params": {"name": "Null0", "num_blocks": 16384, "block_size": 512}},
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc2", "num_blocks": 16384, "block_size": 512}},
  {"method": "bdev_passthru_create", "params": {"base_bdev_name": "Malloc2", "name": "PT0"}}]}]})";

// 1 GiB null bdev.
constexpr char kNullConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_null_create",
   "params": {"name": "Null0", "num_blocks": 2097152, "block_size": 512}}]}]})";

class PerfSchedTest : public PerfProcessTest {
 protected:
  // pollux-perf with an RPC socket, running in the background.
  std::unique_ptr<Process> StartPerf(const std::string& config, std::vector<std::string> args) {
    socket_ = dir_.File("perf.sock");
    std::vector<std::string> argv = {PerfPath(), "-c", dir_.Write("config.json", config), "-r",
                                     socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Process>(argv);
  }
  // The job threads (named perf_core...) as thread_get_stats lists them; empty when the
  // process does not answer.
  json JobThreads() {
    RunResult r = RunProgram({RpcPath(), "-s", socket_, "thread_get_stats"}, 30s);
    json threads = json::array();
    if (r.exit_code != 0) return threads;
    json reply = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded() || !reply.contains("threads")) return threads;
    for (const json& t : reply["threads"]) {
      if (t["name"].get<std::string>().rfind("perf_core", 0) == 0) threads.push_back(t);
    }
    return threads;
  }
  std::string socket_;
};

// Paced verify (2000 IOPS per job: each job thread far below the dynamic scheduler's load
// limit) on two cores with the dynamic scheduler every 100 ms: it gathers the idle job threads
// on the first core, moving one with its I/O in flight; every block still reads back as
// written. The job threads may run on both cores (their cpumask), and one has moved.
TEST_F(PerfSchedTest, DynamicSchedulerMovesJobThreadsAndVerifyPasses) {
  std::vector<std::string> args = {"-q", "16", "-o", "4k", "-w", "verify", "-t", "3"};
  args.insert(args.end(), {"--cpus", "0-1", "-b", "Malloc0", "--mode", "interrupt"});
  args.insert(args.end(), {"--rate", "2000", "--scheduler", "dynamic"});
  args.insert(args.end(), {"--scheduler-period", "100000", "--json"});
  auto perf = StartPerf(kTwoMallocConfig, args);
  ASSERT_TRUE(perf->WaitForErr("jobs on core", 30s)) << perf->Err();
  bool moved = false;
  json seen;
  while (perf->running() && !moved) {
    seen = JobThreads();
    for (const json& t : seen) {
      EXPECT_EQ(t["cpumask"], "0-1") << t.dump();
      moved |= t["moves"].get<uint64_t>() > 0;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(perf->Wait(60s), 0) << perf->Err();
  EXPECT_TRUE(moved) << "no job thread moved; last seen: " << seen.dump(1);
  EXPECT_THAT(perf->Err(), Not(HasSubstr("verify failed")));
  EXPECT_THAT(perf->Err(), HasSubstr("scheduler dynamic"));
  json result = json::parse(perf->Out());
  EXPECT_EQ(result["status"], "ok");
  EXPECT_EQ(result["scheduler"], "dynamic");
  EXPECT_EQ(result["scheduler_period_us"], 100000);
  EXPECT_EQ(result["total"]["miscompares"], 0);
  EXPECT_EQ(result["total"]["io_errors"], 0);
  EXPECT_GT(result["total"]["read_ops"].get<uint64_t>(), 0u);
}

// Full-speed verify with the dynamic scheduler on two cores: busy threads, whatever it decides.
TEST_F(PerfSchedTest, DynamicSchedulerVerifyAtFullSpeed) {
  RunResult r = Perf(kTwoMallocConfig, {"-q", "16", "-o", "4k", "-w", "verify", "-t", "2", "--cpus",
                                        "0-1", "--scheduler", "dynamic", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  EXPECT_EQ(result["status"], "ok");
  EXPECT_EQ(result["scheduler_period_us"], 1000000);  // the default period
  EXPECT_EQ(result["total"]["miscompares"], 0);
  EXPECT_EQ(result["jobs"].size(), 4u);  // two bdevs, two cores
}

// --thread-per-job: two targets on one core are two threads on its reactor, pinned there
// (no --scheduler); verify passes on both.
TEST_F(PerfSchedTest, ThreadPerJobVerify) {
  auto perf = StartPerf(kTwoMallocConfig, {"-q", "8", "-o", "4k", "-w", "verify", "-t", "3",
                                           "--cpus", "0", "--thread-per-job", "--json"});
  ASSERT_TRUE(perf->WaitForErr("jobs on core", 30s)) << perf->Err();
  EXPECT_THAT(perf->Err(), HasSubstr("2 jobs on core(s) 0 (2 threads)"));
  json threads = JobThreads();
  ASSERT_EQ(perf->Wait(60s), 0) << perf->Err();
  ASSERT_EQ(threads.size(), 2u) << threads.dump(1);
  std::vector<std::string> names;
  for (const json& t : threads) {
    names.push_back(t["name"]);
    EXPECT_EQ(t["core"], 0);
    EXPECT_EQ(t["cpumask"], "0");  // pinned: no scheduler asked to move them
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("perf_core0_Malloc0", "perf_core0_Malloc1"));
  json result = json::parse(perf->Out());
  EXPECT_EQ(result["thread_per_job"], true);
  EXPECT_EQ(result["total"]["miscompares"], 0);
  ASSERT_EQ(result["jobs"].size(), 2u);
  for (const json& job : result["jobs"]) EXPECT_GT(job["read_ops"].get<uint64_t>(), 0u);
}

// Without --thread-per-job one thread per core runs all of its jobs.
TEST_F(PerfSchedTest, OneThreadPerCoreByDefault) {
  RunResult r =
      Perf(kTwoMallocConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("2 jobs on core(s) 0 (1 thread)"));
}

// --idle-channels: each job thread (one per core here) holds a channel on every bdev that is
// neither a target nor claimed (Malloc1, Null0, PT0; not Malloc2 under the passthru).
TEST_F(PerfSchedTest, IdleChannelsAreCounted) {
  RunResult r = Perf(kIdleConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus",
                                   "0-1", "-b", "Malloc0", "--idle-channels", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("idle channels on 3 bdev(s) per job thread (6 in all)"));
  json result = ParseJson(r);
  EXPECT_EQ(result["idle_channels"], 6);
  for (const json& job : result["jobs"]) EXPECT_EQ(job["bdev"], "Malloc0");

  r = Perf(kIdleConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus", "0", "-b",
                         "Malloc0", "--idle-channels"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Idle channels: 3 "));
}

// The idle channels are really held on the job thread while it runs, and given back: the run
// ends (the bdev subsystem waits for every descriptor), also when stopped by SIGINT.
TEST_F(PerfSchedTest, IdleChannelsAreHeldAndReleasedOnSigint) {
  auto perf = StartPerf(kIdleConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "600",
                                      "--cpus", "0", "-b", "Malloc0", "--idle-channels", "--json"});
  ASSERT_TRUE(perf->WaitForErr("jobs on core", 30s)) << perf->Err();
  std::this_thread::sleep_for(300ms);
  json threads = JobThreads();
  perf->Signal(SIGINT);
  ASSERT_EQ(perf->Wait(30s), 0) << perf->Err();
  ASSERT_EQ(threads.size(), 1u) << threads.dump(1);
  // The target's and the 3 idle ones at least (a bdev may bring more: the passthru's channel
  // holds one on its base).
  EXPECT_GE(threads[0]["io_channels_count"].get<int>(), 4) << threads.dump(1);
  json result = json::parse(perf->Out());
  EXPECT_EQ(result["idle_channels"], 3);
  EXPECT_TRUE(result["jobs"][0]["stopped_early"].get<bool>());
}

// --ramp-time: the figures cover the -t window only. Paced at 2000 IOPS, a 2 s ramp and a 1 s
// window: the window's I/O count is what 1 s allows (a token bucket passes at most its
// capacity, 20 here, beyond the rate), not the 6000 of the whole run, and its runtime is the
// window's.
TEST_F(PerfSchedTest, RampTimeLeavesTheRampOutOfTheFigures) {
  constexpr double kRate = 2000;
  RunResult r = Perf(kNullConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus",
                                   "0", "--rate", "2000", "--ramp-time", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("after a 2 s ramp"));
  json result = ParseJson(r);
  EXPECT_EQ(result["ramp_time_s"], 2);
  ASSERT_EQ(result["jobs"].size(), 1u);
  const json& job = result["jobs"][0];
  const double runtime = job["runtime_s"].get<double>();
  const uint64_t ops = job["ops"].get<uint64_t>();
  EXPECT_LT(runtime, 2.0) << job.dump();  // the whole run lasts 3 s
  EXPECT_GT(ops, 0u);
  EXPECT_LE(ops, kRate * runtime + 20 + 1) << job.dump();
  EXPECT_EQ(job["bytes"].get<uint64_t>(), ops * 4096);
  // Latency from the window's histogram: ordered, within its bounds.
  const json& lat = job["latency_us"];
  EXPECT_LE(lat["min"].get<double>(), lat["p50"].get<double>());
  EXPECT_LE(lat["p50"].get<double>(), lat["p99"].get<double>());
  EXPECT_LE(lat["p99"].get<double>(), lat["max"].get<double>());
  EXPECT_GE(result["total"]["cpu_percent"].get<double>(), 0.0);
}

// The process's CPU over the window: in the JSON totals and as a line under the table.
TEST_F(PerfSchedTest, CpuPercentIsReported) {
  RunResult r = Perf(kNullConfig,
                     {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  ASSERT_TRUE(result["total"].contains("cpu_percent")) << r.out;
  EXPECT_GT(result["total"]["cpu_percent"].get<double>(), 0.0);

  r = Perf(kNullConfig, {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("% of one core (the process, over the measured window)"));
}

}  // namespace
}  // namespace pollux::testing
