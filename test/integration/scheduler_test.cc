// Thread placement with real processes: pollux-scheduler-test-app on cores 0-1 in interrupt
// mode, threads made busy or idle over RPC (scheduler_thread_create / _set_active / _delete),
// and what the schedulers do with them. An idle reactor must really sleep: its OS thread's CPU
// time is read from /proc. The timeouts are generous: these check behaviour, not speed.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "raw_client.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string SchedulerAppPath() { return POLLUX_SCHEDULER_APP_PATH; }

// The core the app thread runs on (the first reactor's) and the one that should sleep.
constexpr int kMainCore = 0;
constexpr int kOtherCore = 1;
// "Sleeps": its reactor's OS thread used under this share of one core over kCpuWindow.
constexpr double kSleepingCpuShare = 0.01;
constexpr auto kCpuWindow = 2s;
// How long placements may take to settle (the dynamic scheduler runs every 100 ms here).
constexpr auto kSettleTimeout = 10s;

// A JSON-RPC client on one connection, kept for the whole test: thousands of calls without a
// pollux-rpc process each.
class RpcClient {
 public:
  explicit RpcClient(const std::string& path) : raw_(path) { raw_.SetTimeout(30); }

  bool connected() const { return raw_.connected(); }

  // The whole reply ({"result": ..} or {"error": {"code", "message"}}); null when the
  // connection failed.
  json Call(const std::string& method, const json& params = nullptr) {
    json request = {{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}};
    if (!params.is_null()) request["params"] = params;
    if (!raw_.Send(request.dump())) return nullptr;
    return raw_.ReadReply();
  }

 private:
  RawClient raw_;
  int id_ = 0;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// CPU time of one OS thread so far: nanoseconds on a CPU (schedstat, exact where the kernel
// keeps it) and utime+stime (stat, in clock ticks of 10 ms: 0.5% of a 2 s window each).
struct CpuTime {
  bool has_schedstat = false;
  uint64_t run_ns = 0;
  uint64_t ticks = 0;
};

CpuTime ReadCpuTime(pid_t pid, pid_t tid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  CpuTime t;
  std::istringstream schedstat(ReadFile(dir + "/schedstat"));
  t.has_schedstat = static_cast<bool>(schedstat >> t.run_ns);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  std::string stat = ReadFile(dir + "/stat");
  size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(stat.substr(paren + 1));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    if (f.size() > 12) t.ticks = std::stoull(f[11]) + std::stoull(f[12]);
  }
  return t;
}

// Share of one core that thread `tid` used over `window`, both ways.
struct CpuShare {
  double share = 0;       // schedstat's when there is one, stat's otherwise: what tests judge
  double stat_share = 0;  // utime+stime's, for the messages
  std::string Describe() const {
    std::ostringstream out;
    out << share * 100 << "% of a core (utime+stime: " << stat_share * 100 << "%)";
    return out.str();
  }
};

CpuShare MeasureCpu(pid_t pid, pid_t tid, std::chrono::milliseconds window) {
  const auto start = std::chrono::steady_clock::now();
  CpuTime before = ReadCpuTime(pid, tid);
  std::this_thread::sleep_for(window);
  CpuTime after = ReadCpuTime(pid, tid);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CpuShare share;
  share.stat_share = static_cast<double>(after.ticks - before.ticks) /
                     static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds;
  share.share = after.has_schedstat
                    ? static_cast<double>(after.run_ns - before.run_ns) / 1e9 / seconds
                    : share.stat_share;
  return share;
}

class SchedulerAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = std::make_unique<Target>(
        std::vector<std::string>{"--cpus", "0-1", "--mode", "interrupt"}, "", SchedulerAppPath());
    ASSERT_TRUE(app_->running()) << app_->Stderr();
    rpc_ = std::make_unique<RpcClient>(app_->socket());
    ASSERT_TRUE(rpc_->connected());
  }

  void TearDown() override {
    if (app_ == nullptr || !app_->running()) return;
    // A clean shutdown deletes the test threads (the app's "scheduler_test" subsystem).
    EXPECT_EQ(app_->Signal(SIGTERM), 0) << app_->Stderr();
  }

  // The result of a call that must succeed (null after a test failure naming the call).
  json Ok(const std::string& method, const json& params = nullptr) {
    json reply = rpc_->Call(method, params);
    EXPECT_TRUE(reply.contains("result"))
        << method << " " << params.dump() << " -> " << reply.dump() << "\n"
        << app_->Stderr();
    return reply.contains("result") ? reply["result"] : json();
  }

  // The error of a call that must fail ({"code", "message"}).
  json Error(const std::string& method, const json& params = nullptr) {
    json reply = rpc_->Call(method, params);
    EXPECT_TRUE(reply.contains("error"))
        << method << " " << params.dump() << " -> " << reply.dump();
    return reply.contains("error") ? reply["error"] : json();
  }

  json Threads() { return Ok("thread_get_stats")["threads"]; }
  json Reactors() { return Ok("framework_get_reactors")["reactors"]; }

  json ReactorOn(int core) {
    for (const json& r : Reactors()) {
      if (r["core"] == core) return r;
    }
    ADD_FAILURE() << "no reactor on core " << core;
    return json::object();
  }

  // What a failure message shows: where every thread is and what every reactor does.
  std::string State() {
    json threads = rpc_->Call("thread_get_stats");
    json reactors = rpc_->Call("framework_get_reactors");
    return "thread_get_stats: " + threads.dump(1) + "\nframework_get_reactors: " + reactors.dump(1);
  }

  // Polls `done` every 100 ms until it holds or `timeout` passes.
  template <typename Predicate>
  bool WaitFor(Predicate done, std::chrono::milliseconds timeout = kSettleTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(100ms);
    }
  }

  // The core of each thread in `ids` (-1 when it is not listed).
  std::vector<int> CoresOf(const std::vector<uint64_t>& ids) {
    json threads = Threads();
    std::vector<int> cores;
    for (uint64_t id : ids) {
      int core = -1;
      for (const json& t : threads) {
        if (t["id"] == id) core = t["core"];
      }
      cores.push_back(core);
    }
    return cores;
  }

  // The OS thread of the reactor on `core`. DPDK names each lcore thread after its lcore id
  // ("rte-worker-<lcore>" in DPDK 22.11, "dpdk-worker<lcore>" from 23.11) and pins it to its
  // core; the reactor's lcore comes from framework_get_reactors. Both must agree.
  pid_t ReactorTid(int core) {
    const int lcore = ReactorOn(core).value("lcore", -1);
    const std::string task_dir = "/proc/" + std::to_string(app_->pid()) + "/task";
    std::string seen;
    pid_t found = -1;
    if (DIR* dir = opendir(task_dir.c_str())) {
      while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        const std::string task = task_dir + "/" + entry->d_name;
        const std::string comm = Trim(ReadFile(task + "/comm"));
        std::string allowed;
        std::istringstream status(ReadFile(task + "/status"));
        for (std::string line; std::getline(status, line);) {
          if (line.rfind("Cpus_allowed_list:", 0) == 0) {
            allowed = line.substr(line.find_first_not_of(" \t", 18));
          }
        }
        seen += std::string(entry->d_name) + " \"" + comm + "\" cores " + allowed + "\n";
        const std::string n = std::to_string(lcore);
        const bool named = comm.ends_with("worker-" + n) || comm.ends_with("worker" + n);
        if (named && allowed == std::to_string(core)) found = std::stoi(entry->d_name);
      }
      closedir(dir);
    }
    EXPECT_GT(found, 0) << "no OS thread named after lcore " << lcore << " and pinned to core "
                        << core << " among:\n"
                        << seen;
    return found;
  }

  // Checks that the reactor on `core` is asleep and its OS thread uses (almost) no CPU.
  void ExpectReactorSleeps(int core, const std::string& when) {
    pid_t tid = ReactorTid(core);
    ASSERT_GT(tid, 0);
    // framework_get_reactors reads the reactors' counters without a message to them: it does
    // not wake the one it looks at, whereas thread_get_stats would.
    EXPECT_TRUE(WaitFor([&] { return ReactorOn(core).value("in_interrupt", false); }))
        << when << ": the reactor on core " << core << " never went to sleep\n"
        << State();
    CpuShare cpu = MeasureCpu(app_->pid(), tid, kCpuWindow);
    EXPECT_LT(cpu.share, kSleepingCpuShare)
        << when << ": the reactor on core " << core << " (OS thread " << tid << ") used "
        << cpu.Describe() << " over 2 s\n"
        << State();
    EXPECT_TRUE(ReactorOn(core).value("in_interrupt", false))
        << when << ": the reactor on core " << core << " is awake\n"
        << State();
  }

  uint64_t CreateThread(const json& params) {
    json id = Ok("scheduler_thread_create", params);
    EXPECT_TRUE(id.is_number_unsigned()) << id.dump();
    return id.is_number_unsigned() ? id.get<uint64_t>() : 0;
  }

  std::unique_ptr<Target> app_;
  std::unique_ptr<RpcClient> rpc_;
};

// (a) With only the app thread, the reactor on core 1 has nothing to do and sleeps.
TEST_F(SchedulerAppTest, IdleReactorSleeps) {
  std::this_thread::sleep_for(2s);
  ExpectReactorSleeps(kOtherCore, "idle app");
}

