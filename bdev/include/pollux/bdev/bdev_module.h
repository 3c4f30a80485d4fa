// The module API: what someone writing a bdev module implements (SPDK's spdk_bdev_module).
// docs/bdev-module-guide.md walks through it with the passthru module.
//
//   class MyModule : public pollux::BdevModule {
//    public:
//     MyModule() : BdevModule("my") {}
//     static MyModule& Get();          // defined by POLLUX_BDEV_MODULE
//     ...
//   };
//   POLLUX_BDEV_MODULE(MyModule);      // in one .cc file
//
// Threads: Init, Fini, Examine and WriteConfig run on the app thread (the thread that runs
// the bdev subsystem and the RPC methods).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/env/abi_stamp.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

class BdevModule {
 public:
  explicit BdevModule(std::string name) : name_(std::move(name)) {}
  virtual ~BdevModule() = default;
  BdevModule(const BdevModule&) = delete;
  BdevModule& operator=(const BdevModule&) = delete;

  const std::string& name() const { return name_; }

  // When the bdev subsystem starts, before any config replays.
  virtual absl::Status Init() { return absl::OkStatus(); }
  // When it stops, after every bdev is gone.
  virtual void Fini() {}
  // A bdev was registered (by any module, this one included): a virtual module attaches to
  // it here when its config names it as a base. Synchronous.
  virtual void Examine(Bdev& bdev) { (void)bdev; }
  // Appends the RPC calls that recreate this module's state to `config` (a JSON array). The
  // default asks each of the module's registered bdevs (Bdev::WriteConfig).
  virtual void WriteConfig(rpc::Json& config) const;
  // save_config writes modules in increasing order: bases (0) before the virtual bdevs over
  // them (1). Virtual modules wait for missing bases, so this is for readability only.
  virtual int config_order() const { return 0; }
  // Bytes of per-I/O scratch space the module wants in every BdevIo (module_context<T>()).
  virtual size_t io_context_size() const { return 0; }

 private:
  std::string name_;
};

// Every registered module, in registration order.
const std::vector<BdevModule*>& BdevModules();
BdevModule* FindBdevModule(std::string_view name);

namespace internal {
struct BdevModuleRegistrar {
  explicit BdevModuleRegistrar(BdevModule& module);
};
}  // namespace internal

}  // namespace pollux

// Defines Class::Get() (the module's single instance), registers it when its library loads, and
// stamps the library with the pollux version it was built against (pollux/env/abi_stamp.h), so
// that pollux-tgt --plugin can refuse a module built against another version.
#define POLLUX_BDEV_MODULE(Class)                                                            \
  Class& Class::Get() {                                                                      \
    static Class instance;                                                                   \
    return instance;                                                                         \
  }                                                                                          \
  POLLUX_ABI_STAMP(Class);                                                                   \
  static ::pollux::internal::BdevModuleRegistrar pollux_bdev_module_registrar_##Class(Class::Get())
