// The table of registered bdevs by name and alias, and the descriptor bookkeeping that goes
// with registration and removal. Private: the public face is bdev.h and bdev_desc.h.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"

namespace pollux {

class BdevRegistry {
 public:
  static BdevRegistry& Get();

  absl::StatusOr<Bdev*> Register(std::unique_ptr<Bdev> bdev);
  void Unregister(Bdev& bdev, absl::AnyInvocable<void(absl::Status)> done);
  Bdev* Find(std::string_view name);
  std::vector<Bdev*> List();
  // Unregistered and not being removed.
  bool IsLive(Bdev* bdev);

  absl::StatusOr<std::unique_ptr<BdevDesc>> Open(std::string_view name, bool writable,
                                                 BdevEventCallback event_cb);
  void Close(BdevDesc& desc);
  absl::Status Claim(BdevDesc& desc, const BdevModule& module);
  void ReleaseClaim(BdevDesc& desc);
  // NotifyBdevBlockCountChange.
  absl::Status ChangeBlockCount(Bdev& bdev, uint64_t block_count);

 private:
  static absl::Status Validate(BdevProperties& properties);
  // The second half of Unregister, on the app thread: every module's OnBdevRemoved, then the
  // descriptors' remove events.
  void Announce(Bdev* bdev);
  static void DeliverRemove(Bdev* bdev, BdevDesc* desc);
  // After a resize's walk over the channels: kResize to each descriptor open then.
  void AnnounceResize(Bdev* bdev);
  void DeliverResize(Bdev* bdev, BdevDesc* desc);
  // Whether `bdev` is in the table (compared by address, never dereferenced). Under mutex_.
  bool Listed(const Bdev* bdev) const;
  void ContinueUnregister(Bdev* bdev);
  void FinishUnregister(Bdev* bdev);

  std::mutex mutex_;  // the two tables; taken before any BdevState::mutex
  std::vector<std::unique_ptr<Bdev>> bdevs_;
  std::map<std::string, Bdev*, std::less<>> names_;  // names and aliases
};

}  // namespace pollux
