#include "pollux/bdev/bdev.h"

#include <cctype>
#include <memory>

#include "bdev_state.h"
#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev/virtual_bdev_configs.h"

namespace pollux {

const char* IoTypeName(IoType type) {
  switch (type) {
    case IoType::kRead: return "read";
    case IoType::kWrite: return "write";
    case IoType::kFlush: return "flush";
    case IoType::kUnmap: return "unmap";
    case IoType::kWriteZeroes: return "write_zeroes";
    case IoType::kReset: return "reset";
  }
  return "unknown";
}

const char* BdevIoStatusName(BdevIoStatus status) {
  switch (status) {
    case BdevIoStatus::kSuccess: return "success";
    case BdevIoStatus::kFailed: return "failed";
    case BdevIoStatus::kNoMemory: return "no memory";
    case BdevIoStatus::kOutOfRange: return "out of range";
    case BdevIoStatus::kNotSupported: return "not supported";
    case BdevIoStatus::kInvalid: return "invalid";
    case BdevIoStatus::kAborted: return "aborted";
    case BdevIoStatus::kMiscompare: return "miscompare";
  }
  return "unknown";
}

Bdev::Bdev(BdevModule& module, BdevProperties properties)
    : properties_(std::move(properties)),
      block_count_(properties_.block_count),
      module_(&module) {}

Bdev::~Bdev() = default;

bool Bdev::HasName(std::string_view name) const {
  if (properties_.name == name) return true;
  for (const std::string& alias : properties_.aliases) {
    if (alias == name) return true;
  }
  return false;
}

bool IsValidUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status CheckVirtualBdevNames(std::string_view name, std::string_view base_name,
                                   std::string_view uuid) {
  if (name.empty()) return absl::InvalidArgumentError("the bdev name must not be empty");
  if (base_name.empty()) return absl::InvalidArgumentError("the base bdev name must not be empty");
  if (name == base_name) {
    return absl::InvalidArgumentError(absl::StrFormat("bdev %s cannot be its own base", name));
  }
  if (!uuid.empty() && !IsValidUuid(uuid)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("uuid \"%s\" is not a UUID (8-4-4-4-12 hexadecimal digits)", uuid));
  }
  return absl::OkStatus();
}

const BdevModule* Bdev::claimed_by() const {
  if (state_ == nullptr) return nullptr;
  std::lock_guard lock(state_->mutex);
  return state_->claim_module;
}

size_t Bdev::open_count() const {
  if (state_ == nullptr) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->descs.size();
}

void Bdev::GetIoStats(absl::AnyInvocable<void(const BdevIoStats&)> done) {
  auto total = std::make_shared<BdevIoStats>();
  ForEachChannel(
      state_->channels,
      [total](IoChannel& channel) { total->Merge(channel.context<BdevChannel>().TotalStats()); },
      [this, total, done = std::move(done)](absl::Status) mutable {
        {
          std::lock_guard lock(state_->mutex);
          total->Merge(state_->retired_stats);
        }
        done(*total);
      });
}

void ForEachBdevChannel(
    Bdev& bdev,
    absl::AnyInvocable<void(IoChannel& channel, ChannelContext* module_channel,
                            absl::AnyInvocable<void(absl::Status)> next)>
        fn,
    absl::AnyInvocable<void(absl::Status)> done) {
  // The bdev's channels are the channels of its state's IoDevice: the reactor's walk, with
  // the module's half of each channel handed to fn.
  ForEachChannelAsync(
      bdev.state_->channels,
      [fn = std::move(fn)](IoChannel& channel,
                           absl::AnyInvocable<void(absl::Status)> next) mutable {
        fn(channel, channel.context<BdevChannel>().module_channel(), std::move(next));
      },
      std::move(done));
}

}  // namespace pollux
