// FileTarget::Open: open, examine and probe a file or block device, with errors that name the
// file and the reason.
#include "pollux/bdev_file/file_target.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

constexpr uint32_t kDefaultFileBlockSize = 512;
constexpr uint32_t kMinBlockSize = 512;
constexpr uint32_t kMaxBlockSize = 65536;

// An errno from open() or a probe as a Status of the matching code.
absl::Status ErrnoStatus(int err, std::string message) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENXIO:
    case ENODEV:
      return absl::NotFoundError(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(std::move(message));
    default:
      return absl::InvalidArgumentError(std::move(message));
  }
}

// Closes the fd unless released (RAII for the fd while Open can still fail).
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// A number from a one-line sysfs file, or `fallback`.
uint64_t ReadSysfsNumber(const std::string& path, uint64_t fallback) {
  std::ifstream in(path);
  uint64_t value = 0;
  if (in >> value) return value;
  return fallback;
}

// /sys/dev/block/M:m/queue/<attribute> of a block device (a partition's queue is its disk's).
uint64_t BlockQueueAttribute(dev_t rdev, const char* attribute, uint64_t fallback) {
  std::string base = absl::StrFormat("/sys/dev/block/%u:%u", major(rdev), minor(rdev));
  uint64_t value = ReadSysfsNumber(base + "/queue/" + attribute, UINT64_MAX);
  if (value == UINT64_MAX) value = ReadSysfsNumber(base + "/../queue/" + attribute, fallback);
  return value;
}

struct DirectIoAlignment {
  uint32_t offset = 0;  // file offsets and lengths (0: unknown)
  uint32_t memory = 0;  // buffer addresses (0: unknown)
};

// What O_DIRECT needs on this file (statx STATX_DIOALIGN, Linux 6.1+), or zeros when the
// kernel or filesystem does not say.
DirectIoAlignment QueryDirectIoAlignment(int fd) {
  DirectIoAlignment alignment;
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) != 0) {
    alignment.offset = stx.stx_dio_offset_align;
    alignment.memory = stx.stx_dio_mem_align;
  }
#else
  (void)fd;
#endif
  return alignment;
}

// Whether fallocate(mode) works here. Probed past the end of the file with KEEP_SIZE, so that
// no data changes (a zero-range probe may leave blocks allocated past EOF: punched again).
bool ProbeFallocate(int fd, uint64_t size, uint32_t block_size, int mode) {
  off_t offset = static_cast<off_t>(size);
  if (fallocate(fd, mode | FALLOC_FL_KEEP_SIZE, offset, block_size) != 0) return false;
  if ((mode & FALLOC_FL_PUNCH_HOLE) == 0) {
    (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, block_size);
  }
  return true;
}

// Reads one block at offset 0 with O_DIRECT, the final word on whether the block size works.
// Returns 0 or the errno (EINVAL: the block size or alignment is refused).
int ProbeDirectRead(int fd, uint32_t block_size, uint32_t alignment) {
  void* buffer =
      std::aligned_alloc(std::max<uint32_t>(alignment, 4096), std::max<uint32_t>(block_size, 4096));
  if (buffer == nullptr) return ENOMEM;
  ssize_t n = pread(fd, buffer, block_size, 0);
  int err = n < 0 ? errno : 0;
  std::free(buffer);
  return err;
}

std::string Quoted(const std::string& filename) { return absl::StrFormat("\"%s\"", filename); }

