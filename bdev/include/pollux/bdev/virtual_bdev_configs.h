// VirtualBdevConfigs: the configurations of a virtual bdev module (one whose bdevs sit on a
// base bdev: passthru, error, delay, yours), and SPDK's rule for them: a bdev asked for over a
// base that does not exist yet is remembered, not refused, and attaches when the base
// registers (BdevModule::ExamineConfig). save_config writes every configuration, attached or
// still waiting, so a replay recreates both.
//
//   class MyModule : public BdevModule {
//     ...
//     void ExamineConfig(Bdev& bdev) override { configs_.Examine(bdev); }
//     VirtualBdevConfigs<MyOptions> configs_{*this, &NameOf, &BaseOf, &Attach};
//   };
//   absl::StatusOr<Bdev*> CreateMy(const MyOptions& o) { ...checks...; return configs_.Create(o); }
//   void DeleteMy(name, done) { configs_.Delete(name, std::move(done)); }
//
// Threads: the app thread only (RPC methods, examine, save_config run there), so no lock.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/log.h"

namespace pollux {

// The checks every virtual bdev's create makes: a name, a base, not its own base, and a UUID
// in RFC 4122 text form if one is given.
absl::Status CheckVirtualBdevNames(std::string_view name, std::string_view base_name,
                                   std::string_view uuid);

template <typename Options>
class VirtualBdevConfigs {
 public:
  // The virtual bdev's name and its base's name in `Options`.
  using NameFn = std::string (*)(const Options&);
  using BaseNameFn = const std::string& (*)(const Options&);
  // Builds the virtual bdev of `options` over `base` and registers it (RegisterBdev).
  using AttachFn = absl::StatusOr<Bdev*> (*)(const Options& options, Bdev& base);

  VirtualBdevConfigs(const BdevModule& module, NameFn name, BaseNameFn base_name, AttachFn attach)
      : module_(module), name_(name), base_name_(base_name), attach_(attach) {}

  // The configuration of the virtual bdev `name`, or nullptr.
  Options* Find(std::string_view name) {
    for (Options& options : configs_) {
      if (name_(options) == name) return &options;
    }
    return nullptr;
  }
  const std::vector<Options>& all() const { return configs_; }

  // Records `options` and attaches it now if its base exists: returns the new bdev, or
  // nullptr when it waits for its base. A name configured or registered already is
  // AlreadyExists; a failed attach leaves nothing recorded.
  absl::StatusOr<Bdev*> Create(const Options& options) {
    const std::string name = name_(options);
    if (Find(name) != nullptr || FindBdev(name) != nullptr) {
      return absl::AlreadyExistsError(absl::StrFormat("bdev %s already exists", name));
    }
    // Recorded before attaching, so that examine finds it when the base registers later.
    configs_.push_back(options);
    Bdev* base = FindBdev(base_name_(options));
    if (base == nullptr) return nullptr;
    absl::StatusOr<Bdev*> bdev = attach_(options, *base);
    if (!bdev.ok()) Remove(name);
    return bdev;
  }

  // For BdevModule::ExamineConfig: attaches the configurations waiting for `bdev`. Errors are
  // logged (examine has nobody to return them to); the configuration stays, as in SPDK.
  void Examine(Bdev& bdev) {
    // Copied first: attaching registers a bdev, which runs ExamineConfig again (a virtual bdev
    // over a virtual bdev), and that must not change the list being walked.
    std::vector<Options> waiting;
    for (const Options& options : configs_) {
      if (bdev.HasName(base_name_(options)) && FindBdev(name_(options)) == nullptr) {
        waiting.push_back(options);
      }
    }
    for (const Options& options : waiting) {
      absl::StatusOr<Bdev*> attached = attach_(options, bdev);
      if (!attached.ok()) {
        PX_LOG(kError, module_.name().c_str(), "examine %s: %s", bdev.name(),
               attached.status().message());
      }
    }
  }

  // Deletes the virtual bdev `name`: a configuration still waiting for its base is just
  // forgotten; otherwise the bdev is deleted (DeleteBdev: refused while claimed) and its
  // configuration forgotten once it is gone. done runs on the calling thread.
  void Delete(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
    if (FindBdev(name) == nullptr && Remove(name)) return done(absl::OkStatus());
    DeleteBdev(name, &module_,
               [this, name = std::string(name), done = std::move(done)](absl::Status s) mutable {
                 // Forgotten only once gone: a refused delete (claimed, say) changes nothing.
                 if (s.ok()) Remove(name);
                 done(s);
               });
  }

  // The UUID save_config writes for `options`: the one its bdev got, so that a replay
  // recreates the same, or else the one asked for (maybe empty).
  std::string UuidToSave(const Options& options, const std::string& asked) const {
    const Bdev* bdev = FindBdev(name_(options));
    return bdev != nullptr && &bdev->module() == &module_ ? bdev->uuid() : asked;
  }

  // Forgets every configuration (BdevModule::Fini).
  void Clear() { configs_.clear(); }

 private:
  bool Remove(std::string_view name) {
    for (auto it = configs_.begin(); it != configs_.end(); ++it) {
      if (name_(*it) == name) {
        configs_.erase(it);
        return true;
      }
    }
    return false;
  }

  const BdevModule& module_;
  NameFn name_;
  BaseNameFn base_name_;
  AttachFn attach_;
  std::vector<Options> configs_;
};

}  // namespace pollux
