// The decoding of one vhost-user-blk request (virtio 1.2, 5.2.6): a chain the ring popped, a
// 16-byte header, data and a status byte in the guest's buffers, becomes a plan: finish at once
// with a status, answer GET_ID, or submit one bdev I/O over iovecs that point into the guest's
// buffers. The queue (vhost_blk_queue.cc) pops, decodes and carries the plan out; the fuzz
// target vhost_blk_request (test/fuzz/vhost_blk_request_fuzz.cc) checks the decoding alone.
//
// Pure: it reads the header and a discard/write-zeroes segment from the device-readable part,
// writes nothing to the guest, allocates nothing, and keeps no state. Inline: it runs once per
// request on the queue's hot path.
//
// Threads: any (it touches only its arguments). Private header.
#pragma once

#include <linux/virtio_blk.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "device_ring.h"
#include "pollux/bdev/bdev_io.h"
#include "vhost_blk_queue.h"

namespace pollux {

inline constexpr uint32_t kBlkHeaderBytes = sizeof(virtio_blk_outhdr);                 // 16
inline constexpr uint32_t kBlkSectorBytes = 512;                                       // 5.2.6
inline constexpr uint32_t kBlkSegmentBytes = sizeof(virtio_blk_discard_write_zeroes);  // 16

// What the queue does with a request.
enum class BlkRequestAction : uint8_t {
  kSubmit,       // a bdev I/O: io_type over `bytes` from `sector`, data in data_out[0, iovcnt)
  kFinish,       // complete it now with `status` (an error: nothing is written but the status)
  kGetId,        // write the device's id into data_out[0, iovcnt) (WriteBlkId), then `status` OK
  kBrokenChain,  // no device-writable byte for the status: nothing can be answered; the guest
                 // broke the ring
};

// DecodeBlkRequest's answer. Fields not named for an action are left as they are here.
struct BlkRequestPlan {
  BlkRequestAction action = BlkRequestAction::kFinish;
  uint8_t status = VIRTIO_BLK_S_IOERR;  // kFinish; kGetId: VIRTIO_BLK_S_OK; kSubmit: unused
  IoType io_type = IoType::kRead;       // kSubmit
  int iovcnt = 0;                       // kSubmit (kRead, kWrite; others 0), kGetId
  uint32_t used_len = 0;                // kSubmit kRead: the data's length; kGetId: id bytes
                                        // written. Not counting the status byte.
  uint8_t* status_byte = nullptr;       // the last device-writable byte (all but kBrokenChain)
  uint64_t sector = 0;                  // kSubmit: first 512-byte sector (kFlush: 0)
  uint64_t bytes = 0;                   // kSubmit: a whole number of blocks (kFlush: 0)
};

// CopyRange's general case: any cut of the bytes.
inline int CopyRangeSlow(const iovec* src, int count, uint64_t skip_front, uint64_t drop_back,
                         iovec* dst) noexcept {
  uint64_t total = 0;
  for (int i = 0; i < count; ++i) total += src[i].iov_len;
  uint64_t end = total - drop_back;  // callers guarantee skip_front + drop_back <= total
  uint64_t pos = 0;
  int n = 0;
  for (int i = 0; i < count && pos < end; ++i) {
    uint64_t start = pos;
    uint64_t stop = std::min<uint64_t>(pos + src[i].iov_len, end);
    pos += src[i].iov_len;
    if (stop <= skip_front) continue;
    uint64_t from = std::max<uint64_t>(start, skip_front);
    dst[n].iov_base = static_cast<uint8_t*>(src[i].iov_base) + (from - start);
    dst[n].iov_len = stop - from;
    ++n;
  }
  return n;
}

// Copies the bytes [skip_front, total - drop_back) of src[0, count) as iovecs into dst; returns
// how many it wrote.
inline int CopyRange(const iovec* src, int count, uint64_t skip_front, uint64_t drop_back,
                     iovec* dst) noexcept {
  // What Linux sends: the header and the status byte in buffers of their own (a few iovecs,
  // copied one by one: cheaper than a call to memcpy).
  if (skip_front == 0 && drop_back == 1 && count > 0 && src[count - 1].iov_len == 1) {
    if (count == 2) {  // one data buffer: most reads
      dst[0] = src[0];
      return 1;
    }
    for (int i = 0; i < count - 1; ++i) dst[i] = src[i];
    return count - 1;
  }
  if (skip_front != 0 && drop_back == 0 && count > 0 && src[0].iov_len == skip_front) {
    for (int i = 1; i < count; ++i) dst[i - 1] = src[i];
    return count - 1;
  }
  return CopyRangeSlow(src, count, skip_front, drop_back, dst);
}

// Gathers the bytes [skip, skip + len) of src[0, count) into out (the guest may split
// anything); callers guarantee that src holds them.
inline void GatherBytes(const iovec* src, int count, uint64_t skip, void* out,
                        size_t len) noexcept {
  auto* dst = static_cast<uint8_t*>(out);
  for (int i = 0; i < count && len > 0; ++i) {
    if (skip >= src[i].iov_len) {
      skip -= src[i].iov_len;
      continue;
    }
    size_t n = std::min<uint64_t>(len, src[i].iov_len - skip);
    std::memcpy(dst, static_cast<const uint8_t*>(src[i].iov_base) + skip, n);
    skip = 0;
    dst += n;
    len -= n;
  }
}

// A non-empty, block-aligned range inside the device.
inline bool CheckBlkRange(const VhostBlkDevice& device, uint64_t sector, uint64_t bytes) noexcept {
  const uint64_t block_mask = device.block_size - 1;
  if (bytes == 0 || (bytes & block_mask) != 0) return false;
  // The product may wrap: its low bits are right all the same, and the next line bounds sector.
  if (((sector * kBlkSectorBytes) & block_mask) != 0) return false;
  return sector <= device.capacity_sectors &&
         bytes / kBlkSectorBytes <= device.capacity_sectors - sector;
}

// Writes `len` bytes of the device's id (GET_ID) into data[0, count), which holds at least as
// many (DecodeBlkRequest's kGetId).
inline void WriteBlkId(const iovec* data, int count, const char* id, size_t len) noexcept {
  for (int i = 0; i < count && len > 0; ++i) {
    size_t k = std::min(len, data[i].iov_len);
    std::memcpy(data[i].iov_base, id, k);
    id += k;
    len -= k;
  }
}

// DISCARD and WRITE_ZEROES: a list of {sector, num_sectors, flags} segments after the header,
// `payload` bytes of it. VIRTIO_BLK_S_OK with the segment to submit in *segment, or the status
// to finish with. Out of line as the compiler likes (the plan stays in registers).
inline uint8_t DecodeBlkRangeRequest(const iovec* iov, int readable, uint64_t payload, bool discard,
                                     const VhostBlkDevice& device,
                                     virtio_blk_discard_write_zeroes* segment) noexcept {
  if (!(discard ? device.discard : device.write_zeroes)) return VIRTIO_BLK_S_UNSUPP;
  const uint32_t max_segments =
      discard ? device.max_discard_segments : device.max_write_zeroes_segments;
  const uint32_t max_sectors =
      discard ? device.max_discard_sectors : device.max_write_zeroes_sectors;
  if (device.read_only || payload == 0 || payload % kBlkSegmentBytes != 0 ||
      payload / kBlkSegmentBytes > max_segments) {
    return VIRTIO_BLK_S_IOERR;
  }
  // One segment: the most a device advertises (VhostBlkDevice; more would need each one
  // submitted). Read it from behind the header.
  GatherBytes(iov, readable, kBlkHeaderBytes, segment, sizeof(*segment));
  constexpr uint32_t kUnmap = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
  // virtio 1.2, 5.2.6.2: any unknown flag is UNSUPP, as QEMU answers (found by the fuzzer,
  // corpus/vhost_blk_request/finding-unknown-flag).
  if ((segment->flags & ~kUnmap) != 0) return VIRTIO_BLK_S_UNSUPP;
  // virtio 1.2, 5.2.6.2: the unmap flag is for write-zeroes only.
  if (discard && (segment->flags & kUnmap) != 0) return VIRTIO_BLK_S_UNSUPP;
  if (segment->num_sectors == 0 || segment->num_sectors > max_sectors ||
      !CheckBlkRange(device, segment->sector, uint64_t{segment->num_sectors} * kBlkSectorBytes)) {
    return VIRTIO_BLK_S_IOERR;
  }
  return VIRTIO_BLK_S_OK;
}

// Decodes the request in `chain`, whose buffers are iov[0, chain.iov_count) as the ring popped
// them: device-readable ones first, none of length 0, readable_bytes and writable_bytes their
// sums. Data iovecs go to data_out, which has room for chain.iov_count of them. Reads only the
// device-readable part, and of it only the header and (discard, write zeroes) the first segment.
[[gnu::always_inline]] inline BlkRequestPlan DecodeBlkRequest(const DescriptorChain& chain,
                                                              const iovec* iov,
                                                              const VhostBlkDevice& device,
                                                              iovec* data_out) noexcept {
  BlkRequestPlan plan;
  if (chain.writable_bytes == 0) {
    plan.action = BlkRequestAction::kBrokenChain;
    return plan;
  }
  // 5.2.6: the status is the last byte the device writes.
  const iovec& last = iov[chain.iov_count - 1];
  plan.status_byte = static_cast<uint8_t*>(last.iov_base) + last.iov_len - 1;
  const int readable = chain.readable_count;
  const int writable = chain.iov_count - readable;
  const iovec* in = iov + readable;  // device-writable part, status byte last
  if (chain.readable_bytes < kBlkHeaderBytes) return plan;  // IOERR
  virtio_blk_outhdr header;
  if (iov[0].iov_len >= kBlkHeaderBytes) {
    std::memcpy(&header, iov[0].iov_base, kBlkHeaderBytes);
  } else {
    GatherBytes(iov, readable, 0, &header, kBlkHeaderBytes);
  }
  const uint64_t out_data = chain.readable_bytes - kBlkHeaderBytes;  // after the header
  const uint64_t in_data = chain.writable_bytes - 1;                 // before the status byte
  switch (header.type) {
    case VIRTIO_BLK_T_IN:
      if (out_data != 0 || !CheckBlkRange(device, header.sector, in_data)) return plan;
      plan.action = BlkRequestAction::kSubmit;
      plan.io_type = IoType::kRead;
      plan.iovcnt = CopyRange(in, writable, 0, 1, data_out);
      plan.used_len = static_cast<uint32_t>(in_data);
      plan.sector = header.sector;
      plan.bytes = in_data;
      return plan;
    case VIRTIO_BLK_T_OUT:
      if (in_data != 0 || device.read_only || !CheckBlkRange(device, header.sector, out_data)) {
        return plan;
      }
      plan.action = BlkRequestAction::kSubmit;
      plan.io_type = IoType::kWrite;
      plan.iovcnt = CopyRange(iov, readable, kBlkHeaderBytes, 0, data_out);
      plan.sector = header.sector;
      plan.bytes = out_data;
      return plan;
    case VIRTIO_BLK_T_FLUSH:
      plan.action = BlkRequestAction::kSubmit;
      plan.io_type = IoType::kFlush;
      return plan;
    case VIRTIO_BLK_T_GET_ID:
      if (in_data == 0) return plan;
      plan.action = BlkRequestAction::kGetId;
      plan.status = VIRTIO_BLK_S_OK;
      plan.iovcnt = CopyRange(in, writable, 0, 1, data_out);
      plan.used_len = static_cast<uint32_t>(std::min<uint64_t>(in_data, sizeof(device.id)));
      return plan;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const bool discard = header.type == VIRTIO_BLK_T_DISCARD;
      virtio_blk_discard_write_zeroes segment;
      plan.status = DecodeBlkRangeRequest(iov, readable, out_data, discard, device, &segment);
      if (plan.status != VIRTIO_BLK_S_OK) return plan;
      plan.action = BlkRequestAction::kSubmit;
      plan.io_type = discard ? IoType::kUnmap : IoType::kWriteZeroes;
      plan.sector = segment.sector;
      plan.bytes = uint64_t{segment.num_sectors} * kBlkSectorBytes;
      return plan;
    }
    default:
      plan.status = VIRTIO_BLK_S_UNSUPP;
      return plan;
  }
}

}  // namespace pollux
