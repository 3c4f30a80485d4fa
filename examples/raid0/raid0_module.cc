// The RAID0 module: configurations, claims on the bases, examine, delete and save_config. On
// the app thread (RPC methods, examine, descriptor events and save_config run there).
#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "raid0.h"
#include "raid0_bdev.h"

namespace raid0 {

using pollux::Bdev;
using pollux::BdevDesc;
using pollux::BdevEvent;

POLLUX_BDEV_MODULE(Raid0Module);

const char* RaidStateName(RaidState state) {
  return state == RaidState::kOnline ? "online" : "configuring";
}

int Raid::discovered() const {
  return static_cast<int>(
      std::count_if(bases.begin(), bases.end(), [](const auto& desc) { return desc != nullptr; }));
}

size_t Raid0Module::io_context_size() const { return sizeof(FanOut); }

Raid* Raid0Module::Find(const std::string& name) {
  for (auto& raid : raids_) {
    if (raid->config.name == name) return raid.get();
  }
  return nullptr;
}

absl::Status Raid0Module::Create(RaidConfig config) {
  if (config.name.empty()) return absl::InvalidArgumentError("name is empty");
  if (Find(config.name) != nullptr || pollux::FindBdev(config.name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrFormat("bdev %s already exists", config.name));
  }
  if (config.base_bdevs.empty()) return absl::InvalidArgumentError("base_bdevs is empty");
  const uint64_t strip_kb = config.strip_size_kb;
  if (strip_kb == 0 || (strip_kb & (strip_kb - 1)) != 0 || strip_kb > 1024 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrFormat("strip_size_kb %u: expected a power of two from 1 to 1048576", strip_kb));
  }
  if (!config.uuid.empty() && !pollux::IsValidUuid(config.uuid)) {
    return absl::InvalidArgumentError(absl::StrFormat("uuid \"%s\" is not a UUID", config.uuid));
  }
  for (size_t i = 0; i < config.base_bdevs.size(); ++i) {
    const std::string& base = config.base_bdevs[i];
    if (base.empty()) return absl::InvalidArgumentError("a base bdev name is empty");
    if (base == config.name) {
      return absl::InvalidArgumentError(absl::StrFormat("%s cannot be its own base", base));
    }
    if (std::find(config.base_bdevs.begin(), config.base_bdevs.begin() + i, base) !=
        config.base_bdevs.begin() + i) {
      return absl::InvalidArgumentError(absl::StrFormat("base bdev %s is named twice", base));
    }
    for (const auto& other : raids_) {
      const auto& others = other->config.base_bdevs;
      if (std::find(others.begin(), others.end(), base) != others.end()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("base bdev %s is already a base of %s", base, other->config.name));
      }
    }
  }
  auto raid = std::make_unique<Raid>();
  raid->config = std::move(config);
  raid->bases.resize(raid->config.base_bdevs.size());
  // Every existing base is claimed now; a failure (claimed by another module, say) leaves
  // nothing behind. Missing ones are claimed when they register (Examine).
  for (size_t slot = 0; slot < raid->bases.size(); ++slot) {
    if (pollux::FindBdev(raid->config.base_bdevs[slot]) == nullptr) continue;
    if (absl::Status s = Claim(*raid, slot); !s.ok()) return s;
  }
  if (absl::Status s = AssembleIfComplete(*raid); !s.ok()) return s;
  if (raid->state() == RaidState::kConfiguring) {
    PX_LOG(kNotice, "raid0", "%s: %d of %zu base bdevs present; assembles when the rest appear",
           raid->config.name, raid->discovered(), raid->bases.size());
  }
  raids_.push_back(std::move(raid));
  return absl::OkStatus();
}

