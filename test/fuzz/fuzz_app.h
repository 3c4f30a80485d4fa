// One pollux target inside a fuzz target's process, for the fuzzers of what clients send it
// (RPC, config): the app (reactors, the app thread, every bdev module, vhost, the RPC server
// on a socket in a temporary folder) started on first use and kept for the whole run, since
// DPDK's environment starts once per process. Inputs are independent: Reset() removes what an
// input created before the next one runs. Any failure of the harness itself aborts the process
// (a fuzz finding, never a silent skip).
#pragma once

#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"

namespace pollux::fuzz {

class FuzzApp {
 public:
  // The running app; the first call starts it (log level error, one reactor).
  static FuzzApp& Get();

  const std::string& rpc_socket() const { return rpc_socket_; }

  // Runs `fn` on the app thread and waits until it calls the callback it is given. Aborts
  // after `timeout_s` seconds: an input that hangs the target is a finding.
  void RunOnAppThread(absl::AnyInvocable<void(absl::AnyInvocable<void()> done)> fn,
                      int timeout_s = 60);

  // Sends `bytes` on a new RPC connection, shuts down its sending side and returns everything
  // the server sent until it closed the connection. Aborts if that takes over a minute.
  std::string Exchange(std::string_view bytes);

  // Removes every vhost controller and every bdev.
  void Reset();

 private:
  FuzzApp() = default;
  void Start();

  std::string dir_;
  std::string rpc_socket_;
};

// Prints `why` and aborts: a finding (libFuzzer keeps the input).
[[noreturn]] void Die(const std::string& why);

// Checks that `replies` (what Exchange returned) is a sequence of JSON-RPC 2.0 responses, each
// a result or an error with a code and a non-empty message; aborts with the offending text
// otherwise. Returns how many there were.
size_t CheckReplies(std::string_view replies);

}  // namespace pollux::fuzz
