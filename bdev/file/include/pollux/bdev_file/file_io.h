// Synchronous execution of block I/O against a FileTarget: preadv/pwritev with short-transfer
// loops, fdatasync, fallocate (PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE) on files, BLKDISCARD /
// BLKZEROOUT on block devices. Used by the adaptive depth-1 inline path (on the reactor), by the
// thread pool's workers, and by engines that offload what their kernel interface cannot do
// asynchronously (aio's FLUSH), or that finish a short asynchronous transfer.
//
// Every function blocks, allocates nothing, touches no shared state, and is callable on any
// thread. Each returns 0 or a positive errno; it never throws or aborts on a kernel error.
#pragma once

#include <sys/uio.h>

#include <cerrno>
#include <cstdint>

#include "pollux/bdev/bdev_io.h"

namespace pollux {

class FileTarget;

// A read that finds the end of the file before its last byte (the file was truncated while
// open) fails with this errno.
inline constexpr int kFileShortReadErrno = EIO;

// Executes `io` (READ, WRITE, FLUSH, UNMAP, WRITE_ZEROES) from start to end; does not complete
// it. RESET and anything else: EOPNOTSUPP. Offsets and lengths come from the BdevIo in blocks
// of target.block_size().
int ExecuteFileIo(const FileTarget& target, BdevIo& io) noexcept;

// Continues a READ or WRITE of which the first `done_bytes` were already transferred (a short
// asynchronous completion), to its end.
int ContinueFileIo(const FileTarget& target, BdevIo& io, uint64_t done_bytes) noexcept;

// The pieces, in bytes (offsets and lengths multiples of the block size).
// Reads / writes all of `iov` at `offset`, looping over short transfers; `skip_bytes` of the
// iovecs are skipped first (already transferred).
int FileReadv(const FileTarget& target, const iovec* iov, int iovcnt, uint64_t offset,
              uint64_t skip_bytes = 0) noexcept;
int FileWritev(const FileTarget& target, const iovec* iov, int iovcnt, uint64_t offset,
               uint64_t skip_bytes = 0) noexcept;
// fdatasync (also on a block device: the kernel sends a cache flush).
int FileFlush(const FileTarget& target) noexcept;
// UNMAP: fallocate(PUNCH_HOLE|KEEP_SIZE), or BLKDISCARD on a block device.
int FileUnmap(const FileTarget& target, uint64_t offset, uint64_t length) noexcept;
// WRITE_ZEROES: fallocate(ZERO_RANGE|KEEP_SIZE), or BLKZEROOUT on a block device.
int FileWriteZeroes(const FileTarget& target, uint64_t offset, uint64_t length) noexcept;

}  // namespace pollux
