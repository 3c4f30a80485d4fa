#include "pollux/env/static_registration.h"

#include <cstdlib>

#include "pollux/env/log.h"

namespace pollux {
namespace {
thread_local StaticRegistrationCollector* collector = nullptr;
}  // namespace

void NoteStaticRegistration(std::string_view kind, std::string_view name) {
  if (collector != nullptr) {
    collector->registered_.push_back({std::string(kind), std::string(name)});
  }
}

void ReportStaticRegistrationError(std::string message) {
  if (collector == nullptr) {
    PX_LOG(kError, "env", "%s", message.c_str());
    std::abort();
  }
  collector->errors_.push_back(std::move(message));
}

StaticRegistrationCollector::StaticRegistrationCollector() { collector = this; }
StaticRegistrationCollector::~StaticRegistrationCollector() { collector = nullptr; }

std::vector<std::string> StaticRegistrationCollector::Names(std::string_view kind) const {
  std::vector<std::string> names;
  for (const StaticRegistration& r : registered_) {
    if (r.kind == kind) names.push_back(r.name);
  }
  return names;
}

}  // namespace pollux
