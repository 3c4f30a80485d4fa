// fuzz_config: config files into the config loader of a running target (fuzz_app.h): parsed,
// checked and replayed as at start-up. Then what save_config returns for the state it left
// must load into an empty target and save the same again: a target restarted from its saved
// config is the target that saved it. Checks: no crash or hang, and that round trip.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "fuzz_app.h"
#include "pollux/rpc/config.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace {

using pollux::rpc::Json;

// Replays `config` on the app thread and returns the replay's status and what save_config says
// after it.
absl::Status ReplayAndSave(pollux::fuzz::FuzzApp& app, const Json& config, Json& saved) {
  absl::Status result;
  app.RunOnAppThread([&](absl::AnyInvocable<void()> done) {
    pollux::rpc::ReplayConfig(
        config, "fuzz", pollux::rpc::MethodRegistry::Global(),
        pollux::rpc::SubsystemRegistry::Global(),
        [&, done = std::move(done)](absl::Status status) mutable {
          result = status;
          saved = pollux::rpc::SaveConfig(pollux::rpc::SubsystemRegistry::Global());
          done();
        });
  });
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pollux::fuzz::FuzzApp& app = pollux::fuzz::FuzzApp::Get();
  absl::StatusOr<Json> config =
      pollux::rpc::ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!config.ok()) return 0;
  Json saved;
  (void)ReplayAndSave(app, *config, saved);  // a bad config fails; what it did must save right
  app.Reset();
  Json saved_again;
  if (absl::Status status = ReplayAndSave(app, saved, saved_again); !status.ok()) {
    pollux::fuzz::Die("save_config's output does not load again: " + std::string(status.message()) +
                      "\nsaved: " + saved.dump());
  }
  if (saved_again != saved) {
    pollux::fuzz::Die("a config saved, loaded and saved again differs:\nfirst:  " + saved.dump() +
                      "\nsecond: " + saved_again.dump());
  }
  app.Reset();
  return 0;
}
