// RPC methods of the error module (SPDK's names and parameters): bdev_error_create,
// bdev_error_delete, bdev_error_inject_error, bdev_error_resume_pending. Handlers run on the
// app thread.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev_error/bdev_error.h"
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

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// {"base_name", "uuid"?} -> true. The bdev is "EE_<base_name>"; a missing base is not an
// error: the bdev appears when the base does.
void BdevErrorCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_error_create";
  ParamReader reader(params);
  ErrorBdevOptions options;
  options.base_name = reader.String("base_name");
  options.uuid = reader.OptionalString("uuid").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  absl::StatusOr<Bdev*> bdev = CreateErrorBdev(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  if (*bdev == nullptr) {
    PX_LOG(kNotice, "error", "%s: base bdev %s not found; %s will be created when it appears",
           kMethod, options.base_name, ErrorBdevName(options.base_name));
  }
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_error_create", "bdev_error",
               "Creates an error bdev EE_<base_name> over a base bdev, which it claims: I/O goes "
               "to the base until bdev_error_inject_error arms a failure. A missing base is no "
               "error: the bdev appears with it. Answers true.",
               {Required("base_name", ParamType::kString, "the base bdev"),
                Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)")}),
    BdevErrorCreate);

void BdevErrorDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_error_delete", &DeleteErrorBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_error_delete", "bdev_error", "error bdev"), BdevErrorDelete);

// "read" ... "reset" -> that type; "all" -> nullopt (every type but reset).
absl::StatusOr<std::optional<IoType>> ParseIoType(const std::string& name) {
  if (name == "all") return std::optional<IoType>();
  for (int type = 0; type < kIoTypeCount; ++type) {
    auto each = static_cast<IoType>(type);
    if (name == IoTypeName(each)) return std::optional(each);
  }
  return Invalid(absl::StrFormat(
      "io_type \"%s\" is not one of read, write, flush, unmap, write_zeroes, reset, all, clear",
      name));
}

absl::StatusOr<ErrorInjectionType> ParseErrorType(const std::string& name) {
  if (name == "failure") return ErrorInjectionType::kFailure;
  if (name == "pending") return ErrorInjectionType::kPending;
  if (name == "corrupt_data") return ErrorInjectionType::kCorruptData;
  if (name == "nomem") return ErrorInjectionType::kNoMemory;
  if (name == "nvme") {
    return Invalid("error_type \"nvme\" is not supported: pollux bdevs have no NVMe status codes");
  }
  return Invalid(absl::StrFormat(
      "error_type \"%s\" is not one of failure, pending, corrupt_data, nomem", name));
}

// {"name", "io_type", "error_type", "num"? (1), "always"?, "queue_depth"?, "corrupt_offset"?,
// "corrupt_value"?} -> true. io_type "clear" disarms everything and lets held I/Os go;
// "always" (a pollux extension) hits every I/O of the type until cleared.
void BdevErrorInjectError(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_error_inject_error";
  ParamReader reader(params);
  std::string name = reader.String("name");
  std::string io_type_name = reader.String("io_type");
  std::optional<std::string> error_type_name = reader.OptionalString("error_type");
  std::optional<uint64_t> num = reader.OptionalUint("num");
  std::optional<bool> always = reader.OptionalBool("always");
  std::optional<uint64_t> queue_depth = reader.OptionalUint("queue_depth");
  std::optional<uint64_t> corrupt_offset = reader.OptionalUint("corrupt_offset");
  std::optional<uint64_t> corrupt_value = reader.OptionalUint("corrupt_value");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);

  if (io_type_name == "clear") {
    // The error type is irrelevant to a clear (SPDK requires one; we accept one).
    return ClearErrors(name, [responder = std::move(responder)](absl::Status status) mutable {
      if (!status.ok()) return ReplyError(responder, kMethod, status);
      responder.Result(true);
    });
  }
  absl::StatusOr<std::optional<IoType>> io_type = ParseIoType(io_type_name);
  if (!io_type.ok()) return ReplyError(responder, kMethod, io_type.status());
  if (!error_type_name) {
    return ReplyError(responder, kMethod, Invalid("missing parameter \"error_type\""));
  }
  absl::StatusOr<ErrorInjectionType> error_type = ParseErrorType(*error_type_name);
  if (!error_type.ok()) return ReplyError(responder, kMethod, error_type.status());
  if (num && *num > std::numeric_limits<uint32_t>::max()) {
    return ReplyError(responder, kMethod,
                      Invalid(absl::StrFormat("num %u does not fit 32 bits", *num)));
  }
  if (num && always.value_or(false)) {
    return ReplyError(responder, kMethod,
                      Invalid("num and always exclude each other (always hits every I/O)"));
  }
  if (corrupt_value.value_or(0) > 255) {
    return ReplyError(
        responder, kMethod,
        Invalid(absl::StrFormat("corrupt_value %u is not a byte (0 to 255)", *corrupt_value)));
  }
  ErrorInjection injection;
  injection.type = *error_type;
  injection.count = static_cast<uint32_t>(num.value_or(1));
  injection.always = always.value_or(false);
  injection.queue_depth = queue_depth.value_or(0);
  injection.corrupt_offset = corrupt_offset.value_or(0);
  injection.corrupt_value = static_cast<uint8_t>(corrupt_value.value_or(0));
  if (absl::Status s = InjectError(name, *io_type, injection); !s.ok()) {
    return ReplyError(responder, kMethod, s);
  }
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec(
        "bdev_error_inject_error", "bdev_error",
        "Arms an error bdev to fail, hold or corrupt its next I/Os of a type. Answers true.",
        {Required("name", ParamType::kString, "the error bdev (EE_...)"),
         Required("io_type", ParamType::kString,
                  "read, write, flush, unmap, write_zeroes, reset, all (every type but reset), or "
                  "clear (disarms everything and lets held I/O go)"),
         Optional("error_type", ParamType::kString,
                  "failure, pending (held until bdev_error_resume_pending), corrupt_data or "
                  "nomem; required unless io_type is clear"),
         Optional("num", ParamType::kUnsigned, "how many I/Os it hits (default 1)"),
         Optional("always", ParamType::kBoolean,
                  "hit every I/O of the type until cleared (instead of num)"),
         Optional("queue_depth", ParamType::kUnsigned,
                  "only hit I/O submitted while at least this many are in flight (0: any)"),
         Optional("corrupt_offset", ParamType::kUnsigned,
                  "corrupt_data: the byte of the buffer to change"),
         Optional("corrupt_value", ParamType::kUnsigned,
                  "corrupt_data: the value XORed into that byte (0 to 255)"),
         rpc::SpdkOnlyAtDefault("nvme_sct", ParamType::kUnsigned, "0",
                                "injecting an NVMe status code type"),
         rpc::SpdkOnlyAtDefault("nvme_sc", ParamType::kUnsigned, "0",
                                "injecting an NVMe status code")}),
    BdevErrorInjectError);

// {"name"} -> true: disarms the "pending" injections and lets the held I/Os go to the base.
void BdevErrorResumePending(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_error_resume_pending";
  ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  ResumePendingErrors(name, [responder = std::move(responder)](absl::Status status) mutable {
    if (!status.ok()) return ReplyError(responder, kMethod, status);
    responder.Result(true);
  });
}
POLLUX_RPC_METHOD(MethodSpec("bdev_error_resume_pending", "bdev_error",
                             "Disarms an error bdev's pending injections and lets the I/O they "
                             "hold go to the base. Answers true.",
                             {Required("name", ParamType::kString, "the error bdev (EE_...)")}),
                  BdevErrorResumePending);

}  // namespace
}  // namespace pollux
