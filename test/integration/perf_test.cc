// pollux-perf as a real process: JSON and table output, every workload, verify passing and
// failing on corrupted data, I/O errors, SIGINT, --rate, request sizes from a range (-o MIN-MAX)
// into buffers at odd addresses (--buffer-offset), and every bad input with its exit code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
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

// 1 GiB null bdev: I/O never touches memory.
constexpr char kNullConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_null_create",
   "params": {"name": "Null0", "num_blocks": 2097152, "block_size": 512}}]}]})";

// 32 MiB malloc bdev.
constexpr char kMallocConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}}]}]})";

// A passthru over a malloc: the malloc is claimed.
constexpr char kPassthruConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}},
  {"method": "bdev_passthru_create", "params": {"base_bdev_name": "Malloc0", "name": "PT0"}}]}]})";

// The error module over a malloc, with the first write corrupted (byte 100 XOR 0xff).
constexpr char kCorruptConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 16384, "block_size": 512}},
  {"method": "bdev_error_create", "params": {"base_name": "Malloc0"}},
  {"method": "bdev_error_inject_error",
   "params": {"name": "EE_Malloc0", "io_type": "write", "error_type": "corrupt_data", "num": 1,
              "corrupt_offset": 100, "corrupt_value": 255}}]}]})";

// The error module over a malloc, failing three reads.
constexpr char kFailingReadsConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 16384, "block_size": 512}},
  {"method": "bdev_error_create", "params": {"base_name": "Malloc0"}},
  {"method": "bdev_error_inject_error",
   "params": {"name": "EE_Malloc0", "io_type": "read", "error_type": "failure", "num": 3}}]}]})";

class PerfTest : public PerfProcessTest {};

void ExpectLatencyFields(const json& figures) {
  ASSERT_TRUE(figures.contains("latency_us")) << figures.dump();
  for (const char* key : {"avg", "min", "max", "p50", "p99", "p99_9"}) {
    EXPECT_TRUE(figures["latency_us"].contains(key)) << key;
    EXPECT_GE(figures["latency_us"][key].get<double>(), 0.0) << key;
  }
  for (const char* key : {"iops", "mib_per_s", "ops", "bytes", "runtime_s", "io_errors",
                          "fail_per_s", "miscompares", "read_ops", "write_ops"}) {
    EXPECT_TRUE(figures.contains(key)) << key;
  }
}

