// RPC methods of the scheduler (SPDK's names) and the "scheduler" subsystem: it starts the
// service on the app thread with the static scheduler and a period of 1 s, and save_config
// writes back the scheduler in use.
#include <algorithm>
#include <optional>

#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"
#include "pollux/scheduler/scheduler.h"
#include "scheduler_service.h"
#include "static_scheduler.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::Required;
using rpc::RpcResponder;

// A percentage parameter: kept as it is when absent; anything above UINT32_MAX is as wrong as
// anything above 100, and SetScheduler says so.
void ReadPercent(ParamReader& reader, std::string_view name, uint32_t& value) {
  if (std::optional<uint64_t> v = reader.OptionalUint(name)) {
    value = static_cast<uint32_t>(std::min<uint64_t>(*v, UINT32_MAX));
  }
}

// {"name": "static" | "dynamic" | a registered one, "period": microseconds, "load_limit",
// "core_limit", "core_busy": percents}. What is left out keeps its current value.
void FrameworkSetScheduler(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  SchedulerConfig config = GetScheduler();
  config.name = reader.String("name");
  if (std::optional<uint64_t> period = reader.OptionalUint("period")) config.period_us = *period;
  ReadPercent(reader, "load_limit", config.limits.load_limit);
  ReadPercent(reader, "core_limit", config.limits.core_limit);
  ReadPercent(reader, "core_busy", config.limits.core_busy);
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  rpc::ReplyTrueOrError(responder, "framework_set_scheduler", SetScheduler(config));
}
POLLUX_RPC_METHOD(
    MethodSpec("framework_set_scheduler", "scheduler",
               "Selects the scheduler that places the lightweight threads on the reactors every "
               "period, with its period and the dynamic scheduler's limits; what is left out "
               "keeps its current value. Answers true.",
               {Required("name", ParamType::kString,
                         "\"static\", \"dynamic\" or a scheduler a plugin registered"),
                Optional("period", ParamType::kUnsigned,
                         "time between two placements in microseconds, 1 to 60000000"),
                Optional("load_limit", ParamType::kUnsigned,
                         "a thread busier than this, in percent of a core (1 to 100), is never "
                         "gathered onto another thread's core"),
                Optional("core_limit", ParamType::kUnsigned,
                         "no move may take a core above this load, in percent (1 to 100)"),
                Optional("core_busy", ParamType::kUnsigned,
                         "a core above this load, in percent (1 to 100), is overloaded: its busy "
                         "threads spread to other cores")}),
    FrameworkSetScheduler);

void FrameworkGetScheduler(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  SchedulerConfig config = GetScheduler();
  responder.Result({{"scheduler_name", config.name},
                    {"scheduler_period", config.period_us},
                    {"load_limit", config.limits.load_limit},
                    {"core_limit", config.limits.core_limit},
                    {"core_busy", config.limits.core_busy}});
}
POLLUX_RPC_METHOD(MethodSpec("framework_get_scheduler", "scheduler",
                             "Answers the scheduler in use, its period in microseconds and the "
                             "dynamic scheduler's limits in percent.",
                             {}),
                  FrameworkGetScheduler);

rpc::Subsystem MakeSchedulerSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "scheduler";
  subsystem.order = 5;  // after "framework" (modes), before the threads of bdev and vhost
  subsystem.init = [](rpc::StatusCallback done) {
    SchedulerService::Start(SchedulerConfig{}, std::make_unique<StaticScheduler>());
    done(absl::OkStatus());
  };
  subsystem.fini = [](absl::AnyInvocable<void()> done) {
    SchedulerService::Stop();
    done();
  };
  subsystem.write_config = [](Json& config) {
    SchedulerConfig c = GetScheduler();
    config.push_back({{"method", "framework_set_scheduler"},
                      {"params",
                       {{"name", c.name},
                        {"period", c.period_us},
                        {"load_limit", c.limits.load_limit},
                        {"core_limit", c.limits.core_limit},
                        {"core_busy", c.limits.core_busy}}}});
  };
  return subsystem;
}
POLLUX_SUBSYSTEM(scheduler, MakeSchedulerSubsystem);

}  // namespace
}  // namespace pollux
