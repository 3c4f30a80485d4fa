#include "pollux/rpc/subsystem.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pollux/env/static_registration.h"

namespace pollux::rpc {

SubsystemRegistry& SubsystemRegistry::Global() {
  static SubsystemRegistry registry;
  return registry;
}

absl::Status SubsystemRegistry::Register(Subsystem subsystem) {
  if (subsystem.name.empty()) return absl::InvalidArgumentError("subsystem name is empty");
  if (Find(subsystem.name) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("subsystem \"", subsystem.name, "\" is already registered"));
  }
  subsystems_.push_back(std::make_unique<Subsystem>(std::move(subsystem)));
  return absl::OkStatus();
}

std::vector<Subsystem*> SubsystemRegistry::Ordered() {
  std::vector<Subsystem*> ordered;
  ordered.reserve(subsystems_.size());
  for (auto& subsystem : subsystems_) ordered.push_back(subsystem.get());
  std::sort(ordered.begin(), ordered.end(), [](const Subsystem* a, const Subsystem* b) {
    if (a->order != b->order) return a->order < b->order;
    return a->name < b->name;
  });
  return ordered;
}

Subsystem* SubsystemRegistry::Find(std::string_view name) {
  for (auto& subsystem : subsystems_) {
    if (subsystem->name == name) return subsystem.get();
  }
  return nullptr;
}

namespace internal {

SubsystemRegistrar::SubsystemRegistrar(Subsystem (*make)()) {
  Subsystem subsystem = make();
  std::string name = subsystem.name;
  absl::Status status = SubsystemRegistry::Global().Register(std::move(subsystem));
  if (!status.ok()) {
    ReportStaticRegistrationError(std::string(status.message()));
    return;
  }
  NoteStaticRegistration(kSubsystemRegistration, name);
}

}  // namespace internal
}  // namespace pollux::rpc
