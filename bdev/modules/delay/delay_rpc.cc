// RPC methods of the delay module (SPDK's names and parameters): bdev_delay_create,
// bdev_delay_update_latency, bdev_delay_delete. Latencies are in microseconds. Handlers run on
// the app thread.
#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev_delay/bdev_delay.h"
#include "pollux/env/log.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::Required;
using rpc::RpcResponder;

// {"base_bdev_name", "name", "avg_read_latency", "p99_read_latency", "avg_write_latency",
// "p99_write_latency", "uuid"?} -> the name. A missing base is not an error: the bdev appears
// when the base does.
void BdevDelayCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_delay_create";
  ParamReader reader(params);
  DelayBdevOptions options;
  options.base_bdev_name = reader.String("base_bdev_name");
  options.name = reader.String("name");
  for (int i = 0; i < kDelayLatencyCount; ++i) {
    options.latency_us[i] =
        reader.Uint(absl::StrFormat("%s_latency", DelayLatencyName(static_cast<DelayLatency>(i))));
  }
  options.uuid = reader.OptionalString("uuid").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  absl::StatusOr<Bdev*> bdev = CreateDelayBdev(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  if (*bdev == nullptr) {
    PX_LOG(kNotice, "delay", "%s: base bdev %s not found; %s will be created when it appears",
           kMethod, options.base_bdev_name, options.name);
  }
  responder.Result(options.name);
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_delay_create", "bdev_delay",
               "Creates a delay bdev over a base bdev, which it claims: each I/O completes after "
               "the base's completion plus the set latency (about 1 in 100 gets the p99 one). A "
               "missing base is no error: the bdev appears with it. Answers the name.",
               {Required("base_bdev_name", ParamType::kString, "the base bdev"),
                Required("name", ParamType::kString, "name of the new bdev"),
                Required("avg_read_latency", ParamType::kUnsigned,
                         "latency added to most reads, in microseconds (at most an hour)"),
                Required("p99_read_latency", ParamType::kUnsigned,
                         "latency added to about 1% of reads, in microseconds; at least the "
                         "average"),
                Required("avg_write_latency", ParamType::kUnsigned,
                         "latency added to most writes, in microseconds"),
                Required("p99_write_latency", ParamType::kUnsigned,
                         "latency added to about 1% of writes, in microseconds; at least the "
                         "average"),
                Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)")}),
    BdevDelayCreate);

// {"delay_bdev_name", "latency_type": "avg_read"|"p99_read"|"avg_write"|"p99_write",
// "latency_us"} -> true.
void BdevDelayUpdateLatency(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_delay_update_latency";
  ParamReader reader(params);
  std::string name = reader.String("delay_bdev_name");
  std::string type_name = reader.String("latency_type");
  uint64_t latency_us = reader.Uint("latency_us");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  for (int i = 0; i < kDelayLatencyCount; ++i) {
    auto latency = static_cast<DelayLatency>(i);
    if (type_name != DelayLatencyName(latency)) continue;
    return UpdateDelayLatency(name, latency, latency_us,
                              [responder = std::move(responder)](absl::Status status) mutable {
                                if (!status.ok()) return ReplyError(responder, kMethod, status);
                                responder.Result(true);
                              });
  }
  ReplyError(responder, kMethod,
             absl::InvalidArgumentError(absl::StrFormat(
                 "latency_type \"%s\" is not one of avg_read, p99_read, avg_write, p99_write",
                 type_name)));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_delay_update_latency", "bdev_delay",
               "Changes one latency of a delay bdev, for I/O submitted from now on. Answers true.",
               {Required("delay_bdev_name", ParamType::kString, "the delay bdev"),
                Required("latency_type", ParamType::kString,
                         "avg_read, p99_read, avg_write or p99_write"),
                Required("latency_us", ParamType::kUnsigned, "the new latency, in microseconds")}),
    BdevDelayUpdateLatency);

void BdevDelayDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_delay_delete", &DeleteDelayBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_delay_delete", "bdev_delay", "delay bdev"), BdevDelayDelete);

}  // namespace
}  // namespace pollux
