// The malloc bdev: one buffer per device (malloc_memory.h) and memcpy per I/O.
#include "pollux/bdev_malloc/bdev_malloc.h"


#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "malloc_memory.h"

namespace pollux {
namespace {

class MallocBdev final : public Bdev {
 public:
  MallocBdev(BdevProperties properties, MallocMemory memory)
      : Bdev(MallocModule::Get(), std::move(properties)),
        memory_(std::move(memory)),
        data_(memory_.data()) {}
  // The memory goes with the object: the layer deletes the bdev after Destruct, once no I/O
  // can reach it, and on a failed registration.

  // Copies inline and completes at once: the layer checked range and type, and guarantees the
  // iovecs add up to num_blocks * block_size, so the loop walks them once without checks.
  void Submit(BdevIo& io) noexcept override {
    uint8_t* disk = data_ + io.offset_blocks() * block_size();
    switch (io.type()) {
      case IoType::kRead: {
        const iovec* iov = io.iovs();
        for (const iovec* end = iov + io.iovcnt(); iov != end; ++iov) {
          std::memcpy(iov->iov_base, disk, iov->iov_len);
          disk += iov->iov_len;
        }
        break;
      }
      case IoType::kWrite: {
        const iovec* iov = io.iovs();
        for (const iovec* end = iov + io.iovcnt(); iov != end; ++iov) {
          std::memcpy(disk, iov->iov_base, iov->iov_len);
          disk += iov->iov_len;
        }
        break;
      }
      case IoType::kUnmap:  // reads after an unmap return zeroes, as SPDK's malloc does
      case IoType::kWriteZeroes:
        std::memset(disk, 0, io.num_blocks() * block_size());
        break;
      case IoType::kFlush:  // no write cache: every write is already "on the medium"
      case IoType::kReset:  // nothing is ever in flight inside the module
        break;
    }
    io.Complete(BdevIoStatus::kSuccess);
  }

  bool IoTypeSupported(IoType) const override { return true; }

  // bdev_get_bdevs' generic fields say all there is (SPDK's malloc has no driver_specific
  // either), so DumpInfo stays the default.

  void WriteConfig(rpc::Json& config) const override {
    config.push_back({{"method", "bdev_malloc_create"},
                      {"params",
                       {{"name", name()},
                        {"num_blocks", block_count()},
                        {"block_size", block_size()},
                        {"uuid", uuid()},
                        {"optimal_io_boundary", optimal_io_boundary()}}}});
  }

 private:
  MallocMemory memory_;
  uint8_t* const data_;  // memory_.data(), where the hot path finds it
};

bool ValidBlockSize(uint64_t block_size) {
  return block_size >= 512 && block_size <= 65536 && (block_size & (block_size - 1)) == 0;
}

// "Malloc0", "Malloc1", ...: the first that is no bdev's name or alias. Runs on the app thread,
// where every create runs, so the name is still free when the bdev registers.
std::string FirstFreeName() {
  for (uint64_t i = 0;; ++i) {
    std::string name = absl::StrFormat("Malloc%u", i);
    if (FindBdev(name) == nullptr) return name;
  }
}

}  // namespace

POLLUX_BDEV_MODULE(MallocModule);

absl::StatusOr<Bdev*> CreateMallocBdev(const MallocBdevOptions& options) {
  if (!ValidBlockSize(options.block_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "block_size %u is not a power of two from 512 to 65536", options.block_size));
  }
  if (options.num_blocks == 0) {
    return absl::InvalidArgumentError("num_blocks must be greater than 0");
  }
  if (options.num_blocks > std::numeric_limits<size_t>::max() / options.block_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("num_blocks %u of %u bytes overflows the address space", options.num_blocks,
                        options.block_size));
  }
  std::string name = options.name.empty() ? FirstFreeName() : options.name;
  // A duplicate name would fail in RegisterBdev anyway; failing before the allocation spares
  // zeroing gigabytes for nothing. The layer's own check stays the authority.
  if (FindBdev(name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrFormat("bdev name %s already exists", name));
  }
  absl::StatusOr<MallocMemory> memory =
      MallocMemory::Allocate(options.num_blocks * options.block_size, name);
  if (!memory.ok()) return memory.status();
  BdevProperties properties;
  properties.name = std::move(name);
  properties.uuid = options.uuid;
  properties.product_name = "Malloc disk";
  properties.block_size = options.block_size;
  properties.block_count = options.num_blocks;
  properties.optimal_io_boundary = options.optimal_io_boundary;
  properties.split_on_optimal_io_boundary = options.optimal_io_boundary != 0;
  return RegisterBdev(std::make_unique<MallocBdev>(std::move(properties), std::move(*memory)));
}

uint64_t MallocBdevKernelBytes() { return MallocMemory::KernelBytesHeld(); }

void DeleteMallocBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &MallocModule::Get(), std::move(done));
}

}  // namespace pollux