// The app itself: a thread is as busy as asked, its reactor sleeps in the rest of each
// millisecond, at 0 it lets its reactor sleep for good, and deleted it is gone.
TEST_F(SchedulerAppTest, ThreadIsActivePercentBusy) {
  uint64_t id = CreateThread({{"name", "load30"}, {"cpu_mask", "0x2"}, {"active_percent", 30}});
  ASSERT_NE(id, 0u);
  pid_t tid = ReactorTid(kOtherCore);
  ASSERT_GT(tid, 0);
  std::this_thread::sleep_for(500ms);

  // Thread and reactor counters from framework_get_reactors: reading them wakes nobody.
  auto busy_ticks = [&] {
    const json reactor = ReactorOn(kOtherCore);  // the loop below must not outlive it
    for (const json& t : reactor["lw_threads"]) {
      if (t["id"] == id) return t["busy"].get<uint64_t>();
    }
    return uint64_t{0};
  };
  const double tick_rate = Ok("framework_get_reactors")["tick_rate"].get<double>();
  const auto start = std::chrono::steady_clock::now();
  const uint64_t busy_before = busy_ticks();
  const uint64_t sleeps_before = ReactorOn(kOtherCore)["sleeps"];
  CpuShare cpu = MeasureCpu(app_->pid(), tid, kCpuWindow);
  const uint64_t busy_after = busy_ticks();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double busy_share = static_cast<double>(busy_after - busy_before) / tick_rate / seconds;
  const uint64_t sleeps = ReactorOn(kOtherCore)["sleeps"].get<uint64_t>() - sleeps_before;
  // Wide bands: CI runs this beside other tests on two cores, and a preempted reactor spins
  // less. What matters is that the thread is partly busy and its reactor sleeps in between.
  EXPECT_GT(busy_share, 0.05) << State();
  EXPECT_LT(busy_share, 0.6) << State();
  EXPECT_LT(cpu.share, 0.9) << cpu.Describe() << "\n" << State();
  // Between two runs of its poller the reactor sleeps: about once per millisecond.
  EXPECT_GT(sleeps, 100u) << State();

  // At 100% the poller spins through every run and the reactor no longer sleeps.
  Ok("scheduler_thread_set_active", {{"thread_id", id}, {"active_percent", 100}});
  std::this_thread::sleep_for(100ms);
  const uint64_t sleeps_busy = ReactorOn(kOtherCore)["sleeps"];
  cpu = MeasureCpu(app_->pid(), tid, 1000ms);
  EXPECT_LT(ReactorOn(kOtherCore)["sleeps"].get<uint64_t>() - sleeps_busy, 20u) << State();
  EXPECT_GT(cpu.share, 0.1) << cpu.Describe() << "\n" << State();

  Ok("scheduler_thread_set_active", {{"thread_id", id}, {"active_percent", 0}});
  ExpectReactorSleeps(kOtherCore, "thread at 0%");
  json thread;
  for (const json& t : Threads()) {
    if (t["id"] == id) thread = t;
  }
  EXPECT_EQ(thread.value("paused_pollers_count", 0), 1) << thread.dump();

  EXPECT_EQ(Ok("scheduler_thread_delete", {{"thread_id", id}}), true);
  EXPECT_TRUE(WaitFor([&] { return CoresOf({id})[0] == -1; })) << State();
  ExpectReactorSleeps(kOtherCore, "thread deleted");
}

TEST_F(SchedulerAppTest, BadThreadParamsAreInvalidParams) {
  const int kInvalidParams = -32602;
  json e = Error("scheduler_thread_create", {{"active_percent", 101}});
  EXPECT_EQ(e["code"], kInvalidParams);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("active_percent"));
  e = Error("scheduler_thread_create", {{"cpu_mask", "zz"}});
  EXPECT_EQ(e["code"], kInvalidParams);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("cpu_mask"));
  e = Error("scheduler_thread_create", {{"cpu_mask", "0x4"}});  // core 2 runs no reactor
  EXPECT_EQ(e["code"], kInvalidParams);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("core 2"));
  e = Error("scheduler_thread_set_active", {{"thread_id", 999}, {"active_percent", 10}});
  EXPECT_EQ(e["code"], kInvalidParams);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("999"));
  e = Error("scheduler_thread_delete", {{"thread_id", 999}});
  EXPECT_EQ(e["code"], kInvalidParams);
  // The app thread is no test thread.
  e = Error("scheduler_thread_delete", {{"thread_id", 1}});
  EXPECT_EQ(e["code"], kInvalidParams);

  uint64_t id = CreateThread({{"cpu_mask", "0-1"}});
  e = Error("scheduler_thread_set_active", {{"thread_id", id}, {"active_percent", 300}});
  EXPECT_EQ(e["code"], kInvalidParams);
  e = Error("scheduler_thread_set_active", {{"thread_id", id}});
  EXPECT_EQ(e["code"], kInvalidParams);
  EXPECT_EQ(Ok("scheduler_thread_delete", {{"thread_id", id}}), true);
  e = Error("scheduler_thread_delete", {{"thread_id", id}});  // twice
  EXPECT_EQ(e["code"], kInvalidParams);
}

