// fuzz_rpc: raw bytes on a connection to the JSON-RPC server of a running target (every bdev
// module, vhost), so through its framing, its JSON parser, the registry's checks of each
// method's params and the handlers themselves. The seeds (corpus/rpc, written by
// fuzz_rpc_seeds) call every registered method with valid params, which the fuzzer mutates.
// Checks: the target never crashes or hangs (60 s per input), and every reply is a JSON-RPC
// response with a result or an error carrying a code and a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_app.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pollux::fuzz::FuzzApp& app = pollux::fuzz::FuzzApp::Get();
  std::string replies = app.Exchange(std::string_view(reinterpret_cast<const char*>(data), size));
  pollux::fuzz::CheckReplies(replies);
  app.Reset();
  return 0;
}
