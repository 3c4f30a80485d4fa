#include "stale_runtime_files.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "pollux/env/log.h"

namespace pollux {
namespace {

constexpr std::string_view kPrefix = "pollux_";

// The pid in "pollux_<pid>", or 0 when the name is not one of ours.
pid_t PidOf(std::string_view name) {
  if (!name.starts_with(kPrefix)) return 0;
  name.remove_prefix(kPrefix.size());
  pid_t pid = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), pid);
  return error == std::errc() && end == name.data() + name.size() && pid > 0 ? pid : 0;
}

}  // namespace

std::string DpdkRuntimeBase() {
  if (getuid() == 0) return "/var/run/dpdk";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return std::string(runtime != nullptr ? runtime : "/tmp") + "/dpdk";
}

int RemoveStaleRuntimeDirs(const std::string& base) {
  std::error_code error;
  std::filesystem::directory_iterator entries(base, error);
  if (error) return 0;  // no base folder yet: nothing was left
  int removed = 0;
  for (const auto& entry : entries) {
    const pid_t pid = PidOf(entry.path().filename().native());
    // EPERM: the process exists (another user's): not ours to judge.
    if (pid == 0 || kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    if (std::filesystem::remove_all(entry.path(), ignored) > 0) {
      PX_LOG(kInfo, "env", "removed %s, left by pollux process %d, which is gone",
             entry.path().native(), pid);
      ++removed;
    }
  }
  return removed;
}

}  // namespace pollux
