// The malloc bdev: a DPDK memory buffer per device and memcpy per I/O.
#include "pollux/bdev_malloc/bdev_malloc.h"

#include <rte_malloc.h>
#include <rte_memory.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"

namespace pollux {
namespace {

// 4 KiB alignment: page-aligned like SPDK's, so that any block size up to a page never
// straddles a page and the memcpy of aligned requests runs on aligned data.
constexpr size_t kBufferAlignment = 4096;

struct DpdkFree {
  void operator()(uint8_t* p) const { rte_free(p); }
};
using DpdkBuffer = std::unique_ptr<uint8_t, DpdkFree>;

class MallocBdev final : public Bdev {
 public:
  MallocBdev(BdevProperties properties, DpdkBuffer data)
      : Bdev(MallocModule::Get(), std::move(properties)), data_(std::move(data)) {}
  // The memory goes with the object: the layer deletes the bdev after Destruct, once no I/O
  // can reach it, and on a failed registration.

  // Copies inline and completes at once: the layer checked range and type, and guarantees the
  // iovecs add up to num_blocks * block_size, so the loop walks them once without checks.
  void Submit(BdevIo& io) noexcept override {
    uint8_t* disk = data_.get() + io.offset_blocks() * block_size();
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
  DpdkBuffer data_;
};

bool ValidBlockSize(uint64_t block_size) {
  return block_size >= 512 && block_size <= 65536 && (block_size & (block_size - 1)) == 0;
}

// "256 MiB", "1.5 GiB", "4 KiB", "100 bytes": sizes for error messages.
std::string FormatSize(uint64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrFormat("%u bytes", bytes);
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  if (value == static_cast<double>(static_cast<uint64_t>(value))) {
    return absl::StrFormat("%u %s", static_cast<uint64_t>(value), kUnits[unit]);
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

// The largest block DPDK's heaps could hand out now, over every NUMA node.
uint64_t LargestFreeDpdkBlock() {
  uint64_t largest = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats stats{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
      largest = std::max<uint64_t>(largest, stats.greatest_free_size);
    }
  }
  return largest;
}

// Maps every page of the buffer now. Without hugepages DPDK's memory is an ordinary shared
// mapping whose pages the kernel provides on first touch, and a page fault on the data path
// costs tens of microseconds on a VM: a fresh 256 MiB disk would spend its first 65536 I/Os
// faulting. MADV_POPULATE_WRITE populates the range in one call and reports a shortage of RAM
// as ENOMEM instead of the OOM killer later; kernels before 5.14 get one write per page.
absl::Status Prefault(uint8_t* data, size_t size) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // The page-aligned cover of the buffer may include neighbouring DPDK memory: populating
  // changes no contents, so that is harmless.
  uintptr_t start = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size + page - 1) & ~(page - 1);
  if (madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE) == 0) {
    return absl::OkStatus();
  }
  // ENOMEM: no RAM left; EFAULT: the shared memory behind the mapping could not grow.
  if (errno == ENOMEM || errno == EFAULT) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot back %s of DPDK memory with RAM: %s", FormatSize(size), strerror(errno)));
  }
#endif
  // Older kernel (EINVAL): the buffer is zeroed already, so writing zero every 4 KiB (the
  // smallest page size) only faults the pages in.
  for (size_t offset = 0; offset < size; offset += 4096) {
    reinterpret_cast<volatile uint8_t*>(data)[offset] = 0;
  }
  return absl::OkStatus();
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
  uint64_t size = options.num_blocks * options.block_size;
  DpdkBuffer data(static_cast<uint8_t*>(
      rte_zmalloc_socket("bdev_malloc", size, kBufferAlignment, SOCKET_ID_ANY)));
  if (data == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot allocate %s for \"%s\" from DPDK memory (the largest free block is %s; give the "
        "app more with --mem-size)",
        FormatSize(size), name, FormatSize(LargestFreeDpdkBlock())));
  }
  if (absl::Status s = Prefault(data.get(), size); !s.ok()) {
    return absl::ResourceExhaustedError(absl::StrFormat("\"%s\": %s", name, s.message()));
  }
  BdevProperties properties;
  properties.name = std::move(name);
  properties.uuid = options.uuid;
  properties.product_name = "Malloc disk";
  properties.block_size = options.block_size;
  properties.block_count = options.num_blocks;
  properties.optimal_io_boundary = options.optimal_io_boundary;
  properties.split_on_optimal_io_boundary = options.optimal_io_boundary != 0;
  return RegisterBdev(std::make_unique<MallocBdev>(std::move(properties), std::move(data)));
}

void DeleteMallocBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &MallocModule::Get(), std::move(done));
}

}  // namespace pollux