// (b) The dynamic scheduler spreads busy threads over the cores and gathers idle ones on the
// app thread's core, whose neighbour then sleeps; (c) the static one puts every thread back on
// its home core.
TEST_F(SchedulerAppTest, DynamicSpreadsBusyThreadsAndGathersIdleOnes) {
  EXPECT_EQ(Ok("framework_set_scheduler", {{"name", "dynamic"}, {"period", 100000}}), true);
  json scheduler = Ok("framework_get_scheduler");
  EXPECT_EQ(scheduler.value("scheduler_name", ""), "dynamic") << scheduler.dump();
  EXPECT_EQ(scheduler.value("scheduler_period", 0), 100000) << scheduler.dump();

  // Two idle threads that may run on either core. Created idle, they gather on the app
  // thread's core first, so that spreading them when busy is the scheduler's doing (created
  // busy, they would start on different cores: creation picks the emptiest reactor).
  std::vector<uint64_t> ids = {CreateThread({{"name", "a"}, {"cpu_mask", "0-1"}}),
                               CreateThread({{"name", "b"}, {"cpu_mask", "0-1"}})};
  ASSERT_NE(ids[0], 0u);
  ASSERT_NE(ids[1], 0u);
  auto all_on_main_core = [&] {
    for (const json& t : Threads()) {
      if (t["core"] != kMainCore) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor(all_on_main_core))
      << "idle threads did not gather on core " << kMainCore << "\n"
      << State();

  for (uint64_t id : ids) {
    Ok("scheduler_thread_set_active", {{"thread_id", id}, {"active_percent", 90}});
  }
  EXPECT_TRUE(WaitFor([&] {
    std::vector<int> cores = CoresOf(ids);
    return cores[0] >= 0 && cores[1] >= 0 && cores[0] != cores[1];
  })) << "two 90% busy threads share a core\n"
      << State();

  for (uint64_t id : ids) {
    Ok("scheduler_thread_set_active", {{"thread_id", id}, {"active_percent", 0}});
  }
  EXPECT_TRUE(WaitFor(all_on_main_core))
      << "idle threads did not gather on core " << kMainCore << "\n"
      << State();
  ExpectReactorSleeps(kOtherCore, "idle threads gathered");

  // (c) Static: each thread goes home (creation put them on the emptiest reactor, so at
  // least one of them has its home on core 1).
  EXPECT_EQ(Ok("framework_set_scheduler", {{"name", "static"}}), true);
  EXPECT_EQ(Ok("framework_get_scheduler").value("scheduler_name", ""), "static");
  EXPECT_TRUE(WaitFor([&] {
    for (const json& t : Threads()) {
      if (t["core"] != t["home_core"]) return false;
    }
    return true;
  })) << "the static scheduler left threads away from their home core\n"
      << State();
  std::set<int> homes;
  for (const json& t : Threads()) homes.insert(t["home_core"].get<int>());
  EXPECT_TRUE(homes.count(kOtherCore)) << State();
}

// (d) Bad scheduler parameters: an error each, and the scheduler stays as it was.
TEST_F(SchedulerAppTest, BadSchedulerParamsLeaveItUnchanged) {
  EXPECT_EQ(
      Ok("framework_set_scheduler", {{"name", "dynamic"}, {"period", 200000}, {"load_limit", 30}}),
      true);
  const json before = Ok("framework_get_scheduler");
  EXPECT_EQ(before.value("scheduler_name", ""), "dynamic") << before.dump();
  EXPECT_EQ(before.value("load_limit", 0), 30) << before.dump();

  const json bad[] = {
      {{"name", "no_such_scheduler"}},
      {{"name", "static"}, {"period", 0}},
      {{"name", "dynamic"}, {"period", 0}},
      {{"name", "dynamic"}, {"load_limit", 101}},
      {{"name", "dynamic"}, {"core_limit", 101}},
      {{"name", "dynamic"}, {"core_busy", 1000}},
      {{"name", "dynamic"}, {"period", "fast"}},
      {{"period", 100000}},
  };
  for (const json& params : bad) {
    json e = Error("framework_set_scheduler", params);
    EXPECT_TRUE(e.contains("code") && e.contains("message")) << params.dump() << " -> " << e.dump();
    EXPECT_EQ(Ok("framework_get_scheduler"), before) << "after " << params.dump();
  }
}

}  // namespace
}  // namespace pollux::testing