absl::Status Raid0Module::Claim(Raid& raid, size_t slot) {
  const std::string& base_name = raid.config.base_bdevs[slot];
  absl::StatusOr<std::unique_ptr<BdevDesc>> desc = BdevDesc::OpenAndClaim(
      base_name, *this,
      [this, raid = &raid, slot](BdevEvent event, Bdev&) { OnBaseEvent(*raid, slot, event); });
  if (!desc.ok()) {
    return absl::Status(desc.status().code(),
                        absl::StrFormat("%s: base bdev %s: %s", raid.config.name, base_name,
                                        desc.status().message()));
  }
  raid.bases[slot] = std::move(*desc);
  return absl::OkStatus();
}

absl::Status Raid0Module::AssembleIfComplete(Raid& raid) {
  if (raid.discovered() != static_cast<int>(raid.bases.size()) || raid.bdev != nullptr) {
    return absl::OkStatus();
  }
  const Bdev& first = raid.bases[0]->bdev();
  pollux::BdevProperties properties;
  properties.name = raid.config.name;
  properties.uuid = raid.config.uuid;
  properties.product_name = "Raid Volume";
  properties.block_size = first.block_size();
  std::vector<uint64_t> block_counts;
  for (const auto& desc : raid.bases) {
    const Bdev& base = desc->bdev();
    if (base.block_size() != first.block_size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: base bdevs %s and %s have different block sizes (%u, %u)", raid.config.name,
          first.name(), base.name(), first.block_size(), base.block_size()));
    }
    block_counts.push_back(base.block_count());
    properties.required_alignment =
        std::max(properties.required_alignment, base.required_alignment());
    properties.write_cache = properties.write_cache || base.write_cache();
    properties.requires_shared_memory =
        properties.requires_shared_memory || base.requires_shared_memory();
  }
  const uint64_t strip_bytes = raid.config.strip_size_kb * 1024;
  if (strip_bytes < first.block_size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: strip_size_kb %u is smaller than a block (%u bytes)", raid.config.name,
                        raid.config.strip_size_kb, first.block_size()));
  }
  const uint64_t strip_blocks = strip_bytes / first.block_size();
  properties.block_count = RaidBlockCount(block_counts, strip_blocks);
  if (properties.block_count == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: the smallest base bdev is smaller than one strip (%u KiB)",
                        raid.config.name, raid.config.strip_size_kb));
  }
  // The layer cuts reads and writes at strip boundaries: each lands on one base.
  properties.optimal_io_boundary = static_cast<uint32_t>(strip_blocks);
  properties.split_on_optimal_io_boundary = true;
  auto bdev = std::make_unique<RaidBdev>(raid, std::move(properties),
                                         static_cast<uint32_t>(__builtin_ctzll(strip_blocks)));
  RaidBdev* raw = bdev.get();
  absl::StatusOr<Bdev*> registered = pollux::RegisterBdev(std::move(bdev));
  if (!registered.ok()) return registered.status();
  raid.bdev = raw;
  // A replay must recreate the same UUID.
  raid.config.uuid = raw->uuid();
  PX_LOG(kNotice, "raid0", "%s online: %zu base bdevs, strip %u KiB, %u blocks", raid.config.name,
         raid.bases.size(), raid.config.strip_size_kb, raw->block_count());
  return absl::OkStatus();
}

void Raid0Module::ExamineConfig(Bdev& bdev) {
  if (stopping_) return;
  for (auto& raid : raids_) {
    if (raid->deleting) continue;
    for (size_t slot = 0; slot < raid->bases.size(); ++slot) {
      if (raid->bases[slot] != nullptr || !bdev.HasName(raid->config.base_bdevs[slot])) continue;
      absl::Status s = Claim(*raid, slot);
      if (s.ok()) s = AssembleIfComplete(*raid);
      if (!s.ok()) PX_LOG(kError, "raid0", "examine %s: %s", bdev.name(), s.message());
    }
  }
}

