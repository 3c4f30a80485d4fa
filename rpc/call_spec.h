// The spec of the method whose handler is running, so that ParamReader can check that a handler
// reads its parameters as its spec declares them. Private to rpc.
#pragma once

#include "pollux/rpc/method_spec.h"

namespace pollux::rpc::internal {

// The spec of the handler running on this thread now, or null.
const MethodSpec* SpecOfCallInProgress();

// Sets it for the life of the scope (a handler may call another method: scopes nest).
class CallSpecScope {
 public:
  explicit CallSpecScope(const MethodSpec* spec);
  ~CallSpecScope();
  CallSpecScope(const CallSpecScope&) = delete;
  CallSpecScope& operator=(const CallSpecScope&) = delete;

 private:
  const MethodSpec* previous_;
};

}  // namespace pollux::rpc::internal
