// The registry of file engines and the automatic choice (file_engine.h).
#include "pollux/bdev_file/file_engine.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

struct Registry {
  std::mutex mutex;  // registration runs at static-initialisation time, lookups on the app thread
  std::vector<FileEngine> engines;
};

Registry& GetRegistry() {
  static Registry registry;  // function-local: safe whatever the static-initialisation order
  return registry;
}

}  // namespace

void RegisterFileEngine(const FileEngine& engine) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  registry.engines.push_back(engine);
  std::stable_sort(registry.engines.begin(), registry.engines.end(),
                   [](const FileEngine& a, const FileEngine& b) { return a.rank < b.rank; });
}

const FileEngine* FindFileEngine(std::string_view name) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  for (const FileEngine& engine : registry.engines) {
    if (name == engine.name) return &engine;
  }
  return nullptr;
}

std::vector<const FileEngine*> FileEngines() {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mutex);
  std::vector<const FileEngine*> engines;
  for (const FileEngine& engine : registry.engines) engines.push_back(&engine);
  return engines;
}

absl::StatusOr<const FileEngine*> ChooseFileEngine(std::string_view requested) {
  std::vector<const FileEngine*> engines = FileEngines();
  if (requested != "auto") {
    const FileEngine* engine = FindFileEngine(requested);
    if (engine == nullptr) {
      std::vector<std::string> names = {"auto"};
      for (const FileEngine* e : engines) names.emplace_back(e->name);
      return absl::InvalidArgumentError(absl::StrFormat("engine \"%s\" is unknown (known: %s)",
                                                        std::string(requested),
                                                        absl::StrJoin(names, ", ")));
    }
    if (absl::Status probe = engine->probe(); !probe.ok()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "engine %s does not work here: %s", engine->name, std::string(probe.message())));
    }
    return engine;
  }
  std::vector<std::string> passed_over;
  for (const FileEngine* engine : engines) {
    absl::Status probe = engine->probe();
    if (probe.ok()) {
      if (passed_over.empty()) {
        PX_LOG(kNotice, "bdev_file", "engine auto: chose %s (the first by preference that works)",
               engine->name);
      } else {
        PX_LOG(kNotice, "bdev_file", "engine auto: chose %s; passed over %s", engine->name,
               absl::StrJoin(passed_over, "; "));
      }
      return engine;
    }
    passed_over.push_back(absl::StrFormat("%s (%s)", engine->name, std::string(probe.message())));
  }
  if (engines.empty()) {
    return absl::FailedPreconditionError("engine auto: no file engine is linked in");
  }
  return absl::FailedPreconditionError(
      absl::StrFormat("engine auto: no engine works here: %s", absl::StrJoin(passed_over, "; ")));
}

}  // namespace pollux
