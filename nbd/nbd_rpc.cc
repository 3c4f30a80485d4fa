// RPC methods of the NBD server (nbd_server_start, nbd_server_stop, nbd_export_add,
// nbd_export_remove, nbd_get_exports) and the "nbd" subsystem, whose save_config writes the
// server and its exports back.
#include <limits>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/nbd/nbd_server.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::ReplyTrueOrError;
using rpc::Required;
using rpc::RpcResponder;

void NbdServerStart(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_server_start";
  ParamReader reader(params);
  NbdServerOptions options;
  std::optional<std::string> socket = reader.OptionalString("socket");
  std::optional<std::string> address = reader.OptionalString("address");
  std::optional<uint64_t> port = reader.OptionalUint("port");
  std::optional<uint64_t> max_connections = reader.OptionalUint("max_connections");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (socket && (address || port)) {
    return ReplyError(
        responder, kMethod,
        absl::InvalidArgumentError("give either socket (a Unix socket) or address and port (TCP)"));
  }
  if (port && *port > std::numeric_limits<uint16_t>::max()) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat("port %u: at most 65535", *port)));
  }
  if (max_connections && (*max_connections == 0 || *max_connections > 65536)) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("max_connections must be 1 to 65536"));
  }
  if (socket) options.socket = *socket;
  if (address) options.address = *address;
  if (port) options.port = static_cast<uint16_t>(*port);
  if (max_connections) options.max_connections = static_cast<uint32_t>(*max_connections);
  rpc::ReplyResultOrError(responder, kMethod, StartNbdServer(options));
}
POLLUX_RPC_METHOD(
    MethodSpec("nbd_server_start", "nbd",
               "Starts the NBD server (fixed newstyle handshake, structured replies) on a Unix "
               "socket or a TCP address. Answers where it listens: {\"socket\"} or "
               "{\"address\", \"port\"}.",
               {Optional("socket", ParamType::kString,
                         "a Unix socket path (a stale socket file is replaced); excludes "
                         "address and port"),
                // No defaults in the spec: the method must see whether TCP was asked for.
                Optional("address", ParamType::kString,
                         "the TCP address to listen on (absent: 127.0.0.1); anything but "
                         "loopback exposes the bdevs to the network, unauthenticated"),
                Optional("port", ParamType::kUnsigned,
                         "the TCP port (absent: 10809); 0 picks a free one"),
                Optional("max_connections", ParamType::kUnsigned,
                         "clients served at once; more are refused with a log line", "128")}),
    NbdServerStart);

void NbdServerStop(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_server_stop";
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  StopNbdServer([responder = std::move(responder)](absl::Status s) mutable {
    ReplyTrueOrError(responder, kMethod, s);
  });
}
POLLUX_RPC_METHOD(MethodSpec("nbd_server_stop", "nbd",
                             "Stops the NBD server: removes every export and disconnects "
                             "every client. Answers true once they are gone.",
                             {}),
                  NbdServerStop);

void NbdExportAdd(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_export_add";
  ParamReader reader(params);
  NbdExportOptions options;
  options.bdev_name = reader.String("bdev_name");
  options.name = reader.OptionalString("name").value_or(options.bdev_name);
  options.readonly = reader.OptionalBool("readonly").value_or(false);
  options.description = reader.OptionalString("description").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  ReplyTrueOrError(responder, kMethod, AddNbdExport(options));
}
POLLUX_RPC_METHOD(
    MethodSpec("nbd_export_add", "nbd", "Exports a bdev on the running NBD server. Answers true.",
               {Required("bdev_name", ParamType::kString, "the bdev to export"),
                Optional("name", ParamType::kString,
                         "the export's name, which clients ask for; absent: the bdev's name"),
                Optional("readonly", ParamType::kBoolean,
                         "refuse writes, trims and write-zeroes (EPERM)", "false"),
                Optional("description", ParamType::kString,
                         "text clients may ask for (NBD_INFO_DESCRIPTION)", "\"\"")}),
    NbdExportAdd);

void NbdExportRemove(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_export_remove";
  ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  ReplyTrueOrError(responder, kMethod, RemoveNbdExport(name));
}
POLLUX_RPC_METHOD(
    MethodSpec("nbd_export_remove", "nbd",
               "Removes an export and disconnects its clients (their I/O in flight completes "
               "first). Answers true.",
               {Required("name", ParamType::kString, "the export")}),
    NbdExportRemove);

void NbdGetExports(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_get_exports";
  ParamReader reader(params);
  std::string name = reader.OptionalString("name").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  rpc::ReplyResultOrError(responder, kMethod, GetNbdExports(name));
}
POLLUX_RPC_METHOD(
    MethodSpec("nbd_get_exports", "nbd",
               "Lists the exports (name, bdev_name, readonly, description) with their "
               "connected clients.",
               {Optional("name", ParamType::kString, "the one export to describe")}),
    NbdGetExports);

rpc::Subsystem MakeNbdSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "nbd";
  subsystem.order = 20;  // after "bdev": exports serve bdevs
  subsystem.fini = [](absl::AnyInvocable<void()> done) {
    StopNbdServer([done = std::move(done)](absl::Status) mutable { done(); });
  };
  subsystem.write_config = [](Json& config) { WriteNbdConfig(config); };
  return subsystem;
}
POLLUX_SUBSYSTEM(nbd, MakeNbdSubsystem);

}  // namespace
}  // namespace pollux
