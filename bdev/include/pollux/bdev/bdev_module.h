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
// Threads: every member below is called on the app thread (the thread that runs the bdev
// subsystem and the RPC methods), except ExamineConfig and ExamineDisk, which run on the thread
// that registered the bdev (the app thread for every in-tree module). The `done` callbacks may
// be called on any Thread, now or later, exactly once; a second call is logged and ignored.
//
// The life cycle, in order (SPDK's spdk_bdev_module, its flags turned into virtual calls):
//   start-up:   InitAsync (default: Init) of each module in turn; config replays after all.
//   each bdev:  ExamineConfig of every module, then ExamineDisk (of every module, or only of
//               the claimer if ExamineConfig claimed it); "examined" once all called done.
//   removal:    OnBdevRemoved of every module, then the descriptors' kRemove events, then
//               (every descriptor closed) the bdev's Destruct.
//   shutdown:   FiniStart of each module, the bdevs unregistered, FiniAsync (default: Fini)
//               of each module in reverse order.
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

  using InitDone = absl::AnyInvocable<void(absl::Status)>;
  using Done = absl::AnyInvocable<void()>;

  // When the bdev subsystem starts, before any config replays. An error stops the start-up
  // with its message.
  virtual absl::Status Init() { return absl::OkStatus(); }
  // The asynchronous form (SPDK's async_init + spdk_bdev_module_init_done), for a module that
  // waits for a device or a connection: call done once it is up. Start-up waits for it (the
  // next module starts after it, config replay after all), logging every few seconds that it
  // is still pending. The default calls Init().
  virtual void InitAsync(InitDone done) { done(Init()); }

  // When the bdev subsystem starts to stop, before any bdev is unregistered (SPDK's
  // fini_start): drop claims held without a bdev of yours on top, stop creating bdevs. Call
  // done when finished; the shutdown waits for it.
  virtual void FiniStart(Done done) { done(); }
  // When it stops, after every bdev is gone.
  virtual void Fini() {}
  // The asynchronous form (SPDK's async_fini + spdk_bdev_module_fini_done): call done once the
  // module's resources are released. The default calls Fini().
  virtual void FiniAsync(Done done) {
    Fini();
    done();
  }

  // A bdev was registered (by any module, this one included): claim what your configuration
  // names, without I/O (SPDK's examine_config). A virtual module attaches to it here when its
  // config names it as a base. Synchronous. The default calls Examine.
  virtual void ExamineConfig(Bdev& bdev) { Examine(bdev); }
  // After every module's ExamineConfig (SPDK's examine_disk): the module may open the bdev and
  // read it (an on-disk label) and decide to claim it, then calls done. Only the claiming
  // module is asked when ExamineConfig claimed the bdev. bdev_wait_for_examine waits for every
  // done. If the bdev is being removed meanwhile, the module gets its descriptor's kRemove
  // event as any user would, and must still call done.
  virtual void ExamineDisk(Bdev& bdev, Done done) {
    (void)bdev;
    done();
  }
  // The one-step examine of earlier releases, kept for modules written against it: the default
  // ExamineConfig calls it. New modules override ExamineConfig.
  virtual void Examine(Bdev& bdev) { (void)bdev; }

  // A bdev (any module's) is being unregistered: called for every module, on the app thread,
  // when UnregisterBdev starts and before the bdev's descriptors get their kRemove events; the
  // bdev is still findable (FindBdev) but refuses new opens. For modules that keep per-bdev
  // bookkeeping or remember a base by name without having it open. Do not unregister `bdev`
  // here (it is being unregistered); opening it fails.
  virtual void OnBdevRemoved(Bdev& bdev) { (void)bdev; }
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
