// RAID0 over N base bdevs, a bdev module built outside pollux and loaded into pollux-tgt as a
// plugin (README.md). The RPC methods are SPDK's (bdev_raid_create with raid_level "raid0",
// bdev_raid_delete, bdev_raid_get_bdevs), so an SPDK user's raid0 config loads unchanged.
//
// Block `b` of the RAID lies in strip s = b / strip_blocks, on base s % N, at base block
// (s / N) * strip_blocks + b % strip_blocks. The layer splits reads and writes at strip
// boundaries (split_on_optimal_io_boundary), so each one lies on one base and is forwarded to
// it at its base offset, with no second BdevIo. UNMAP, WRITE_ZEROES, FLUSH and RESET, which
// the layer does not split, are cut here into one request per base they touch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_module.h"

namespace raid0 {

// What bdev_raid_create asks for: save_config writes it back.
struct RaidConfig {
  std::string name;
  uint64_t strip_size_kb = 0;
  std::vector<std::string> base_bdevs;
  std::string uuid;  // empty: generated at registration, then kept
};

// "online": the RAID bdev is registered; "configuring": some bases are missing (it assembles
// when they register, as SPDK's examine does).
enum class RaidState { kConfiguring, kOnline };
const char* RaidStateName(RaidState state);

class RaidBdev;

// One configured RAID: its bases' descriptors (opened and claimed on the app thread as they
// appear; null while missing) and, once all are there, its bdev.
struct Raid {
  RaidConfig config;
  std::vector<std::unique_ptr<pollux::BdevDesc>> bases;  // one slot per base_bdevs entry
  RaidBdev* bdev = nullptr;                              // registered RAID bdev, or null
  bool deleting = false;
  // The bdev is going because a base is: once it is gone, the bases still there are claimed
  // again and the RAID waits for the missing one.
  bool base_removed = false;
  // A delete asked meanwhile: answered once the bdev is gone, the RAID then forgotten.
  absl::AnyInvocable<void(absl::Status)> delete_done;

  RaidState state() const { return bdev != nullptr ? RaidState::kOnline : RaidState::kConfiguring; }
  int discovered() const;
};

class Raid0Module final : public pollux::BdevModule {
 public:
  Raid0Module() : BdevModule("raid0") {}
  static Raid0Module& Get();

  // Checks and records `config`, claims the bases that exist, and assembles the RAID if all
  // do. On the app thread.
  absl::Status Create(RaidConfig config);
  // Deletes the RAID `name`: its bdev (refused while something claims it), then its claims.
  void Delete(const std::string& name, absl::AnyInvocable<void(absl::Status)> done);
  const std::vector<std::unique_ptr<Raid>>& raids() const { return raids_; }

  void ExamineConfig(pollux::Bdev& bdev) override;
  // The layer is stopping: its bdevs go, and no RAID may assemble again.
  void FiniStart(Done done) override {
    stopping_ = true;
    done();
  }
  void WriteConfig(pollux::rpc::Json& config) const override;
  int config_order() const override { return 1; }  // after its bases
  size_t io_context_size() const override;
  void Fini() override {
    raids_.clear();
    stopping_ = false;
  }

  // RaidBdev's Destruct is over: its bases are closed; reclaim those that still exist unless
  // the RAID is being deleted.
  void BdevGone(Raid& raid);

 private:
  Raid* Find(const std::string& name);
  // Opens and claims the base in `slot`; then, if every slot is filled, registers the bdev.
  absl::Status Claim(Raid& raid, size_t slot);
  absl::Status AssembleIfComplete(Raid& raid);
  void OnBaseEvent(Raid& raid, size_t slot, pollux::BdevEvent event);
  void Forget(const Raid& raid);

  std::vector<std::unique_ptr<Raid>> raids_;
  bool stopping_ = false;
};

}  // namespace raid0