// The size of a block device (BLKGETSIZE64) or regular file (fstat) open as `fd`.
absl::StatusOr<uint64_t> ReadSize(int fd, const std::string& name) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrFormat("fstat %s: %s", Quoted(name), std::strerror(err)));
  }
  if (!S_ISBLK(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
    int err = errno;
    return ErrnoStatus(err,
                       absl::StrFormat("%s: BLKGETSIZE64: %s", Quoted(name), std::strerror(err)));
  }
  return size;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileTarget>> FileTarget::Open(const FileTargetOptions& options) {
  const std::string& name = options.filename;
  if (name.empty()) return absl::InvalidArgumentError("filename must not be empty");
  if (options.block_size != 0 &&
      (options.block_size < kMinBlockSize || options.block_size > kMaxBlockSize ||
       !std::has_single_bit(options.block_size))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: block_size %u is not a power of two from 512 to 65536", Quoted(name),
                        options.block_size));
  }

  // Look before opening: opening a FIFO would block, a directory needs its own message.
  struct stat st {};
  if (stat(name.c_str(), &st) != 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrFormat("open %s: %s", Quoted(name), std::strerror(err)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: is a directory, not a file or block device", Quoted(name)));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a regular file or block device", Quoted(name)));
  }

  int flags = (options.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  bool want_direct = options.direct.value_or(true);
  int fd = open(name.c_str(), flags | (want_direct ? O_DIRECT : 0));
  bool direct = want_direct;
  if (fd < 0 && want_direct && errno == EINVAL) {
    // The filesystem refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE mounts).
    if (options.direct.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("open %s with O_DIRECT: the filesystem does not support direct I/O (pass "
                          "\"direct\": false for buffered I/O)",
                          Quoted(name)));
    }
    fd = open(name.c_str(), flags);
    direct = false;
    if (fd >= 0) {
      PX_LOG(kWarning, "bdev_file",
             "%s: the filesystem refuses O_DIRECT; using buffered I/O (page cache)", Quoted(name));
    }
  }
  if (fd < 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrFormat("open %s: %s", Quoted(name), std::strerror(err)));
  }
  FdGuard guard(fd);
  if (fstat(fd, &st) != 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrFormat("fstat %s: %s", Quoted(name), std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {  // replaced between stat and open
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a regular file or block device", Quoted(name)));
  }

  auto target = std::unique_ptr<FileTarget>(new FileTarget());
  target->filename_ = name;
  target->is_block_device_ = S_ISBLK(st.st_mode);
  target->readonly_ = options.readonly;
  target->direct_requested_ = options.direct;

  // Size, and the smallest block the device takes.
  uint64_t size = 0;
  uint32_t device_block = 0;  // what O_DIRECT needs for offsets and lengths (0: nothing known)
  uint32_t memory_align = 0;  // what it needs for buffer addresses
  if (target->is_block_device_) {
    absl::StatusOr<uint64_t> device_size = ReadSize(fd, name);
    if (!device_size.ok()) return device_size.status();
    size = *device_size;
    int logical = 0;
    if (ioctl(fd, BLKSSZGET, &logical) != 0 || logical <= 0) logical = 512;
    device_block = static_cast<uint32_t>(logical);
    memory_align = device_block;
  } else {
    size = static_cast<uint64_t>(st.st_size);
    if (direct) {
      DirectIoAlignment dio = QueryDirectIoAlignment(fd);
      device_block = dio.offset;
      memory_align = dio.memory;
    }
  }

  uint32_t block_size = options.block_size;
  if (block_size == 0) {
    block_size = target->is_block_device_ ? device_block : kDefaultFileBlockSize;
    // A file on a filesystem whose O_DIRECT needs more than 512 bytes: its default grows.
    if (direct && device_block > block_size) block_size = device_block;
    if (block_size < kMinBlockSize) block_size = kMinBlockSize;
    if (block_size > kMaxBlockSize || !std::has_single_bit(block_size)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the device's logical block size %u is not a power of two from 512 to 65536",
          Quoted(name), block_size));
    }
  } else if (direct && device_block > block_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: block_size %u is smaller than the %u bytes O_DIRECT needs on this %s", Quoted(name),
        block_size, device_block, target->is_block_device_ ? "device" : "filesystem"));
  } else if (target->is_block_device_ && block_size % device_block != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: block_size %u is not a multiple of the device's logical block size %u",
                        Quoted(name), block_size, device_block));
  }

  if (size < block_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %u bytes is shorter than one block of %u bytes", Quoted(name), size, block_size));
  }
  if (size % block_size != 0) {
    PX_LOG(kWarning, "bdev_file",
           "%s: size %u is not a multiple of the block size %u; using the first %u bytes",
           Quoted(name), size, block_size, size / block_size * block_size);
  }

  if (direct) {
    // The real test: one block read with O_DIRECT. EINVAL here means the block size or the
    // alignment cannot be done with O_DIRECT on this device.
    uint32_t align = std::max(std::max(device_block, memory_align), 512u);
    if (int err = ProbeDirectRead(fd, block_size, align); err != 0) {
      if (err == EINVAL) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: O_DIRECT refuses block_size %u (%s)",
                                                          Quoted(name), block_size,
                                                          std::strerror(err)));
      }
      return ErrnoStatus(err, absl::StrFormat("%s: reading the first block: %s", Quoted(name),
                                              std::strerror(err)));
    }
    // Buffers must meet the address and length alignment O_DIRECT checks (addresses to the
    // DMA alignment, each segment's length to the logical block size): the layer bounces any
    // that do not.
    uint32_t alignment = std::max(device_block, memory_align);
    if (alignment == 0) alignment = 512;  // nothing known: the classic O_DIRECT rule
    target->buffer_alignment_ = std::min(std::bit_ceil(alignment), block_size);
  }

  target->block_size_ = block_size;
  target->block_count_ = size / block_size;
  target->direct_ = direct;

  if (!options.readonly) {
    if (target->is_block_device_) {
      target->supports_unmap_ = BlockQueueAttribute(st.st_rdev, "discard_max_bytes", 0) > 0;
      target->supports_write_zeroes_ = true;  // BLKZEROOUT: the kernel writes zeroes if need be
    } else {
      target->supports_unmap_ = ProbeFallocate(fd, size, block_size, FALLOC_FL_PUNCH_HOLE);
      target->supports_write_zeroes_ = ProbeFallocate(fd, size, block_size, FALLOC_FL_ZERO_RANGE);
    }
  }
  target->fd_ = guard.release();
  return target;
}

FileTarget::~FileTarget() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<uint64_t> FileTarget::CurrentBlockCount() const {
  absl::StatusOr<uint64_t> size = ReadSize(fd_, filename_);
  if (!size.ok()) return size.status();
  return *size / block_size_;
}

}  // namespace pollux
