#include "pollux/bdev/bdev_module.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "pollux/env/static_registration.h"

namespace pollux {
namespace {

std::vector<BdevModule*>& Modules() {
  static std::vector<BdevModule*> modules;
  return modules;
}

}  // namespace

const std::vector<BdevModule*>& BdevModules() { return Modules(); }

BdevModule* FindBdevModule(std::string_view name) {
  for (BdevModule* module : Modules()) {
    if (module->name() == name) return module;
  }
  return nullptr;
}

void BdevModule::WriteConfig(rpc::Json& config) const {
  for (Bdev* bdev : ListBdevs()) {
    if (&bdev->module() == this) bdev->WriteConfig(config);
  }
}

namespace internal {
BdevModuleRegistrar::BdevModuleRegistrar(BdevModule& module) {
  if (FindBdevModule(module.name()) != nullptr) {
    ReportStaticRegistrationError(
        absl::StrCat("bdev module \"", module.name(), "\" is already registered"));
    return;
  }
  Modules().push_back(&module);
  NoteStaticRegistration(kBdevModuleRegistration, module.name());
}
}  // namespace internal

}  // namespace pollux
