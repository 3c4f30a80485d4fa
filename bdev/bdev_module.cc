#include "pollux/bdev/bdev_module.h"

#include <algorithm>

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
BdevModuleRegistrar::BdevModuleRegistrar(BdevModule& module) { Modules().push_back(&module); }
}  // namespace internal

}  // namespace pollux
