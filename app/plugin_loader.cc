#include "plugin_loader.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "elf_abi_stamps.h"
#include "pollux/env/log.h"
#include "pollux/env/static_registration.h"
#include "pollux/env/version.h"

namespace pollux {
namespace {

// "0.1" of "0.1.0": the part of a version that must match (the libraries' SONAME version).
std::string AbiVersion(const std::string& version) {
  size_t first_dot = version.find('.');
  if (first_dot == std::string::npos) return version;
  return version.substr(0, version.find('.', first_dot + 1));
}

absl::Status LoadPlugin(const std::string& path) {
  // dlopen searches the library path for a name without a slash; a plugin is a file.
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) {
    int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrFormat("plugin %s: %s", path, strerror(err)));
  }
  absl::StatusOr<std::vector<std::string>> stamps = ReadElfAbiStamps(resolved);
  if (!stamps.ok()) {
    return absl::Status(stamps.status().code(),
                        absl::StrFormat("plugin %s", stamps.status().message()));
  }
  if (stamps->empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "plugin %s: no pollux ABI stamp: not a pollux module (POLLUX_BDEV_MODULE stamps the "
        "library of a module built against pollux's headers)",
        resolved));
  }
  for (const std::string& version : *stamps) {
    if (AbiVersion(version) != POLLUX_ABI_VERSION) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "plugin %s was built against pollux %s; this is pollux %s: rebuild it against %s "
          "(plugins load only into the pollux major.minor they were built against)",
          resolved, version, POLLUX_VERSION, POLLUX_VERSION));
    }
  }

  StaticRegistrationCollector registrations;
  // RTLD_NOW: an unresolved symbol fails here, not in the middle of an I/O. RTLD_LOCAL: two
  // plugins' own symbols do not meet.
  void* handle = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("plugin %s: %s", resolved, dlerror()));
  }
  if (!registrations.errors().empty()) {
    return absl::AlreadyExistsError(
        absl::StrFormat("plugin %s: %s", resolved, absl::StrJoin(registrations.errors(), "; ")));
  }
  std::vector<std::string> modules = registrations.Names(kBdevModuleRegistration);
  if (modules.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("plugin %s registered no bdev module", resolved));
  }
  std::vector<std::string> methods = registrations.Names(kRpcMethodRegistration);
  PX_LOG(kNotice, "app", "plugin %s (pollux %s): bdev module %s; RPC methods %s", resolved,
         stamps->front(), absl::StrJoin(modules, ", "),
         methods.empty() ? "none" : absl::StrJoin(methods, ", "));
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadPlugins(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    if (absl::Status status = LoadPlugin(path); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace pollux
