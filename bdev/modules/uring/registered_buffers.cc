#include "registered_buffers.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "pollux/env/log.h"

namespace pollux {

bool RegisteredBuffers::Init(io_uring& ring) noexcept {
  if (io_uring_register_buffers_sparse(&ring, kSlots) != 0) return false;
  free_slots_.reserve(kSlots);
  for (int slot = kSlots - 1; slot >= 0; --slot) free_slots_.push_back(slot);
  ready_ = true;
  Sync(ring);
  return true;
}

void RegisteredBuffers::Sync(io_uring& ring) noexcept {
  std::vector<IoRegionSpan> spans = IoRegionsSnapshot(generation_);
  std::vector<Piece> pieces;
  for (const IoRegionSpan& span : spans) {
    for (uintptr_t b = span.begin; b < span.end; b += kMaxPiece) {
      pieces.push_back({b, std::min<uintptr_t>(b + kMaxPiece, span.end), kUnregistered});
    }
  }
  // Pieces that are still there keep their slot; the slots of the others are emptied. Both
  // lists are sorted by address.
  auto kept = pieces.begin();
  for (const Piece& old : pieces_) {
    while (kept != pieces.end() && kept->begin < old.begin) ++kept;
    if (kept != pieces.end() && kept->begin == old.begin && kept->end == old.end) {
      kept->slot = old.slot;
    } else if (old.slot >= 0) {
      Drop(ring, old.slot);
    }
  }
  pieces_ = std::move(pieces);
}

int RegisteredBuffers::Register(io_uring& ring, Piece& piece) noexcept {
  if (free_slots_.empty()) {
    piece.slot = kRefused;
    return -1;
  }
  const int slot = free_slots_.back();
  iovec iov{reinterpret_cast<void*>(piece.begin), piece.end - piece.begin};
  __u64 tag = 0;
  int ret = io_uring_register_buffers_update_tag(&ring, static_cast<unsigned>(slot), &iov, &tag, 1);
  if (ret < 0) {
    piece.slot = kRefused;
    if (!refusal_logged_) {
      refusal_logged_ = true;
      PX_LOG(kInfo, "uring",
             "cannot register %llu bytes of I/O memory with the ring (%s): requests into it go "
             "as plain reads and writes",
             static_cast<unsigned long long>(iov.iov_len), std::strerror(-ret));
    }
    return -1;
  }
  free_slots_.pop_back();
  piece.slot = slot;
  return slot;
}

void RegisteredBuffers::Drop(io_uring& ring, int slot) noexcept {
  iovec empty{nullptr, 0};
  __u64 tag = 0;
  // Cannot fail for a slot in range with an empty buffer; should it, the slot is simply not
  // reused (it is no longer in pieces_, so no request names it).
  if (io_uring_register_buffers_update_tag(&ring, static_cast<unsigned>(slot), &empty, &tag, 1) >=
      0) {
    free_slots_.push_back(slot);
  }
}

}  // namespace pollux