TEST_F(PerfTest, NullRandReadJson) {
  RunResult r = Perf(kNullConfig, {"-q", "32", "-o", "4k", "-w", "randread", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  EXPECT_EQ(result["workload"], "randread");
  EXPECT_EQ(result["queue_depth"], 32);
  EXPECT_EQ(result["io_size"], 4096);
  EXPECT_EQ(result["time_s"], 1);
  EXPECT_EQ(result["status"], "ok");
  EXPECT_FALSE(result.contains("io_size_min"));  // a single -o
  EXPECT_FALSE(result.contains("buffer_offset"));
  EXPECT_GT(result["tsc_hz"].get<uint64_t>(), 0u);
  ASSERT_TRUE(result["jobs"].is_array());
  ASSERT_GE(result["jobs"].size(), 1u);
  for (const json& job : result["jobs"]) {
    EXPECT_EQ(job["bdev"], "Null0");
    EXPECT_TRUE(job["ran"].get<bool>());
    EXPECT_FALSE(job["stopped_early"].get<bool>());
    EXPECT_GT(job["iops"].get<double>(), 0.0);
    EXPECT_EQ(job["write_ops"], 0);
    EXPECT_EQ(job["bytes"].get<uint64_t>(), job["ops"].get<uint64_t>() * 4096);
    ExpectLatencyFields(job);
    // Ordered percentiles, between min and max (the histogram is exact to 1/64).
    const json& lat = job["latency_us"];
    EXPECT_LE(lat["p50"].get<double>(), lat["p99"].get<double>());
    EXPECT_LE(lat["p99"].get<double>(), lat["p99_9"].get<double>());
    EXPECT_LE(lat["min"].get<double>(), lat["avg"].get<double>());
    EXPECT_LE(lat["avg"].get<double>(), lat["max"].get<double>());
  }
  ExpectLatencyFields(result["total"]);
  EXPECT_GT(result["total"]["iops"].get<double>(), 0.0);
  EXPECT_EQ(result["total"]["io_errors"], 0);
}

TEST_F(PerfTest, TableListsEveryJobAndTheTotal) {
  RunResult r =
      Perf(kNullConfig, {"-q", "4", "-o", "4096", "-w", "read", "-t", "1", "--cpus", "0-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("IOPS"));
  EXPECT_THAT(r.out, HasSubstr("MiB/s"));
  EXPECT_THAT(r.out, HasSubstr("p99.9"));
  EXPECT_THAT(r.out, HasSubstr("Total"));
  // One job per bdev per core.
  size_t jobs = 0;
  for (size_t pos = r.out.find("\nNull0 "); pos != std::string::npos;
       pos = r.out.find("\nNull0 ", pos + 1)) {
    ++jobs;
  }
  EXPECT_EQ(jobs, 2u) << r.out;
}

TEST_F(PerfTest, EveryWorkloadRunsOnMalloc) {
  for (const char* workload : {"read", "write", "randread", "randwrite", "rw", "randrw"}) {
    RunResult r = Perf(kMallocConfig,
                       {"-q", "8", "-o", "8k", "-w", workload, "-t", "1", "--cpus", "0", "--json"});
    ASSERT_EQ(r.exit_code, 0) << workload << ": " << r.err;
    json result = ParseJson(r);
    const json& total = result["total"];
    EXPECT_GT(total["ops"].get<uint64_t>(), 0u) << workload;
    const std::string w = workload;
    if (w == "read" || w == "randread") {
      EXPECT_EQ(total["write_ops"], 0) << w;
    }
    if (w == "write" || w == "randwrite") {
      EXPECT_EQ(total["read_ops"], 0) << w;
    }
    if (w == "rw" || w == "randrw") {
      EXPECT_GT(total["read_ops"].get<uint64_t>(), 0u) << w;
      EXPECT_GT(total["write_ops"].get<uint64_t>(), 0u) << w;
      EXPECT_EQ(result["read_percent"], 50);
    }
  }
}

TEST_F(PerfTest, RwMixFollowsReadPercent) {
  RunResult r = Perf(kNullConfig, {"-q", "16", "-o", "4k", "-w", "randrw", "-M", "0", "-t", "1",
                                   "--cpus", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json total = ParseJson(r)["total"];
  EXPECT_EQ(total["read_ops"], 0);
  EXPECT_GT(total["write_ops"].get<uint64_t>(), 0u);

  r = Perf(kNullConfig,
           {"-q", "16", "-o", "4k", "-w", "rw", "-M", "100", "-t", "1", "--cpus", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  total = ParseJson(r)["total"];
  EXPECT_GT(total["read_ops"].get<uint64_t>(), 0u);
  EXPECT_EQ(total["write_ops"], 0);
}

TEST_F(PerfTest, VerifyPassesOnMalloc) {
  RunResult r = Perf(kMallocConfig, {"-q", "16", "-o", "4k", "-w", "verify", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  EXPECT_EQ(result["status"], "ok");
  EXPECT_EQ(result["total"]["miscompares"], 0);
  EXPECT_GT(result["total"]["read_ops"].get<uint64_t>(), 0u);
  EXPECT_GT(result["total"]["write_ops"].get<uint64_t>(), 0u);
  EXPECT_THAT(r.err, Not(HasSubstr("verify failed")));
}

TEST_F(PerfTest, VerifyPassesThroughPassthru) {
  RunResult r =
      Perf(kPassthruConfig, {"-q", "8", "-o", "16k", "-w", "verify", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  // The claimed base is not a default target: only the passthru is measured.
  for (const json& job : result["jobs"]) EXPECT_EQ(job["bdev"], "PT0");
  EXPECT_EQ(result["total"]["miscompares"], 0);
}

TEST_F(PerfTest, VerifyFailsLoudlyOnCorruptedData) {
  RunResult r = Perf(kCorruptConfig,
                     {"-q", "8", "-o", "4k", "-w", "verify", "-t", "1", "--cpus", "0", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // Which bdev, where, what was expected and what came back.
  EXPECT_THAT(r.err, HasSubstr("verify failed on bdev EE_Malloc0"));
  EXPECT_THAT(r.err, HasSubstr("byte 100"));
  EXPECT_THAT(r.err, HasSubstr("expected 0x"));
  EXPECT_THAT(r.err, HasSubstr("got 0x"));
  json result = ParseJson(r);
  EXPECT_EQ(result["status"], "failed");
  EXPECT_GE(result["total"]["miscompares"].get<uint64_t>(), 1u);
}

TEST_F(PerfTest, IoErrorsAreCountedPrintedAndFailTheRun) {
  RunResult r = Perf(kFailingReadsConfig,
                     {"-q", "8", "-o", "4k", "-w", "randread", "-t", "1", "--cpus", "0"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("I/O error on bdev EE_Malloc0"));
  EXPECT_THAT(r.out, HasSubstr("FAILED: 3 I/O error(s)"));
}

TEST_F(PerfTest, ReadsOfAClaimedBdevNamedWithB) {
  RunResult r = Perf(kPassthruConfig, {"-q", "4", "-o", "4k", "-w", "randread", "-t", "1", "--cpus",
                                       "0", "-b", "Malloc0,PT0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json jobs = ParseJson(r)["jobs"];
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]["bdev"], "Malloc0");
  EXPECT_EQ(jobs[1]["bdev"], "PT0");
}

// A passthru and its base measured on one core: the base's channel completes the passthru's
// forwarded I/O too, and each job must report only its own. Both jobs stop in one pass of their
// worker's timer, so their figures and their channels' totals (bdev_ops) are taken at the same
// instant: the base's total is exactly the sum of the two jobs' operations. With a ramp, the
// window's figures are differences, and the same holds.
TEST_F(PerfTest, EachJobCountsItsOwnIoWithAPassthruAndItsBaseOnOneCore) {
  for (const std::vector<std::string>& ramp :
       {std::vector<std::string>{}, std::vector<std::string>{"--ramp-time", "1"}}) {
    std::vector<std::string> args = {"-q", "8",  "-o", "4k", "-w",          "randread", "-t",
                                     "1",  "-m", "0",  "-b", "Malloc0,PT0", "--json"};
    args.insert(args.end(), ramp.begin(), ramp.end());
    RunResult r = Perf(kPassthruConfig, args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json result = ParseJson(r);
    json jobs = result["jobs"];
    ASSERT_EQ(jobs.size(), 2u) << result.dump();
    const json& base = jobs[0];
    const json& upper = jobs[1];
    ASSERT_EQ(base["bdev"], "Malloc0");
    ASSERT_EQ(upper["bdev"], "PT0");
    const uint64_t base_ops = base["ops"].get<uint64_t>();
    const uint64_t upper_ops = upper["ops"].get<uint64_t>();
    EXPECT_GT(base_ops, 0u) << result.dump();
    EXPECT_GT(upper_ops, 0u) << result.dump();
    for (const json& job : jobs) {
      EXPECT_EQ(job["read_ops"], job["ops"]) << job.dump();
      EXPECT_EQ(job["bytes"].get<uint64_t>(), job["ops"].get<uint64_t>() * 4096) << job.dump();
    }
    // Every completion of each bdev on the core belongs to exactly one job.
    EXPECT_EQ(base["bdev_ops"].get<uint64_t>(), base_ops + upper_ops) << result.dump();
    EXPECT_EQ(upper["bdev_ops"].get<uint64_t>(), upper_ops) << result.dump();
    EXPECT_EQ(result["total"]["ops"].get<uint64_t>(), base_ops + upper_ops) << result.dump();
    // Each job's rate is its own operations over its own window.
    for (const json& job : jobs) {
      EXPECT_NEAR(job["iops"].get<double>() * job["runtime_s"].get<double>(),
                  job["ops"].get<double>(), 1.0)
          << job.dump();
    }
  }
}

TEST_F(PerfTest, LongRunsPrintProgressEverySecond) {
  RunResult r = Perf(kNullConfig,
                     {"-q", "8", "-o", "4k", "-w", "randread", "-t", "3", "--cpus", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("IOPS"));
  EXPECT_THAT(r.err, HasSubstr("MiB/s"));
  ParseJson(r);  // progress lines stay off stdout
}

// --rate holds each job (one per bdev per core) to its rate, whatever the device could do: a
// null bdev does millions of IOPS per core. Interrupt mode, where a paced core sleeps between
// refills. The bounds are on the rate, not on speed: no job may pass it (a token bucket
// submits at most 1 + rate x time), and each must come within 20 % of it.
TEST_F(PerfTest, RateHoldsEveryJobToItsIops) {
  constexpr double kRate = 2000;
  RunResult r = Perf(kNullConfig, {"-q", "32", "-o", "4k", "-w", "randread", "-t", "2", "--cpus",
                                   "0-1", "--mode", "interrupt", "--rate", "2000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("at most 2000 IOPS per job"));
  json result = ParseJson(r);
  EXPECT_EQ(result["rate_iops_per_job"], 2000);
  EXPECT_EQ(result["status"], "ok");
  ASSERT_EQ(result["jobs"].size(), 2u);
  for (const json& job : result["jobs"]) {
    const double runtime = job["runtime_s"].get<double>();
    const double iops = job["iops"].get<double>();
    EXPECT_GE(iops, 0.8 * kRate) << job.dump();
    EXPECT_LE(iops, 1.05 * kRate) << job.dump();
    // The bucket's own bound (one token at the start, the rest as earned), +1 for rounding.
    EXPECT_LE(job["ops"].get<double>(), 1 + kRate * runtime + 1) << job.dump();
    ExpectLatencyFields(job);
  }
  // Per job: two jobs, twice the rate in total.
  EXPECT_GE(result["total"]["iops"].get<double>(), 2 * 0.8 * kRate);
  EXPECT_LE(result["total"]["iops"].get<double>(), 2 * 1.05 * kRate);
}

TEST_F(PerfTest, MoveThreadsShowsInHelp) {
  RunResult help = RunProgram({PerfPath(), "--help"}, std::chrono::seconds(60));
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_THAT(help.out, HasSubstr("--move-threads USEC"));
  EXPECT_THAT(help.out, HasSubstr("testing aid"));
}

TEST_F(PerfTest, RateShowsInHelpAndTable) {
  RunResult help = RunProgram({PerfPath(), "--help"}, std::chrono::seconds(60));
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_THAT(help.out, HasSubstr("--rate IOPS"));
  EXPECT_THAT(help.out, HasSubstr("per job"));

  // Paced verify: the read-back waits for its token too, and still compares.
  RunResult r = Perf(kMallocConfig, {"-q", "8", "-o", "4k", "-w", "verify", "-t", "1", "--cpus",
                                     "0", "--rate", "500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rate limit 500 IOPS per job\n"));
  EXPECT_THAT(r.err, Not(HasSubstr("verify failed")));
}

// ---- -o MIN-MAX and --buffer-offset ----

bool UringDisabled() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int disabled = 0;
  return (in >> disabled) && disabled == 2;
}

// A uring bdev over `file` (a regular file: 512-byte blocks, O_DIRECT where the filesystem
// takes it, so the bdev requires aligned buffers and the layer bounces odd ones).
std::string UringConfig(const std::string& file) {
  return R"({"subsystems": [{"subsystem": "bdev", "config": [
    {"method": "bdev_uring_create", "params": {"name": "Uring0", "filename": ")" +
         file + R"("}}]}]})";
}

// The figures of a job (or the total) run with -o 512-128k: every I/O moved its own length,
// whole 512-byte blocks from 512 B to 128 KiB (none all of one bound), and MiB/s counts those
// bytes, not ops x 128 KiB.
void ExpectBytesOfARange(const json& figures, bool check_rate) {
  constexpr uint64_t kMin = 512, kMax = 128 << 10;
  const uint64_t ops = figures["ops"].get<uint64_t>();
  const uint64_t bytes = figures["bytes"].get<uint64_t>();
  ASSERT_GT(ops, 0u) << figures.dump();
  EXPECT_EQ(bytes % kMin, 0u) << figures.dump();
  EXPECT_GT(bytes, ops * kMin) << figures.dump();
  EXPECT_LT(bytes, ops * kMax) << figures.dump();
  // Lengths drawn evenly: the mean is near the middle (65792 B). From a hundred I/O (fifty
  // lengths under verify, each written and read back) its standard deviation is 5.3 KiB: a
  // quarter and three quarters of MAX lie over 6 of them away.
  if (ops >= 100) {
    EXPECT_GT(bytes, ops * kMax / 4) << figures.dump();
    EXPECT_LT(bytes, ops * kMax * 3 / 4) << figures.dump();
  }
  if (check_rate) {
    const double runtime = figures["runtime_s"].get<double>();
    EXPECT_NEAR(figures["mib_per_s"].get<double>() * runtime * (1 << 20),
                static_cast<double>(bytes), 0.001 * static_cast<double>(bytes) + 1)
        << figures.dump();
  }
}

// verify from 512 B to 128 KiB into buffers at odd addresses: every read-back compares (it
// covers exactly the blocks its write did, and the pattern is written and checked at any
// address), and the report gives the range.
void ExpectRangedVerifyPassed(const RunResult& r, const json& result, uint32_t depth) {
  EXPECT_THAT(r.err, Not(HasSubstr("verify failed")));
  EXPECT_THAT(r.err, Not(HasSubstr("I/O error")));
  EXPECT_EQ(result["status"], "ok") << r.out;
  EXPECT_EQ(result["io_size"], 131072);
  EXPECT_EQ(result["io_size_min"], 512);
  EXPECT_EQ(result["buffer_offset"], 7);
  const json& total = result["total"];
  EXPECT_EQ(total["miscompares"], 0);
  EXPECT_EQ(total["io_errors"], 0);
  EXPECT_GT(total["read_ops"].get<uint64_t>(), 0u);
  ExpectBytesOfARange(total, /*check_rate=*/false);
  for (const json& job : result["jobs"]) {
    EXPECT_TRUE(job["ran"].get<bool>()) << job.dump();
    ExpectBytesOfARange(job, /*check_rate=*/true);
    // Each write is read back before its slot writes again: at most DEPTH reads behind.
    const uint64_t writes = job["write_ops"].get<uint64_t>();
    const uint64_t reads = job["read_ops"].get<uint64_t>();
    EXPECT_GE(writes, reads) << job.dump();
    EXPECT_LE(writes - reads, depth) << job.dump();
  }
}

TEST_F(PerfTest, VerifyWithSizeRangeAndOddBuffersOnMalloc) {
  RunResult r = Perf(kMallocConfig, {"-q", "16", "-o", "512-128k", "-w", "verify", "-t", "1",
                                     "--buffer-offset", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectRangedVerifyPassed(r, ParseJson(r), 16);
}

TEST_F(PerfTest, VerifyWithSizeRangeAndOddBuffersOnUringFile) {
  if (UringDisabled()) GTEST_SKIP() << "io_uring is disabled (kernel.io_uring_disabled = 2)";
  const std::string file = dir_.File("disk.img");
  std::ofstream(file).close();
  std::filesystem::resize_file(file, 64ull << 20);
  RunResult r = Perf(UringConfig(file), {"-q", "16", "-o", "512-128k", "-w", "verify", "-t", "1",
                                         "--buffer-offset", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json result = ParseJson(r);
  for (const json& job : result["jobs"]) EXPECT_EQ(job["bdev"], "Uring0");
  ExpectRangedVerifyPassed(r, result, 16);
}

// Every workload takes a range, into buffers at the largest offset (4095: each buffer then
// crosses a 4 KiB boundary it would not otherwise).
TEST_F(PerfTest, SizeRangeAndBufferOffsetOnEveryWorkload) {
  for (const char* workload : {"read", "write", "randread", "randwrite", "rw", "randrw"}) {
    RunResult r = Perf(kMallocConfig, {"-q", "8", "-o", "512-128k", "-w", workload, "-t", "1",
                                       "--cpus", "0", "--buffer-offset", "4095", "--json"});
    ASSERT_EQ(r.exit_code, 0) << workload << ": " << r.err;
    json result = ParseJson(r);
    EXPECT_EQ(result["io_size"], 131072) << workload;
    EXPECT_EQ(result["io_size_min"], 512) << workload;
    EXPECT_EQ(result["buffer_offset"], 4095) << workload;
    ASSERT_EQ(result["jobs"].size(), 1u) << r.out;
    SCOPED_TRACE(workload);
    ExpectBytesOfARange(result["jobs"][0], /*check_rate=*/true);
  }
}

TEST_F(PerfTest, SizeRangeAndBufferOffsetShowInHelpAndTable) {
  RunResult help = RunProgram({PerfPath(), "--help"}, std::chrono::seconds(60));
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_THAT(help.out, HasSubstr("a range MIN-MAX"));
  EXPECT_THAT(help.out, HasSubstr("bsrange"));
  EXPECT_THAT(help.out, HasSubstr("--buffer-offset BYTES"));

  RunResult r = Perf(kNullConfig, {"-q", "8", "-o", "4k-16k", "-w", "randread", "-t", "1", "--cpus",
                                   "0", "--buffer-offset", "7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("I/O of 4096 to 16384 bytes, 1 s, buffers 7 bytes past a 4 KiB boundary"));
  EXPECT_THAT(r.err, HasSubstr("I/O of 4096 to 16384 bytes"));  // the plan line
}

TEST_F(PerfTest, SigintStopsEarlyAndStillReports) {
  Process perf({PerfPath(), "-c", dir_.Write("config.json", kNullConfig), "-q", "8", "-o", "4k",
                "-w", "randread", "-t", "600", "--json"});
  // Wait until the jobs run (the coordinator logs the plan just before starting them).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (perf.Err().find("jobs on core") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  perf.Signal(SIGINT);
  ASSERT_EQ(perf.Wait(std::chrono::seconds(30)), 0) << perf.Err();
  json result = json::parse(perf.Out());
  for (const json& job : result["jobs"]) {
    EXPECT_TRUE(job["ran"].get<bool>());
    EXPECT_TRUE(job["stopped_early"].get<bool>());
    EXPECT_LT(job["runtime_s"].get<double>(), 60.0);
    EXPECT_GT(job["ops"].get<uint64_t>(), 0u);
  }
}

struct BadInput {
  const char* name;
  const char* config;  // nullptr: no -c at all
  std::vector<std::string> args;
  int exit_code;
  const char* message;
};

// gtest prints the parameter in test listings: its name, not its bytes.
void PrintTo(const BadInput& input, std::ostream* os) { *os << input.name; }

class PerfBadInputTest : public PerfTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(PerfBadInputTest, ClearErrorAndExitCode) {
  const BadInput& input = GetParam();
  RunResult r;
  if (input.config == nullptr) {
    std::vector<std::string> argv = {PerfPath()};
    argv.insert(argv.end(), input.args.begin(), input.args.end());
    r = RunProgram(argv, std::chrono::seconds(60));
  } else {
    r = Perf(input.config, input.args);
  }
  EXPECT_EQ(r.exit_code, input.exit_code) << r.err;
  EXPECT_THAT(r.err, HasSubstr(input.message));
  EXPECT_EQ(r.out, "");  // no half report
}

const std::vector<std::string> Args(std::vector<std::string> extra) {
  std::vector<std::string> args = {"-q",       "8",  "-o", "4k",     "-w",
                                   "randread", "-t", "1",  "--cpus", "0"};
  // Later options override earlier ones.
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

constexpr char kEmptyConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": []}]})";

// A 64 KiB bdev: two 32 KiB I/Os.
constexpr char kTinyConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Tiny", "num_blocks": 16, "block_size": 4096}}]}]})";

INSTANTIATE_TEST_SUITE_P(
    Perf, PerfBadInputTest,
    ::testing::Values(
        BadInput{"UnknownWorkload", kNullConfig, Args({"-w", "randomread"}), 2,
                 "unknown workload \"randomread\""},
        BadInput{"BadSize", kNullConfig, Args({"-o", "4q"}), 2, "-o: expected a size"},
        BadInput{"ZeroSize", kNullConfig, Args({"-o", "0"}), 2, "-o: expected a size"},
        BadInput{"ZeroDepth", kNullConfig, Args({"-q", "0"}), 2, "-q: expected a queue depth"},
        BadInput{"ZeroTime", kNullConfig, Args({"-t", "0"}), 2, "-t: expected seconds"},
        BadInput{"MixAbove100", kNullConfig, Args({"-w", "rw", "-M", "101"}), 2,
                 "-M: expected a read percentage"},
        BadInput{"MixWithoutMixedWorkload", kNullConfig, Args({"-M", "30"}), 2,
                 "-M applies to rw and randrw only"},
        BadInput{"NoConfig", nullptr, Args({}), 2, "-c CONFIG is required"},
        BadInput{"NoWorkload",
                 nullptr,
                 {"-c", "x.json", "-q", "1", "-o", "4k", "-t", "1"},
                 2,
                 "-w WORKLOAD is required"},
        BadInput{"ZeroRate", kNullConfig, Args({"--rate", "0"}), 2,
                 "--rate: expected I/Os per second per job from 1 to 1000000000, got \"0\" (for "
                 "no limit, leave --rate out)"},
        BadInput{"GarbageRate", kNullConfig, Args({"--rate", "fast"}), 2,
                 "--rate: expected I/Os per second per job from 1 to 1000000000, got \"fast\""},
        BadInput{"RateAboveMax", kNullConfig, Args({"--rate", "1000000001"}), 2,
                 "--rate: expected I/Os per second per job"},
        BadInput{"RateWithoutValue", kNullConfig, Args({"--rate"}), 2,
                 "option --rate needs a value"},
        BadInput{"RateWithMemcpyPeer", kNullConfig, Args({"--rate", "1000", "--memcpy-peer"}), 2,
                 "--rate holds the jobs below their peak"},
        BadInput{"MoveThreadsOnOneCore", kNullConfig, Args({"--move-threads", "1000"}), 2,
                 "--move-threads moves job threads between the cores of the run, and --cpus 0 "
                 "gives one core: there is no other core to move to"},
        BadInput{"MoveThreadsTooOften", kNullConfig, Args({"--cpus", "0-1", "--move-threads", "5"}),
                 2,
                 "--move-threads: expected a period in microseconds from 10 to 60000000, got "
                 "\"5\""},
        BadInput{"MoveThreadsGarbage", kNullConfig,
                 Args({"--cpus", "0-1", "--move-threads", "1ms"}), 2,
                 "--move-threads: expected a period in microseconds"},
        BadInput{"MoveThreadsWithMemcpyPeer", kNullConfig,
                 Args({"--cpus", "0-1", "--move-threads", "1000", "--memcpy-peer"}), 2,
                 "--move-threads costs the jobs part of their peak"},
        BadInput{"UnknownScheduler", kNullConfig, Args({"--scheduler", "fastest"}), 2,
                 "--scheduler: unknown scheduler \"fastest\" (registered: dynamic, hold, "
                 "static)"},
        BadInput{"SchedulerWithoutValue", kNullConfig, Args({"--scheduler"}), 2,
                 "option --scheduler needs a value"},
        BadInput{"SchedulerPeriodWithoutScheduler", kNullConfig,
                 Args({"--scheduler-period", "100000"}), 2,
                 "--scheduler-period sets the period of the scheduler --scheduler selects"},
        BadInput{"ZeroSchedulerPeriod", kNullConfig,
                 Args({"--scheduler", "dynamic", "--scheduler-period", "0"}), 2,
                 "--scheduler-period: expected a period in microseconds from 1 to 60000000, "
                 "got \"0\""},
        BadInput{"SchedulerPeriodTooLong", kNullConfig,
                 Args({"--scheduler", "dynamic", "--scheduler-period", "60000001"}), 2,
                 "--scheduler-period: expected a period in microseconds"},
        BadInput{"SchedulerWithMoveThreads", kNullConfig,
                 Args({"--cpus", "0-1", "--move-threads", "1000", "--scheduler", "dynamic"}), 2,
                 "--move-threads moves the job threads itself, and --scheduler dynamic would "
                 "move them too"},
        BadInput{"GarbageRampTime", kNullConfig, Args({"--ramp-time", "2s"}), 2,
                 "--ramp-time: expected seconds from 0 to 1000000, got \"2s\""},
        BadInput{"RampTimeTooLong", kNullConfig, Args({"--ramp-time", "1000001"}), 2,
                 "--ramp-time: expected seconds"},
        BadInput{"ThreadPerJobTakesNoValue", kNullConfig, Args({"--thread-per-job=2"}), 2,
                 "unknown option"},
        BadInput{"UnknownOption", kNullConfig, Args({"--frobnicate"}), 2, "unknown option"},
        BadInput{"BadCores", kNullConfig, Args({"--cpus", "4096"}), 2, "4096"},
        BadInput{"MissingConfigFile", nullptr, Args({"-c", "/nonexistent/perf.json"}), 1,
                 "/nonexistent/perf.json"},
        BadInput{"ConfigWithoutBdev", kEmptyConfig, Args({}), 1, "creates no bdev"},
        BadInput{"MissingBdev", kNullConfig, Args({"-b", "Null9"}), 1,
                 "-b Null9: no such bdev (the config created: Null0)"},
        BadInput{"SizeNotMultipleOfBlock", kNullConfig, Args({"-o", "1000"}), 1,
                 "-o 1000: not a multiple of the block size of bdev Null0 (512 bytes)"},
        BadInput{"SizeLargerThanDevice", kTinyConfig, Args({"-o", "1M"}), 1,
                 "larger than bdev Tiny (65536 bytes)"},
        BadInput{"SizeRangeMinAboveMax", kNullConfig, Args({"-o", "128k-512"}), 2,
                 "-o 128k-512: MIN (131072 bytes) is larger than MAX (512 bytes)"},
        BadInput{"SizeRangeWithoutMax", kNullConfig, Args({"-o", "512-"}), 2,
                 "-o: expected a size in bytes such as 4096, 4k, 128K or 1M, or a range MIN-MAX "
                 "such as 512-128k, got \"512-\""},
        BadInput{"SizeRangeMinNotMultipleOfBlock", kNullConfig, Args({"-o", "1000-128k"}), 1,
                 "-o 1000-128k: MIN (1000 bytes) not a multiple of the block size of bdev Null0 "
                 "(512 bytes)"},
        BadInput{"SizeRangeMaxNotMultipleOfBlock", kNullConfig, Args({"-o", "512-1000"}), 1,
                 "-o 512-1000: MAX (1000 bytes) not a multiple of the block size of bdev Null0 "
                 "(512 bytes)"},
        BadInput{"SizeRangeLargerThanDevice", kTinyConfig, Args({"-o", "4k-1M"}), 1,
                 "-o 4k-1M: MAX 1048576 bytes, larger than bdev Tiny (65536 bytes)"},
        BadInput{"BufferOffset4096", kNullConfig, Args({"--buffer-offset", "4096"}), 2,
                 "--buffer-offset: expected a byte offset from 0 to 4095, got \"4096\""},
        BadInput{"BufferOffsetGarbage", kNullConfig, Args({"--buffer-offset", "odd"}), 2,
                 "--buffer-offset: expected a byte offset from 0 to 4095, got \"odd\""},
        BadInput{"DeviceSmallerThanCores", kTinyConfig, Args({"-o", "64k", "--cpus", "0-1"}), 1,
                 "fewer than the 2 cores"},
        BadInput{"WriteUnderAVirtualBdev", kPassthruConfig,
                 Args({"-w", "randwrite", "-b", "Malloc0"}), 1, "bdev Malloc0 is claimed"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

}  // namespace
}  // namespace pollux::testing
