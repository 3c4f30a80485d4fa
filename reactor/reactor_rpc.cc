// RPC methods of the reactor component and the "framework" subsystem's config:
// framework_get_reactors, thread_get_stats, thread_get_pollers, framework_set_mode,
// thread_set_cpumask.
#include <algorithm>
#include <climits>
#include <memory>

#include "pollux/env/cpu_list.h"

#include "pollux/reactor/reactor.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::Required;
using rpc::RpcResponder;

ReactorRuntime* RuntimeOrError(RpcResponder& responder) {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr) responder.Error(rpc::kInternalError, "no reactor is running");
  return runtime;
}

void FrameworkGetReactors(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  ReactorRuntime* runtime = RuntimeOrError(responder);
  if (runtime == nullptr) return;
  Json reactors = Json::array();
  for (const ReactorInfo& info : runtime->Info()) {
    Json threads = Json::array();
    for (const auto& thread : info.threads) {
      threads.push_back({{"id", thread.id},
                         {"name", thread.name},
                         {"busy", thread.busy_tsc},
                         {"idle", thread.idle_tsc}});
    }
    reactors.push_back({{"index", info.index},
                        {"lcore", info.lcore},
                        {"core", info.cpu},
                        {"mode", ReactorModeName(info.mode)},
                        {"in_interrupt", info.sleeping},
                        {"busy", info.busy_tsc},
                        {"idle", info.idle_tsc},
                        {"sleep", info.sleep_tsc},
                        {"sleeps", info.sleeps},
                        {"wakeups", info.wakeups},
                        {"poller_parks", info.poller_parks},
                        {"poller_unparks", info.poller_unparks},
                        {"device_wait",
                         {{"episodes", info.device_wait_episodes},
                          {"spin_us", info.device_wait_spin_us},
                          {"sleep_us", info.device_wait_sleep_us},
                          {"choice", info.device_wait_sleeps ? "sleep" : "spin"}}},
                        {"lw_threads", threads},
                        {"awake_reasons", info.awake_reasons}});
  }
  responder.Result({{"tick_rate", runtime->tsc_hz()},
                    {"mode", ReactorModeName(runtime->mode())},
                    {"spin_window_us", runtime->spin_window().count()},
                    {"reactors", reactors}});
}
POLLUX_RPC_METHOD(
    MethodSpec("framework_get_reactors", "reactor",
               "Describes every reactor: its core, mode, busy, idle and sleep time in ticks, "
               "sleeps and wake-ups, and the lightweight threads it runs. Also answers the tick "
               "rate, the mode set for all and the spin window.",
               {}),
    FrameworkGetReactors);

// Answers {"tick_rate": .., "threads": [describe(thread), ...]} with what `describe` says of
// each thread, run on the thread itself so that its counters are read where they are written
// (thread_get_stats, thread_get_pollers).
void ReplyPerThread(const Json& params, RpcResponder responder,
                    absl::AnyInvocable<Json(Thread&, uint64_t tick_rate)> describe) {
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  ReactorRuntime* runtime = RuntimeOrError(responder);
  if (runtime == nullptr) return;
  auto threads = std::make_shared<Json>(Json::array());
  uint64_t tick_rate = runtime->tsc_hz();
  ForEachThread([threads, tick_rate, describe = std::move(describe)](
                    Thread& thread) mutable { threads->push_back(describe(thread, tick_rate)); },
                [threads, tick_rate, responder = std::move(responder)]() mutable {
                  responder.Result({{"tick_rate", tick_rate}, {"threads", std::move(*threads)}});
                });
}

void ThreadGetStats(const Json& params, RpcResponder responder) {
  ReplyPerThread(params, std::move(responder), [](Thread& thread, uint64_t) -> Json {
    ThreadStats stats = thread.Stats();
    Reactor* reactor = thread.reactor();
    size_t timed = 0, active = 0, paused = 0, parked = 0;
    thread.ForEachPoller([&](const Poller& poller) {
      if (poller.paused())
        ++paused;
      else if (poller.parked())
        ++parked;
      else if (poller.is_timed())
        ++timed;
      else
        ++active;
    });
    return {{"id", thread.id()},
            {"name", thread.name()},
            {"core", reactor != nullptr ? reactor->cpu() : -1},
            {"cpumask", FormatCpuList(thread.cpumask())},
            {"home_core", thread.home_cpu()},
            {"moves", stats.moves},
            {"busy", stats.busy_tsc},
            {"idle", stats.idle_tsc},
            {"messages", stats.messages},
            {"poller_runs", stats.poller_runs},
            {"timed_poller_runs", stats.timed_poller_runs},
            {"active_pollers_count", active},
            {"timed_pollers_count", timed},
            {"paused_pollers_count", paused},
            {"parked_pollers_count", parked},
            {"io_channels_count", thread.io_channel_count()}};
  });
}
POLLUX_RPC_METHOD(
    MethodSpec("thread_get_stats", "reactor",
               "Answers the statistics of every lightweight thread, read on the thread itself: its "
               "core, cpumask and home core, busy and idle time in ticks, messages, poller runs, "
               "its pollers by state and its I/O channels.",
               {}),
    ThreadGetStats);

// SPDK's state names: a registered poller is "waiting" (the RPC runs on the poller's thread, so
// never inside a call of it); pollux adds "parked" (out of the polled set, watched by its fd).
const char* PollerStateName(const Poller& poller) {
  if (poller.paused()) return "paused";
  if (poller.parked()) return "parked";
  return "waiting";
}

