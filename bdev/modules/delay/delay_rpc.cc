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
using rpc::ParamReader;
using rpc::ReplyError;
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
POLLUX_RPC_METHOD("bdev_delay_create", BdevDelayCreate);

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
POLLUX_RPC_METHOD("bdev_delay_update_latency", BdevDelayUpdateLatency);

void BdevDelayDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_delay_delete", &DeleteDelayBdev);
}
POLLUX_RPC_METHOD("bdev_delay_delete", BdevDelayDelete);

}  // namespace
}  // namespace pollux