void Raid0Module::OnBaseEvent(Raid& raid, size_t slot, BdevEvent event) {
  if (event != BdevEvent::kRemove) return;
  if (raid.bdev != nullptr) {
    // RAID0 has no redundancy: the RAID goes with any base. Its Destruct closes every base;
    // then BdevGone claims again the bases still there, and the RAID waits for the one that
    // went, as when it was first configured.
    PX_LOG(kNotice, "raid0", "base bdev %s is being removed: %s goes back to configuring",
           raid.config.base_bdevs[slot], raid.config.name);
    raid.base_removed = true;
    pollux::UnregisterBdev(*raid.bdev, [](absl::Status) {});
    return;
  }
  raid.bases[slot].reset();  // on the app thread, which opened it
}

void Raid0Module::BdevGone(Raid& raid) {
  raid.bdev = nullptr;
  if (raid.deleting) {
    absl::AnyInvocable<void(absl::Status)> done = std::move(raid.delete_done);
    Forget(raid);
    if (done) done(absl::OkStatus());
    return;
  }
  // Otherwise only after a base went: an unregistration of the RAID bdev itself (the layer
  // stopping) leaves it configuring, its bases unclaimed.
  if (!std::exchange(raid.base_removed, false) || stopping_) return;
  // Claimed again once this bdev is deleted, so that its name is free to register again.
  bool sent = pollux::Thread::Current()->SendMessage([this, name = raid.config.name] {
    Raid* again = Find(name);
    if (stopping_ || again == nullptr || again->deleting || again->bdev != nullptr) return;
    for (size_t slot = 0; slot < again->bases.size(); ++slot) {
      if (again->bases[slot] == nullptr && pollux::FindBdev(again->config.base_bdevs[slot])) {
        if (absl::Status s = Claim(*again, slot); !s.ok()) {
          PX_LOG(kNotice, "raid0", "%s", s.message());
        }
      }
    }
    if (absl::Status s = AssembleIfComplete(*again); !s.ok()) {
      PX_LOG(kError, "raid0", "%s", s.message());
    }
  });
  if (!sent) {
    PX_LOG(kError, "raid0", "%s: cannot claim its bases again (mailbox full); delete and create it",
           raid.config.name);
  }
}

void Raid0Module::Forget(const Raid& raid) {
  raids_.erase(std::remove_if(raids_.begin(), raids_.end(),
                              [&raid](const auto& r) { return r.get() == &raid; }),
               raids_.end());
}

void Raid0Module::Delete(const std::string& name, absl::AnyInvocable<void(absl::Status)> done) {
  Raid* raid = Find(name);
  if (raid == nullptr || raid->deleting) {
    return done(absl::NotFoundError(absl::StrFormat("no RAID named %s", name)));
  }
  if (raid->bdev == nullptr) {
    // Configuring: only claims to drop.
    Forget(*raid);
    return done(absl::OkStatus());
  }
  // Marked first: the bdev's Destruct may run before DeleteBdev returns, and must not claim
  // the bases again.
  raid->deleting = true;
  if (raid->base_removed) {
    // Its bdev is already going with a base (DeleteBdev would refuse: "already being
    // removed"): answered once it is gone, and the RAID forgotten then, not reassembled.
    raid->delete_done = std::move(done);
    return;
  }
  pollux::DeleteBdev(name, this, [this, name, done = std::move(done)](absl::Status s) mutable {
    if (Raid* raid = Find(name); raid != nullptr) {
      if (s.ok()) {
        Forget(*raid);
      } else {
        raid->deleting = false;  // refused (claimed by a bdev above): nothing changed
      }
    }
    done(s);
  });
}

void Raid0Module::WriteConfig(pollux::rpc::Json& config) const {
  for (const auto& raid : raids_) {
    pollux::rpc::Json params = {{"name", raid->config.name},
                                {"raid_level", "raid0"},
                                {"strip_size_kb", raid->config.strip_size_kb},
                                {"base_bdevs", raid->config.base_bdevs}};
    if (!raid->config.uuid.empty()) params["uuid"] = raid->config.uuid;
    config.push_back({{"method", "bdev_raid_create"}, {"params", std::move(params)}});
  }
}

}  // namespace raid0
