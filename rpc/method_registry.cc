#include "pollux/rpc/method_registry.h"

#include <cstdlib>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl_string_view.h"
#include "call_spec.h"
#include "pollux/env/log.h"
#include "pollux/env/static_registration.h"

namespace pollux::rpc {
namespace {

// One call in flight. A handler that throws must still get exactly one answer, and the best
// answer names the exception. But when the exception leaves the handler, its responder (a
// by-value parameter) is destroyed during unwinding, before Call's catch runs, and would answer
// "method did not answer". So the responder's sink holds back an answer given while an
// exception is unwinding through the handler; Call then answers with the exception, or, if the
// handler caught it itself and returned, delivers the held answer.
struct PendingCall {
  explicit PendingCall(RpcResponder::Sink sink) : done(std::move(sink)) {}

  void Deliver(RpcReply reply) {
    if (delivered) return;
    delivered = true;
    RpcResponder::Sink sink = std::move(done);
    sink(std::move(reply));
  }

  RpcResponder::Sink done;
  bool delivered = false;
  bool in_handler = true;
  int uncaught_at_call = std::uncaught_exceptions();
  std::optional<RpcReply> held;
};

// A spec's own consistency, checked once at registration so that calls can trust it.
absl::Status ValidateSpec(const MethodSpec& spec) {
  for (size_t i = 0; i < spec.params.size(); ++i) {
    const ParamSpec& param = spec.params[i];
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("RPC method \"", spec.name, "\": parameter \"",
                                                     param.name, "\" ", AbslView(why)));
    };
    if (param.name.empty()) return bad("has no name");
    for (size_t j = 0; j < i; ++j) {
      if (spec.params[j].name == param.name) return bad("is declared twice");
    }
    if (param.required && !param.default_value.empty()) return bad("is required and has a default");
    if (param.use == ParamUse::kSpdkOnlyAtDefault && param.default_value.empty()) {
      return bad("is accepted only at its default but has none");
    }
    if (param.default_value.empty()) continue;
    // The default must pass the same check as a value a caller gives.
    MethodSpec one(spec.name, "", "", {param});
    one.params[0].use = ParamUse::kUsed;
    Json value = Json::parse(param.default_value, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) return bad("has a default that is not JSON");
    if (!CheckParams(one, Json{{param.name, value}}).ok())
      return bad("has a default of another type");
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {
namespace {
thread_local const MethodSpec* g_spec_of_call_in_progress = nullptr;
}  // namespace

const MethodSpec* SpecOfCallInProgress() { return g_spec_of_call_in_progress; }

CallSpecScope::CallSpecScope(const MethodSpec* spec) : previous_(g_spec_of_call_in_progress) {
  g_spec_of_call_in_progress = spec;
}

CallSpecScope::~CallSpecScope() { g_spec_of_call_in_progress = previous_; }

}  // namespace internal

RpcResponder& RpcResponder::operator=(RpcResponder&& other) {
  if (this != &other) {
    // The call this responder owed an answer to must not wait forever.
    if (sink_) Error(kInternalError, "method did not answer");
    sink_ = std::move(other.sink_);
    other.sink_ = nullptr;
  }
  return *this;
}

RpcResponder::~RpcResponder() {
  if (sink_) Error(kInternalError, "method did not answer");
}

void RpcResponder::Result(Json result) { Reply(RpcReply::Result(std::move(result))); }

void RpcResponder::Error(int code, std::string message) {
  Reply(RpcReply::Error(code, std::move(message)));
}

void RpcResponder::Reply(const absl::Status& status) { Reply(RpcReply::FromStatus(status)); }

void RpcResponder::Reply(RpcReply reply) {
  if (!sink_) {
    PX_LOG(kError, "rpc", "a method answered twice (or through an empty responder); dropped: %s",
           reply.ok ? "a result" : reply.message);
    return;
  }
  // Empty the responder before calling the sink, so that a sink that destroys or reuses the
  // responder sees it answered.
  Sink sink = std::move(sink_);
  sink_ = nullptr;
  sink(std::move(reply));
}

MethodRegistry& MethodRegistry::Global() {
  static MethodRegistry registry;
  return registry;
}

absl::Status MethodRegistry::Register(MethodSpec spec, RpcHandler handler) {
  if (spec.name.empty()) return absl::InvalidArgumentError("RPC method name is empty");
  if (!handler) {
    return absl::InvalidArgumentError(
        absl::StrCat("RPC method \"", spec.name, "\" has no handler"));
  }
  if (absl::Status status = ValidateSpec(spec); !status.ok()) return status;
  std::lock_guard lock(mutex_);
  auto [it, inserted] = methods_.try_emplace(spec.name, nullptr);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("RPC method \"", spec.name, "\" is already registered"));
  }
  it->second = std::make_shared<Method>(Method{std::move(spec), std::move(handler)});
  return absl::OkStatus();
}

