// RPC methods of the scheduler test app (the names and parameters of SPDK's scheduler test
// plugin, test/event/scheduler/scheduler_plugin.py), and the "scheduler_test" subsystem, whose
// shutdown deletes the threads they made:
//   scheduler_thread_create {name?, cpu_mask?, active_percent?} -> thread id
//   scheduler_thread_set_active {thread_id, active_percent}     -> true
//   scheduler_thread_delete {thread_id}                          -> true
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pollux/env/cpu_list.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"
#include "scheduler_test_threads.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::Required;
using rpc::RpcResponder;

// Reads "active_percent" (0 when absent and `required` is false); false after answering the
// error when it is above 100.
bool ReadActivePercent(ParamReader& reader, bool required, std::string_view method,
                       RpcResponder& responder, uint32_t* percent) {
  uint64_t value =
      required ? reader.Uint("active_percent") : reader.OptionalUint("active_percent").value_or(0);
  if (absl::Status s = reader.Finish(); !s.ok()) {
    rpc::ReplyError(responder, method, s);
    return false;
  }
  if (value > 100) {
    rpc::ReplyError(responder, method,
                    absl::InvalidArgumentError(absl::StrCat(
                        "parameter \"active_percent\" must be 0 to 100, got ", value)));
    return false;
  }
  *percent = static_cast<uint32_t>(value);
  return true;
}

void SchedulerThreadCreate(const Json& params, RpcResponder responder) {
  static constexpr char kMethod[] = "scheduler_thread_create";
  static uint64_t created = 0;  // for default names; app thread only
  ParamReader reader(params);
  std::optional<std::string> name = reader.OptionalString("name");
  std::optional<std::string> cpu_mask = reader.OptionalString("cpu_mask");
  uint32_t percent = 0;
  if (!ReadActivePercent(reader, /*required=*/false, kMethod, responder, &percent)) return;
  std::vector<int> cpus;  // empty: every reactor's core
  if (cpu_mask) {
    absl::StatusOr<std::vector<int>> parsed = ParseCpuList(*cpu_mask);
    if (!parsed.ok()) {
      return rpc::ReplyError(responder, kMethod,
                             absl::InvalidArgumentError(absl::StrCat("parameter \"cpu_mask\": ",
                                                                     parsed.status().message())));
    }
    cpus = *std::move(parsed);
  }
  ++created;
  SchedulerTestThreads::Get().Create(
      name.value_or(absl::StrCat("sched_test_", created)), std::move(cpus), percent,
      [responder = std::move(responder)](absl::StatusOr<uint64_t> id) mutable {
        if (!id.ok()) return rpc::ReplyError(responder, kMethod, id.status());
        responder.Result(*id);
      });
}
POLLUX_RPC_METHOD(
    MethodSpec("scheduler_thread_create", "scheduler_test",
               "Creates a test thread: a lightweight thread whose poller is busy for a share of "
               "the time, for the scheduler to place. Answers its id.",
               {Optional("name", ParamType::kString, "name of the thread (default: sched_test_N)"),
                Optional("cpu_mask", ParamType::kString,
                         "cores it may run on: a hexadecimal mask (\"0x3\") or a list "
                         "(\"[0,1]\", \"0-1\"); absent: every reactor's core"),
                Optional("active_percent", ParamType::kUnsigned,
                         "share of the time it is busy, in percent (0 to 100)", "0")}),
    SchedulerThreadCreate);

void SchedulerThreadSetActive(const Json& params, RpcResponder responder) {
  static constexpr char kMethod[] = "scheduler_thread_set_active";
  ParamReader reader(params);
  uint64_t id = reader.Uint("thread_id");
  uint32_t percent = 0;
  if (!ReadActivePercent(reader, /*required=*/true, kMethod, responder, &percent)) return;
  // The responder travels only on success: on an error it is still here to answer.
  auto shared = std::make_shared<RpcResponder>(std::move(responder));
  absl::Status s =
      SchedulerTestThreads::Get().SetActive(id, percent, [shared] { shared->Result(true); });
  if (!s.ok()) rpc::ReplyError(*shared, kMethod, s);
}
POLLUX_RPC_METHOD(
    MethodSpec("scheduler_thread_set_active", "scheduler_test",
               "Sets the share of the time a test thread is busy. Answers true once the thread "
               "has it.",
               {Required("thread_id", ParamType::kUnsigned,
                         "the id scheduler_thread_create answered"),
                Required("active_percent", ParamType::kUnsigned,
                         "share of the time it is busy, in percent (0 to 100)")}),
    SchedulerThreadSetActive);

void SchedulerThreadDelete(const Json& params, RpcResponder responder) {
  static constexpr char kMethod[] = "scheduler_thread_delete";
  ParamReader reader(params);
  uint64_t id = reader.Uint("thread_id");
  if (absl::Status s = reader.Finish(); !s.ok()) return rpc::ReplyError(responder, kMethod, s);
  auto shared = std::make_shared<RpcResponder>(std::move(responder));
  absl::Status s = SchedulerTestThreads::Get().Delete(id, [shared] { shared->Result(true); });
  if (!s.ok()) rpc::ReplyError(*shared, kMethod, s);
}
POLLUX_RPC_METHOD(MethodSpec("scheduler_thread_delete", "scheduler_test",
                             "Deletes a test thread. Answers true once its poller is unregistered.",
                             {Required("thread_id", ParamType::kUnsigned,
                                       "the id scheduler_thread_create answered")}),
                  SchedulerThreadDelete);

rpc::Subsystem MakeSchedulerTestSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "scheduler_test";
  // Last up, first down: its threads go before the scheduler (order 5) stops.
  subsystem.order = 100;
  subsystem.fini = [](absl::AnyInvocable<void()> done) {
    SchedulerTestThreads::Get().DeleteAll(std::move(done));
  };
  return subsystem;
}
POLLUX_SUBSYSTEM(scheduler_test, MakeSchedulerTestSubsystem);

}  // namespace
}  // namespace pollux::testing
