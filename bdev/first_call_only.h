// A guard for the callbacks the layer hands to module code (init, fini and examine `done`s):
// module code is not the layer's to trust, and a `done` called twice must not run the layer's
// continuation twice (a second module started, a counter decremented below zero). Private.
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "pollux/env/log.h"

namespace pollux {

// Wraps `fn` so that only its first call runs it; later calls log an error naming `what`
// ("bdev module foo: init done") and return. Not for calls racing from two threads: a module's
// done is called from one place.
template <typename... Args>
absl::AnyInvocable<void(Args...)> FirstCallOnly(
    std::string what, std::type_identity_t<absl::AnyInvocable<void(Args...)>> fn) {
  return [what = std::move(what), fn = std::move(fn), called = false](Args... args) mutable {
    if (called) {
      PX_LOG(kError, "bdev", "%s called more than once: the extra call is ignored", what);
      return;
    }
    called = true;
    fn(std::forward<Args>(args)...);
  };
}

}  // namespace pollux
