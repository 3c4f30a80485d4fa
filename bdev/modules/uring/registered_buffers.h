// One io_uring channel's registered ("fixed") buffers: the published I/O regions
// (pollux/env/io_regions.h: every IoMemory) that this ring has seen a request use, registered
// in its buffer table, so that a read or write into one goes as READ_FIXED / WRITE_FIXED. The
// kernel then neither looks up and pins the buffer's pages per request nor unpins and
// dirty-checks them at completion.
//
// Lazily, per piece: a region is cut into pieces of at most 1 GiB (the kernel's limit per
// buffer), and a piece is registered the first time a request's buffer falls in it (that
// request pays the pinning, once per ring). Regions that no request uses (a malloc bdev's
// disk) are never pinned. The table is sparse (Linux 5.19+) with kSlots entries; when the
// regions change (their generation moved) the next lookup drops the slots of pieces that are
// gone (the kernel keeps a replaced buffer alive until the requests using it complete) before
// it answers, so a slot never stands for memory that has been returned. A kernel that refuses
// the table or a piece (older than 5.19, or RLIMIT_MEMLOCK when not privileged) leaves those
// requests with plain reads and writes.
//
// Everything runs on the ring's thread. The data path costs an atomic load and a search of a
// few pieces; a change of the regions costs a snapshot (a mutex, an allocation) and a syscall
// per dropped slot, rare control events.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pollux/env/io_regions.h"

namespace pollux {

class RegisteredBuffers {
 public:
  static constexpr unsigned kSlots = 256;
  static constexpr uint64_t kMaxPiece = 1ull << 30;

  // After the ring is set up. Returns whether the ring took the (sparse) table; if not, Find
  // always answers -1.
  bool Init(io_uring& ring) noexcept;

  // The slot of the registered piece holding [addr, addr + len) whole, registering that piece
  // first if it is a published one not registered yet; -1 when there is none.
  int Find(io_uring& ring, const void* addr, size_t len) noexcept {
    if (!ready_) return -1;
    if (IoRegionsGeneration() != generation_) [[unlikely]]
      Sync(ring);
    const auto begin = reinterpret_cast<uintptr_t>(addr);
    for (Piece& piece : pieces_) {
      if (begin < piece.begin) break;  // sorted: no later piece starts at or before addr
      if (begin + len > piece.end) continue;
      if (piece.slot >= 0) return piece.slot;
      return piece.slot == kUnregistered ? Register(ring, piece) : -1;
    }
    return -1;
  }

  // Pieces registered now (for tests and logs).
  unsigned registered() const { return kSlots - static_cast<unsigned>(free_slots_.size()); }

 private:
  static constexpr int kUnregistered = -1;  // not tried yet
  static constexpr int kRefused = -2;       // the kernel said no (or no slot left)

  struct Piece {
    uintptr_t begin;
    uintptr_t end;
    int slot;
  };

  void Sync(io_uring& ring) noexcept;
  int Register(io_uring& ring, Piece& piece) noexcept;
  // Empties a slot of the kernel's table and frees it.
  void Drop(io_uring& ring, int slot) noexcept;

  std::vector<Piece> pieces_;  // the published regions' pieces, sorted by address
  std::vector<int> free_slots_;
  uint64_t generation_ = 0;
  bool ready_ = false;
  bool refusal_logged_ = false;
};

}  // namespace pollux
