// The null bdev: Submit completes every request with success and touches no data.
#include "pollux/bdev_null/bdev_null.h"

#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"

namespace pollux {
namespace {

class NullBdev final : public Bdev {
 public:
  explicit NullBdev(BdevProperties properties) : Bdev(NullModule::Get(), std::move(properties)) {}

  // The whole hot path: the layer already checked range and type, and a null device has
  // nothing to do, so the only cost measured is the layer's.
  void Submit(BdevIo& io) noexcept override { io.Complete(BdevIoStatus::kSuccess); }

  // Every type "works" on a device without data, as in SPDK.
  bool IoTypeSupported(IoType) const override { return true; }

  // bdev_get_bdevs' generic fields say all there is; SPDK's null has no driver_specific
  // either, so DumpInfo stays the default (nothing).

  void WriteConfig(rpc::Json& config) const override {
    config.push_back({{"method", "bdev_null_create"},
                      {"params",
                       {{"name", name()},
                        {"num_blocks", block_count()},
                        {"block_size", block_size()},
                        {"uuid", uuid()}}}});
  }
};

bool ValidBlockSize(uint64_t block_size) {
  return block_size >= 512 && block_size <= 65536 && (block_size & (block_size - 1)) == 0;
}

}  // namespace

POLLUX_BDEV_MODULE(NullModule);

absl::StatusOr<Bdev*> CreateNullBdev(const NullBdevOptions& options) {
  if (options.name.empty()) return absl::InvalidArgumentError("the bdev name must not be empty");
  if (!ValidBlockSize(options.block_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "block_size %u is not a power of two from 512 to 65536", options.block_size));
  }
  if (options.num_blocks == 0) {
    return absl::InvalidArgumentError("num_blocks must be greater than 0");
  }
  // The layer computes byte sizes as block_count * block_size: keep that representable.
  if (options.num_blocks > std::numeric_limits<uint64_t>::max() / options.block_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("num_blocks %u of %u bytes overflows a 64-bit byte size",
                        options.num_blocks, options.block_size));
  }
  BdevProperties properties;
  properties.name = options.name;
  properties.uuid = options.uuid;
  properties.product_name = "Null disk";
  properties.block_size = options.block_size;
  properties.block_count = options.num_blocks;
  return RegisterBdev(std::make_unique<NullBdev>(std::move(properties)));
}

void DeleteNullBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &NullModule::Get(), std::move(done));
}

}  // namespace pollux
