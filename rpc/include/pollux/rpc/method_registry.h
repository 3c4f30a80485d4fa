// The table of JSON-RPC methods. Components register their methods from a `<component>_rpc.cc`
// beside them with POLLUX_RPC_METHOD; handlers always run on the app thread (the thread that
// serves RPC and replays config), so they may touch framework state without locks.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_spec.h"

namespace pollux::rpc {

// Handed to a handler; answers its call exactly once, now or later (move it into a callback to
// answer from a later message). Must be used on the app thread. Destroying a responder that
// never answered sends an internal error, so that no client waits forever.
class RpcResponder {
 public:
  using Sink = absl::AnyInvocable<void(RpcReply)>;

  RpcResponder() = default;
  explicit RpcResponder(Sink sink) : sink_(std::move(sink)) {}
  RpcResponder(RpcResponder&&) = default;
  RpcResponder& operator=(RpcResponder&&);
  ~RpcResponder();

  void Result(Json result);
  void Error(int code, std::string message);
  // Errors map as in RpcReply::FromStatus; an OK status answers `true`.
  void Reply(const absl::Status& status);
  void Reply(RpcReply reply);

  bool answered() const { return !sink_; }

 private:
  Sink sink_;
};

using RpcHandler = absl::AnyInvocable<void(const Json& params, RpcResponder responder)>;

// Answers with `status` (an error), its message prefixed by the method, so that a config
// replay that fails says which call did: "bdev_malloc_create: block_size 1000 is not ...".
void ReplyError(RpcResponder& responder, std::string_view method, const absl::Status& status);

// Answers `true` on OK, else as ReplyError: `status` from an operation that finishes later.
// `method` must outlive the reply (a string literal).
void ReplyTrueOrError(RpcResponder& responder, std::string_view method, const absl::Status& status);

// Answers the value of `result`, or its error as ReplyError does.
void ReplyResultOrError(RpcResponder& responder, std::string_view method,
                        absl::StatusOr<Json> result);

class MethodRegistry {
 public:
  // The process-wide registry that POLLUX_RPC_METHOD fills.
  static MethodRegistry& Global();

  // Fails with AlreadyExists when the name is taken, InvalidArgument when the spec is
  // inconsistent (a parameter twice, a default that is not JSON of its type, ...).
  absl::Status Register(MethodSpec spec, RpcHandler handler);
  // A method without a spec (tests): its params reach it unchecked.
  absl::Status Register(std::string name, RpcHandler handler);
  void Unregister(std::string_view name);
  bool Has(std::string_view name) const;
  std::vector<std::string> Names() const;  // sorted
  // The specs of all methods, sorted by name.
  std::vector<MethodSpec> Specs() const;

  // Calls a method (server and config replay): params that do not match its spec are refused
  // with kInvalidParams before the handler runs. Unknown method: kMethodNotFound. `done` runs
  // exactly once, possibly before Call returns. Call from the app thread.
  void Call(std::string_view method, const Json& params, RpcResponder::Sink done);

 private:
  struct Method {
    MethodSpec spec;
    RpcHandler handler;
  };

  mutable std::mutex mutex_;  // registration may happen at static-init time or from RPC
  std::map<std::string, std::shared_ptr<Method>, std::less<>> methods_;
};

namespace internal {
struct MethodRegistrar {
  MethodRegistrar(MethodSpec spec, void (*handler)(const Json&, RpcResponder));
};
}  // namespace internal

}  // namespace pollux::rpc

// Registers `handler` (a function `void(const Json& params, RpcResponder responder)`) as the
// method that `spec` (a MethodSpec) describes, at start-up. Libraries that use it are linked
// whole (see cmake), so the registration is never dropped by the linker.
#define POLLUX_RPC_METHOD(spec, handler) \
  static ::pollux::rpc::internal::MethodRegistrar pollux_rpc_registrar_##handler(spec, handler)