absl::Status MethodRegistry::Register(std::string name, RpcHandler handler) {
  return Register(MethodSpec::Undeclared(std::move(name)), std::move(handler));
}

void MethodRegistry::Unregister(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = methods_.find(name);
  if (it != methods_.end()) methods_.erase(it);
}

bool MethodRegistry::Has(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return methods_.find(name) != methods_.end();
}

std::vector<std::string> MethodRegistry::Names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  names.reserve(methods_.size());
  for (const auto& [name, handler] : methods_) names.push_back(name);
  return names;  // std::map keeps them sorted
}

std::vector<MethodSpec> MethodRegistry::Specs() const {
  std::lock_guard lock(mutex_);
  std::vector<MethodSpec> specs;
  specs.reserve(methods_.size());
  for (const auto& [name, method] : methods_) specs.push_back(method->spec);
  return specs;
}

void MethodRegistry::Call(std::string_view method, const Json& params, RpcResponder::Sink done) {
  // Hold the handler by shared_ptr and unlock before calling it: the handler may register or
  // unregister methods (even itself).
  std::shared_ptr<Method> handler;
  {
    std::lock_guard lock(mutex_);
    auto it = methods_.find(method);
    if (it != methods_.end()) handler = it->second;
  }
  if (!handler) {
    done(RpcReply::Error(kMethodNotFound,
                         absl::StrCat("unknown method \"", AbslView(method), "\"")));
    return;
  }
  std::vector<std::string> ignored;
  absl::StatusOr<Json> checked = CheckParams(handler->spec, params, &ignored);
  if (!checked.ok()) {
    done(RpcReply::FromStatus(
        absl::Status(checked.status().code(),
                     absl::StrCat(AbslView(method), ": ", checked.status().message()))));
    return;
  }
  if (!ignored.empty()) {
    PX_LOG(kWarning, "rpc", "%s: ignoring SPDK's parameters that pollux does not use: %s", method,
           absl::StrJoin(ignored, ", "));
  }

  auto call = std::make_shared<PendingCall>(std::move(done));
  RpcResponder responder([call](RpcReply reply) {
    if (call->in_handler && std::uncaught_exceptions() > call->uncaught_at_call) {
      if (!call->held) call->held = std::move(reply);
      return;
    }
    call->Deliver(std::move(reply));
  });
  std::string failure;
  try {
    internal::CallSpecScope scope(&handler->spec);
    handler->handler(*checked, std::move(responder));
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  call->in_handler = false;
  if (!failure.empty()) {
    PX_LOG(kError, "rpc", "method %s threw: %s", method, failure);
    call->Deliver(RpcReply::Error(
        kInternalError, absl::StrCat("method \"", AbslView(method), "\" failed: ", failure)));
  } else if (call->held) {
    call->Deliver(std::move(*call->held));
  }
}

namespace internal {

MethodRegistrar::MethodRegistrar(MethodSpec spec, void (*handler)(const Json&, RpcResponder)) {
  std::string name = spec.name;
  absl::Status status = MethodRegistry::Global().Register(std::move(spec), handler);
  if (!status.ok()) {
    ReportStaticRegistrationError(std::string(status.message()));
    return;
  }
  NoteStaticRegistration(kRpcMethodRegistration, name);
}

}  // namespace internal
void ReplyError(RpcResponder& responder, std::string_view method, const absl::Status& status) {
  responder.Reply(absl::Status(status.code(), absl::StrFormat("%s: %s", method, status.message())));
}

void ReplyTrueOrError(RpcResponder& responder, std::string_view method,
                      const absl::Status& status) {
  if (!status.ok()) return ReplyError(responder, method, status);
  responder.Result(true);
}

void ReplyResultOrError(RpcResponder& responder, std::string_view method,
                        absl::StatusOr<Json> result) {
  if (!result.ok()) return ReplyError(responder, method, result.status());
  responder.Result(*std::move(result));
}

}  // namespace pollux::rpc
