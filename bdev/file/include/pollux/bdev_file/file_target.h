// FileTarget: an open file or block device that a file-backed bdev reads and writes, with what
// was learnt about it when it was opened (size, block size, O_DIRECT, what fallocate / discard
// it supports).
//
// Threads: Open runs on the app thread (bdev creation, RPC). Afterwards the object is
// immutable and read from any thread (the reactors' channels, the thread pool's workers); the
// fd is closed by the destructor, after every channel of the bdev is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace pollux {

// What to open, as the create RPCs give it (bdev_<engine>_create, bdev_file_create).
struct FileTargetOptions {
  std::string filename;     // a regular file or a block device; must exist
  uint32_t block_size = 0;  // 0: the device's logical block size, or 512 for a regular file
  bool readonly = false;    // O_RDONLY; the bdev then takes only READ and FLUSH
  // O_DIRECT. Unset: on, unless the filesystem refuses it (tmpfs): then buffered with a
  // warning. true: on, and a filesystem that refuses it is an error. false: buffered.
  std::optional<bool> direct;
};

// An open file or block device. Non-copyable; owns the fd.
class FileTarget {
 public:
  // Opens and examines `options.filename`. Errors are InvalidArgument / NotFound /
  // PermissionDenied / FailedPrecondition with a message that names the file and the reason,
  // e.g. `open "/data/disk.img": No such file or directory`,
  // `"/data": is a directory, not a file or block device`,
  // `"/data/small.img": 100 bytes is shorter than one block of 512 bytes`,
  // `"/dev/sdb": block_size 512 is smaller than the device's logical block size 4096`.
  // A size that is not a multiple of the block size is rounded down with a warning (logged).
  // Call on the app thread (it does blocking syscalls).
  static absl::StatusOr<std::unique_ptr<FileTarget>> Open(const FileTargetOptions& options);

  ~FileTarget();
  FileTarget(const FileTarget&) = delete;
  FileTarget& operator=(const FileTarget&) = delete;

  // The fd every engine uses (opened O_RDWR or O_RDONLY, O_CLOEXEC, O_DIRECT when direct()).
  int fd() const { return fd_; }
  const std::string& filename() const { return filename_; }
  bool is_block_device() const { return is_block_device_; }
  uint32_t block_size() const { return block_size_; }
  // Whole blocks the bdev exposes (the file size rounded down to the block size).
  uint64_t block_count() const { return block_count_; }
  uint64_t size_bytes() const { return block_count_ * block_size_; }
  // Whole blocks in the file or device now (it may have grown since Open; bdev_*_rescan).
  // Blocking syscalls: call on the app thread.
  absl::StatusOr<uint64_t> CurrentBlockCount() const;
  bool readonly() const { return readonly_; }
  // Whether O_DIRECT is in effect (after a tmpfs fallback this is false).
  bool direct() const { return direct_; }
  // What the caller asked for `direct` (unset: default), for save_config.
  std::optional<bool> direct_requested() const { return direct_requested_; }
  // Memory alignment O_DIRECT needs for data buffers (statx's dio_mem_align, else the device's
  // logical block size); 1 when buffered. Becomes BdevProperties::required_alignment.
  uint32_t buffer_alignment() const { return buffer_alignment_; }
  // UNMAP: fallocate(PUNCH_HOLE|KEEP_SIZE) works on a file (probed at open), or the block
  // device discards (BLKDISCARD; its queue's discard_max_bytes > 0). Never when readonly.
  bool supports_unmap() const { return supports_unmap_; }
  // WRITE_ZEROES: fallocate(ZERO_RANGE) works on a file (probed at open); BLKZEROOUT on a block
  // device (the kernel emulates it where the device cannot). Never when readonly.
  bool supports_write_zeroes() const { return supports_write_zeroes_; }

 private:
  FileTarget() = default;

  int fd_ = -1;
  std::string filename_;
  bool is_block_device_ = false;
  uint32_t block_size_ = 0;
  uint64_t block_count_ = 0;
  bool readonly_ = false;
  bool direct_ = false;
  std::optional<bool> direct_requested_;
  uint32_t buffer_alignment_ = 1;
  bool supports_unmap_ = false;
  bool supports_write_zeroes_ = false;
};

}  // namespace pollux