Json DescribePoller(const Poller& poller, uint64_t tick_rate) {
  Json out = {{"name", poller.name()},
              {"id", poller.id()},
              {"state", PollerStateName(poller)},
              {"run_count", poller.run_count()},
              {"busy_count", poller.busy_count()}};
  if (poller.is_timed()) {
    out["period_ticks"] = static_cast<uint64_t>(poller.period().count()) * tick_rate / 1000000;
  }
  return out;
}

// SPDK's thread_get_pollers: per thread, its pollers in three lists (active, timed, paused).
void ThreadGetPollers(const Json& params, RpcResponder responder) {
  ReplyPerThread(params, std::move(responder), [](Thread& thread, uint64_t tick_rate) -> Json {
    Json active = Json::array(), timed = Json::array(), paused = Json::array();
    thread.ForEachPoller([&](const Poller& poller) {
      Json& list = poller.paused() ? paused : poller.is_timed() ? timed : active;
      list.push_back(DescribePoller(poller, tick_rate));
    });
    return {{"name", thread.name()},
            {"id", thread.id()},
            {"active_pollers", std::move(active)},
            {"timed_pollers", std::move(timed)},
            {"paused_pollers", std::move(paused)}};
  });
}
POLLUX_RPC_METHOD(
    MethodSpec("thread_get_pollers", "reactor",
               "Lists the pollers of every lightweight thread as SPDK does, in three lists "
               "(active, timed, paused), with each one's state, run and busy counts and, if "
               "timed, its period in ticks; a parked poller (watched by its fd) has state "
               "\"parked\".",
               {}),
    ThreadGetPollers);

void FrameworkSetMode(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::string mode_name = reader.String("mode");
  std::optional<uint64_t> spin_window_us = reader.OptionalUint("spin_window_us");
  std::optional<uint64_t> core = reader.OptionalUint("core");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  auto mode = ParseReactorMode(mode_name);
  if (!mode.ok()) return responder.Error(rpc::kInvalidParams, std::string(mode.status().message()));
  if (spin_window_us && *spin_window_us > 10'000'000) {
    return responder.Error(rpc::kInvalidParams,
                           "parameter \"spin_window_us\" must be at most 10000000 (10 s)");
  }
  ReactorRuntime* runtime = RuntimeOrError(responder);
  if (runtime == nullptr) return;
  if (core) {
    // One reactor; the spin window is every reactor's.
    int cpu = static_cast<int>(std::min<uint64_t>(*core, INT_MAX));
    if (absl::Status s = runtime->SetReactorMode(cpu, *mode); !s.ok()) {
      return responder.Error(rpc::kInvalidParams, std::string(s.message()));
    }
  } else {
    runtime->SetMode(*mode);
  }
  if (spin_window_us) runtime->SetSpinWindow(std::chrono::microseconds(*spin_window_us));
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec("framework_set_mode", "reactor",
               "Switches every reactor, or the one on `core`, between polling and sleeping when "
               "idle, and sets the spin window. Answers true.",
               {Required("mode", ParamType::kString,
                         "\"poll\" (never sleep) or \"interrupt\" (sleep when idle for the spin "
                         "window)"),
                Optional("spin_window_us", ParamType::kUnsigned,
                         "how long an idle reactor keeps polling before it sleeps in interrupt "
                         "mode, in microseconds, at most 10000000; one for all reactors; absent: "
                         "unchanged"),
                Optional("core", ParamType::kUnsigned,
                         "the core of the only reactor to switch; absent: every reactor")}),
    FrameworkSetMode);

// SPDK's thread_set_cpumask: {"id": thread id, "cpumask": "0x3", "3", "[0,1]" or "0-1"}.
void ThreadSetCpumask(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  uint64_t id = reader.Uint("id");
  std::string cpumask = reader.String("cpumask");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  if (RuntimeOrError(responder) == nullptr) return;
  absl::StatusOr<std::vector<int>> cpus = ParseCpuMaskParam(cpumask);
  if (!cpus.ok()) return responder.Error(rpc::kInvalidParams, std::string(cpus.status().message()));
  absl::Status s = Thread::SetCpumask(id, *std::move(cpus));
  if (!s.ok()) return responder.Error(rpc::kInvalidParams, std::string(s.message()));
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec("thread_set_cpumask", "reactor",
               "Sets the cores a lightweight thread may run on; a thread running outside them "
               "moves to the lowest of them, its new home core. Answers true.",
               {Required("id", ParamType::kUnsigned,
                         "the thread's id (as thread_get_stats lists it)"),
                Required("cpumask", ParamType::kString,
                         "the cores: a hexadecimal mask as SPDK's (\"0x3\" or \"3\") or a list "
                         "(\"[0,1]\", \"0-1\")")}),
    ThreadSetCpumask);

rpc::Subsystem MakeFrameworkSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "framework";
  subsystem.order = 0;
  subsystem.write_config = [](Json& config) {
    ReactorRuntime* runtime = ReactorRuntime::Get();
    if (runtime == nullptr) return;
    config.push_back({{"method", "framework_set_mode"},
                      {"params",
                       {{"mode", ReactorModeName(runtime->mode())},
                        {"spin_window_us", runtime->spin_window().count()}}}});
    // Reactors whose mode was set on their own.
    for (const auto& reactor : runtime->reactors()) {
      if (reactor->mode() == runtime->mode()) continue;
      config.push_back({{"method", "framework_set_mode"},
                        {"params", {{"mode", ReactorModeName(reactor->mode())},
                                    {"core", reactor->cpu()}}}});
    }
  };
  return subsystem;
}
POLLUX_SUBSYSTEM(framework, MakeFrameworkSubsystem);

}  // namespace
}  // namespace pollux
