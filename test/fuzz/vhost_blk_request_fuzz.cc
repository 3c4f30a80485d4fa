// libFuzzer target: the vhost-user-blk target's request decoding (virtio/vhost_blk_request.h),
// the code that reads a virtio-blk request out of the guest's buffers once the ring popped
// its chain (the ring itself is the virtqueue target's). The input describes a device and a
// request as a guest lays it out: readable then writable buffers of any lengths (the header
// split anywhere, the status byte alone or not, zero-length buffers), the header and the
// discard/write-zeroes segments. Each buffer is a heap block of its own, and the iovecs are
// what Pop makes of them (no iovec for a zero-length buffer, at most kVhostBlkTaskIovecs).
//
// Checked on every input:
//   - while DecodeBlkRequest runs, the writable buffers and every readable byte after the
//     header (after the first segment for DISCARD and WRITE_ZEROES) are poisoned: under ASan a
//     read or write of them is a report, as is any byte outside the buffers; the bytes it may
//     read are unchanged afterwards, and data_out is written only up to the count returned;
//   - the plan against a second decoding written from virtio 1.2, 5.2.6 and the guest's
//     layout alone (Reference): action, status, I/O type, sector and bytes (recomputed in
//     128-bit arithmetic), used length, the status byte's address, and the data iovecs slice
//     for slice;
//   - on their own: data iovecs inside one buffer each, of the right direction (a READ's and
//     GET_ID's in writable buffers, before the status byte; a WRITE's in readable ones, after
//     the header), totalling the byte count; anything submitted non-empty, block-aligned and
//     inside the capacity; nothing that writes submitted to a read-only device;
//   - GET_ID: WriteBlkId writes the id's first used_len bytes into the data and nothing else.
//
// Findings fixed keep their inputs in the corpus as finding-*.
//
// Input (little-endian; missing bytes read as 0):
//   device: flags u8 (bit 0 4096-byte blocks, else 512; bit 1 read-only; bit 2 discard; bit 3
//     write zeroes; bit 4 capacity counted down from the largest a u64 of bytes holds),
//     capacity u32 (blocks), max_discard_sectors u32, max_write_zeroes_sectors u32,
//     segments u8 (max_discard_segments b & 1, max_write_zeroes_segments (b >> 1) & 1: a device
//     advertises at most one)
//   header: type u8 (bit 7: a u32 type follows; else kTypes[b % size]), reserved u32, a sector
//   segments: n u8, then n % 5 times: a sector, num_sectors (mode u8, v u32), flags (mode u8,
//     v u32)
//   data: u16 (DataBytes), filler u8 (the readable bytes after the segments, to kFilledBytes)
//   readable part, then writable part: mode u8; bit 0: auto, then delta i8 and cuts u8 and
//     cuts % 17 times u16: the part's expected length (readable: header, segments, a WRITE's
//     data; writable: a READ's or GET_ID's data, the status byte) plus delta, cut at those
//     offsets (a repeated cut makes a zero-length buffer); else count u8 and count % (1 +
//     kVhostBlkTaskIovecs) lengths u16 (PieceBytes)
//   a sector: mode u8, v u64 (SectorOf)
// test/fuzz/make_seeds_vhost_blk_request.py writes inputs in this format.
#include <linux/virtio_blk.h>
#include <sanitizer/asan_interface.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include "fuzz_input.h"
#include "vhost_blk_limits.h"
#include "vhost_blk_request.h"

namespace pollux::fuzz {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "vhost_blk_request_fuzz: %s\n", what);
  std::abort();
}
void Require(bool ok, const char* what) {
  if (!ok) Fail(what);
}

using u128 = unsigned __int128;

constexpr uint32_t kTypes[] = {
    VIRTIO_BLK_T_IN,           VIRTIO_BLK_T_OUT,          VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID,       VIRTIO_BLK_T_DISCARD,      VIRTIO_BLK_T_WRITE_ZEROES,
    10 /* GET_LIFETIME */,     VIRTIO_BLK_T_SECURE_ERASE, VIRTIO_BLK_T_SCSI_CMD,
    5 /* FLUSH_OUT, legacy */, 15 /* ZONE_APPEND */,      VIRTIO_BLK_T_IN | VIRTIO_BLK_T_BARRIER,
};
constexpr size_t kMaxSegments = 4;
// Bytes at the front of the readable part the input fills: the header and the segments.
constexpr uint64_t kFilledBytes = kBlkHeaderBytes + kMaxSegments * kBlkSegmentBytes;
// Bounds the memory one input takes.
constexpr uint64_t kMaxPartBytes = 1 << 20;
constexpr char kDeviceId[VIRTIO_BLK_ID_BYTES] = {'f', 'u', 'z', 'z', '-', 'i', 'd', '-', '0', '1',
                                                 '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b'};
constexpr uint8_t kUnwritten = 0xa5;  // the writable bytes before WriteBlkId

// A data length: multiples of 512 and 4096 mostly, any length sometimes.
uint64_t DataBytes(uint16_t v) {
  switch (v >> 14) {
    case 0:
      return uint64_t{v & 0xffu} * 512;
    case 1:
      return uint64_t{v & 0x3fu} * 4096;
    case 2:
      return v & 0x3fffu;
    default:
      return 0;
  }
}

// A buffer's length: small ones (1, 15, 16, 17 bytes: the header and status cuts), sectors,
// pages, anything.
uint64_t PieceBytes(uint16_t v) {
  switch (v >> 14) {
    case 0:
      return v & 0xffu;
    case 1:
      return uint64_t{(v & 0xffu) + 1} * 512;
    case 2:
      return v & 0x3fffu;
    default:
      return uint64_t{(v & 0xfu) + 1} * 4096;
  }
}

struct Device {
  VhostBlkDevice d;
  uint64_t capacity_bytes = 0;
};

// Sectors near 0, near the capacity (below and past it, wrapping), and any.
uint64_t SectorOf(FuzzInput& in, const Device& device) {
  const uint8_t mode = in.U8();
  const uint64_t v = in.U64();
  const uint64_t capacity = device.d.capacity_sectors;
  switch (mode % 4) {
    case 0:
      return v % 4096;
    case 1:
      return capacity - v % 4096;
    case 2:
      return capacity + v % 64;
    default:
      return v;
  }
}

Device ReadDevice(FuzzInput& in) {
  Device device;
  VhostBlkDevice& d = device.d;
  const uint8_t flags = in.U8();
  d.block_size = (flags & 1) != 0 ? 4096 : 512;
  d.read_only = (flags & 2) != 0;
  d.discard = (flags & 4) != 0;
  d.write_zeroes = (flags & 8) != 0;
  const uint32_t blocks = in.U32();
  // A bdev's size in bytes is a u64: the largest device has UINT64_MAX / block_size blocks.
  const uint64_t max_blocks = UINT64_MAX / d.block_size;
  const uint64_t count = (flags & 16) != 0 ? max_blocks - blocks : blocks;
  d.capacity_sectors = count * (d.block_size / kBlkSectorBytes);
  device.capacity_bytes = count * d.block_size;
  d.max_discard_sectors = in.U32();
  d.max_write_zeroes_sectors = in.U32();
  const uint8_t segments = in.U8();
  d.max_discard_segments = segments & 1;
  d.max_write_zeroes_segments = (segments >> 1) & 1;
  std::memcpy(d.id, kDeviceId, sizeof(d.id));
  return device;
}

// The request as the guest wrote it.
struct Request {
  uint32_t type = 0;
  uint64_t sector = 0;
  size_t segments = 0;
  uint64_t data_bytes = 0;
  uint8_t front[kFilledBytes] = {};  // header, segments, filler
};

Request ReadRequest(FuzzInput& in, const Device& device) {
  Request r;
  const uint8_t type = in.U8();
  r.type = (type & 0x80) != 0 ? in.U32() : kTypes[type % std::size(kTypes)];
  virtio_blk_outhdr header{r.type, in.U32(), 0};
  r.sector = SectorOf(in, device);
  header.sector = r.sector;
  std::memcpy(r.front, &header, sizeof(header));
  r.segments = in.U8() % (kMaxSegments + 1);
  for (size_t i = 0; i < r.segments; ++i) {
    virtio_blk_discard_write_zeroes s{};
    s.sector = SectorOf(in, device);
    const uint8_t sectors_mode = in.U8();
    const uint32_t sectors = in.U32();
    s.num_sectors = sectors_mode % 3 == 0 ? sectors % 64 : sectors_mode % 3 == 1 ? sectors : 8;
    const uint8_t flags_mode = in.U8();
    const uint32_t flags = in.U32();
    s.flags = flags_mode % 3 == 0   ? 0
              : flags_mode % 3 == 1 ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
                                    : flags;
    std::memcpy(r.front + kBlkHeaderBytes + i * kBlkSegmentBytes, &s, sizeof(s));
  }
  r.data_bytes = DataBytes(in.U16());
  const uint8_t filler = in.U8();
  std::fill(r.front + kBlkHeaderBytes + r.segments * kBlkSegmentBytes, std::end(r.front), filler);
  return r;
}

// The guest's buffers of one direction, each a heap block of its exact length.
struct Part {
  std::vector<std::unique_ptr<uint8_t[]>> blocks;
  std::vector<iovec> pieces;  // as Pop gives them: none of length 0
  uint64_t bytes = 0;
};

// Appends a buffer of `len` bytes, unless the chain's iovecs or the part's bytes are used up
// (Pop refuses a chain that needs more iovecs than it holds: the input just ends the part).
void AddPiece(Part& part, uint64_t len, int* iovecs) {
  if (len == 0) return;  // a zero-length buffer takes no iovec
  if (*iovecs == kVhostBlkTaskIovecs || part.bytes + len > kMaxPartBytes) return;
  part.blocks.emplace_back(new uint8_t[len]);
  part.pieces.push_back({part.blocks.back().get(), len});
  part.bytes += len;
  ++*iovecs;
}

Part ReadPart(FuzzInput& in, uint64_t expected, int* iovecs) {
  Part part;
  const uint8_t mode = in.U8();
  if ((mode & 1) != 0) {
    const auto delta = static_cast<int8_t>(in.U8());
    const uint64_t total = std::min<uint64_t>(
        delta < 0 && uint64_t(-delta) > expected ? 0 : expected + delta, kMaxPartBytes);
    std::vector<uint64_t> cuts;
    const size_t n = in.U8() % 17;
    for (size_t i = 0; i < n; ++i) cuts.push_back(in.U16() % (total + 1));
    std::sort(cuts.begin(), cuts.end());
    uint64_t at = 0;
    for (uint64_t cut : cuts) {
      AddPiece(part, cut - at, iovecs);
      at = cut;
    }
    AddPiece(part, total - at, iovecs);
  } else {
    const size_t n = in.U8() % (kVhostBlkTaskIovecs + 1);
    for (size_t i = 0; i < n; ++i) AddPiece(part, PieceBytes(in.U16()), iovecs);
  }
  return part;
}

// Bytes [from, to) of a part as the iovecs that cover them, in order, none empty.
std::vector<iovec> Slice(const Part& part, uint64_t from, uint64_t to) {
  std::vector<iovec> out;
  uint64_t at = 0;
  for (const iovec& p : part.pieces) {
    const uint64_t start = std::max(at, from);
    const uint64_t stop = std::min(at + p.iov_len, to);
    if (start < stop)
      out.push_back({static_cast<uint8_t*>(p.iov_base) + (start - at), stop - start});
    at += p.iov_len;
  }
  return out;
}

// Poisons (or unpoisons) the bytes of a part from `from` on. No-ops without ASan.
void Poison(const Part& part, uint64_t from, bool poison) {
  uint64_t at = 0;
  for (const iovec& p : part.pieces) {
    if (at + p.iov_len > from) {
      const uint64_t skip = from > at ? from - at : 0;
      uint8_t* base = static_cast<uint8_t*>(p.iov_base) + skip;
      if (poison) {
        ASAN_POISON_MEMORY_REGION(base, p.iov_len - skip);
      } else {
        ASAN_UNPOISON_MEMORY_REGION(base, p.iov_len - skip);
      }
    }
    at += p.iov_len;
  }
}

bool IsRangeRequest(uint32_t type) {
  return type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES;
}

// What a request must become, worked out from the spec and the layout the guest chose, never
// from the iovecs the decoder saw.
struct Expected {
  BlkRequestAction action = BlkRequestAction::kFinish;
  uint8_t status = VIRTIO_BLK_S_IOERR;
  IoType io_type = IoType::kRead;
  uint64_t sector = 0;
  uint64_t bytes = 0;
  uint32_t used_len = 0;
  const Part* data_part = nullptr;  // the data: bytes [data_from, data_to) of this part
  uint64_t data_from = 0;
  uint64_t data_to = 0;
};

// A non-empty, block-aligned range inside the device, in arithmetic that cannot wrap.
bool RangeInside(const Device& device, uint64_t sector, uint64_t bytes) {
  const uint32_t block = device.d.block_size;
  const u128 start = u128{sector} * kBlkSectorBytes;
  return bytes != 0 && bytes % block == 0 && start % block == 0 &&
         start + bytes <= device.capacity_bytes;
}

Expected Reference(const Device& device, const Request& r, const Part& readable,
                   const Part& writable) {
  Expected e;
  const VhostBlkDevice& d = device.d;
  if (writable.bytes == 0) {  // no status byte
    e.action = BlkRequestAction::kBrokenChain;
    return e;
  }
  if (readable.bytes < kBlkHeaderBytes) return e;  // no whole header: IOERR
  const uint64_t out = readable.bytes - kBlkHeaderBytes;
  const uint64_t in = writable.bytes - 1;
  auto submit = [&](IoType type, uint64_t sector, uint64_t bytes) {
    e.action = BlkRequestAction::kSubmit;
    e.io_type = type;
    e.sector = sector;
    e.bytes = bytes;
  };
  switch (r.type) {
    case VIRTIO_BLK_T_IN:
      // Data only after the header's buffer, the device writes it all.
      if (out == 0 && RangeInside(device, r.sector, in)) {
        submit(IoType::kRead, r.sector, in);
        e.used_len = static_cast<uint32_t>(in);
        e.data_part = &writable;
        e.data_to = in;
      }
      return e;
    case VIRTIO_BLK_T_OUT:
      // 5.2.6.2: IOERR for a write to a read-only device.
      if (in == 0 && !d.read_only && RangeInside(device, r.sector, out)) {
        submit(IoType::kWrite, r.sector, out);
        e.data_part = &readable;
        e.data_from = kBlkHeaderBytes;
        e.data_to = readable.bytes;
      }
      return e;
    case VIRTIO_BLK_T_FLUSH:
      submit(IoType::kFlush, 0, 0);
      return e;
    case VIRTIO_BLK_T_GET_ID:
      if (in != 0) {
        e.action = BlkRequestAction::kGetId;
        e.status = VIRTIO_BLK_S_OK;
        e.used_len = static_cast<uint32_t>(std::min<uint64_t>(in, VIRTIO_BLK_ID_BYTES));
        e.data_part = &writable;
        e.data_to = in;
      }
      return e;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const bool discard = r.type == VIRTIO_BLK_T_DISCARD;
      if (!(discard ? d.discard : d.write_zeroes)) {
        e.status = VIRTIO_BLK_S_UNSUPP;
        return e;
      }
      const uint32_t max_segments = discard ? d.max_discard_segments : d.max_write_zeroes_segments;
      if (d.read_only || out == 0 || out % kBlkSegmentBytes != 0 ||
          out / kBlkSegmentBytes > max_segments) {
        return e;
      }
      virtio_blk_discard_write_zeroes s;
      std::memcpy(&s, r.front + kBlkHeaderBytes, sizeof(s));
      if ((s.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0) {
        // 5.2.6.2: "The device MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard,
        // secure erase and write zeroes commands if any unknown flag is set."
        e.status = VIRTIO_BLK_S_UNSUPP;
        return e;
      }
      if (discard && (s.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0) {
        e.status = VIRTIO_BLK_S_UNSUPP;  // 5.2.6.2: unmap is for write zeroes only
        return e;
      }
      const uint32_t max_sectors = discard ? d.max_discard_sectors : d.max_write_zeroes_sectors;
      const uint64_t bytes = uint64_t{s.num_sectors} * kBlkSectorBytes;
      if (s.num_sectors <= max_sectors && RangeInside(device, s.sector, bytes)) {
        submit(discard ? IoType::kUnmap : IoType::kWriteZeroes, s.sector, bytes);
      }
      return e;
    }
    default:
      e.status = VIRTIO_BLK_S_UNSUPP;
      return e;
  }
}

bool Inside(const iovec& v, const iovec& buffer) {
  const auto base = reinterpret_cast<uintptr_t>(v.iov_base);
  const auto start = reinterpret_cast<uintptr_t>(buffer.iov_base);
  return v.iov_len != 0 && base >= start && base - start < buffer.iov_len &&
         v.iov_len <= buffer.iov_len - (base - start);
}

// Where a data iovec lies: inside one buffer of `part`, and inside bytes [from, to) of it.
bool InsidePart(const iovec& v, const Part& part, uint64_t from, uint64_t to) {
  uint64_t at = 0;
  for (const iovec& p : part.pieces) {
    if (Inside(v, p)) {
      const uint64_t offset =
          at + (static_cast<uint8_t*>(v.iov_base) - static_cast<uint8_t*>(p.iov_base));
      return offset >= from && offset + v.iov_len <= to;
    }
    at += p.iov_len;
  }
  return false;
}

// The checks that hold whatever the reference says.
void CheckInvariants(const BlkRequestPlan& plan, const Device& device, const Part& readable,
                     const Part& writable, const iovec* data) {
  if (plan.action == BlkRequestAction::kBrokenChain) {
    Require(writable.bytes == 0, "a chain with a status byte refused");
    return;
  }
  const iovec& last = writable.pieces.back();
  Require(plan.status_byte == static_cast<uint8_t*>(last.iov_base) + last.iov_len - 1,
          "the status byte is not the last writable byte");
  uint64_t total = 0;
  for (int i = 0; i < plan.iovcnt; ++i) total += data[i].iov_len;
  switch (plan.action) {
    case BlkRequestAction::kFinish:
      Require(plan.status == VIRTIO_BLK_S_IOERR || plan.status == VIRTIO_BLK_S_UNSUPP,
              "a request finished at once with a status other than IOERR or UNSUPP");
      return;
    case BlkRequestAction::kGetId:
      Require(plan.status == VIRTIO_BLK_S_OK, "GET_ID answered with an error status");
      Require(plan.used_len >= 1 && plan.used_len <= VIRTIO_BLK_ID_BYTES && plan.used_len <= total,
              "GET_ID writes more than the id or than its buffers");
      for (int i = 0; i < plan.iovcnt; ++i) {
        Require(InsidePart(data[i], writable, 0, writable.bytes - 1),
                "a GET_ID iovec outside the writable data");
      }
      return;
    case BlkRequestAction::kSubmit:
      break;
    case BlkRequestAction::kBrokenChain:
      return;
  }
  const bool writes = plan.io_type == IoType::kWrite || plan.io_type == IoType::kUnmap ||
                      plan.io_type == IoType::kWriteZeroes;
  Require(!(writes && device.d.read_only), "a write, discard or write zeroes submitted read-only");
  const bool read = plan.io_type == IoType::kRead;
  switch (plan.io_type) {
    case IoType::kRead:
    case IoType::kWrite:
      Require(total == plan.bytes, "the data iovecs do not add up to the request's bytes");
      Require(plan.used_len == (read ? plan.bytes : 0), "wrong used length");
      for (int i = 0; i < plan.iovcnt; ++i) {
        Require(read ? InsidePart(data[i], writable, 0, writable.bytes - 1)
                     : InsidePart(data[i], readable, kBlkHeaderBytes, readable.bytes),
                "a data iovec outside the buffers of its direction");
      }
      break;
    case IoType::kUnmap:
    case IoType::kWriteZeroes:
      Require(plan.iovcnt == 0, "data iovecs for a discard or write zeroes");
      break;
    case IoType::kFlush:
      Require(plan.iovcnt == 0 && plan.bytes == 0, "a flush with data");
      return;
    case IoType::kReset:
      Fail("a reset submitted");
  }
  Require(RangeInside(device, plan.sector, plan.bytes),
          "submitted an empty, unaligned or out-of-capacity range");
}

void CheckAgainstReference(const BlkRequestPlan& plan, const Expected& e, const Request& r,
                           const Part& readable, const iovec* data) {
  if (plan.action != e.action ||
      (plan.action != BlkRequestAction::kSubmit && plan.status != e.status)) {
    Fail("the decoder's action or status differs from the reference's");
  }
  if (plan.action == BlkRequestAction::kBrokenChain || plan.action == BlkRequestAction::kFinish) {
    return;
  }
  Require(plan.used_len == e.used_len, "used length differs from the reference's");
  if (plan.action == BlkRequestAction::kSubmit) {
    Require(plan.io_type == e.io_type && plan.sector == e.sector && plan.bytes == e.bytes,
            "the I/O differs from the reference's");
    Require(!IsRangeRequest(r.type) || readable.bytes - kBlkHeaderBytes == kBlkSegmentBytes,
            "a discard or write zeroes of several segments submitted for its first only");
  }
  std::vector<iovec> want;
  if (e.data_part != nullptr) want = Slice(*e.data_part, e.data_from, e.data_to);
  Require(static_cast<size_t>(plan.iovcnt) == want.size(), "data iovec count differs");
  for (size_t i = 0; i < want.size(); ++i) {
    Require(data[i].iov_base == want[i].iov_base && data[i].iov_len == want[i].iov_len,
            "a data iovec differs from the reference's");
  }
}

// GET_ID: WriteBlkId writes the id's first used_len bytes at the front of the data, and
// nothing anywhere else (ASan: everything but the data iovecs is poisoned meanwhile).
void CheckGetId(const BlkRequestPlan& plan, const Part& readable, const Part& writable,
                const iovec* data, const Device& device) {
  for (const iovec& p : writable.pieces) std::memset(p.iov_base, kUnwritten, p.iov_len);
  Poison(readable, 0, true);
  Poison(writable, 0, true);
  for (int i = 0; i < plan.iovcnt; ++i)
    ASAN_UNPOISON_MEMORY_REGION(data[i].iov_base, data[i].iov_len);
  WriteBlkId(data, plan.iovcnt, device.d.id, plan.used_len);
  Poison(readable, 0, false);
  Poison(writable, 0, false);
  uint64_t at = 0;
  for (const iovec& p : writable.pieces) {
    const auto* bytes = static_cast<const uint8_t*>(p.iov_base);
    for (uint64_t i = 0; i < p.iov_len; ++i, ++at) {
      const uint8_t want = at < plan.used_len ? static_cast<uint8_t>(kDeviceId[at]) : kUnwritten;
      Require(bytes[i] == want, "GET_ID wrote other bytes than the id's first used_len");
    }
  }
}

void RunInput(FuzzInput& in) {
  const Device device = ReadDevice(in);
  const Request request = ReadRequest(in, device);
  const bool reads_data = request.type == VIRTIO_BLK_T_IN || request.type == VIRTIO_BLK_T_GET_ID;
  int iovecs = 0;
  const Part readable = ReadPart(in,
                                 kBlkHeaderBytes + request.segments * kBlkSegmentBytes +
                                     (request.type == VIRTIO_BLK_T_OUT ? request.data_bytes : 0),
                                 &iovecs);
  const Part writable = ReadPart(in, (reads_data ? request.data_bytes : 0) + 1, &iovecs);

  // The readable bytes as the guest wrote them; the rest is never read.
  std::vector<uint8_t> front(std::min<uint64_t>(readable.bytes, kFilledBytes));
  std::copy_n(request.front, front.size(), front.begin());
  uint64_t at = 0;
  for (const iovec& p : readable.pieces) {
    if (at >= front.size()) break;
    const uint64_t n = std::min<uint64_t>(p.iov_len, front.size() - at);
    std::memcpy(p.iov_base, front.data() + at, n);
    at += n;
  }

  // The chain as Pop gives it: an iovec array of its exact size (a read past it is a report).
  std::unique_ptr<iovec[]> iov(new iovec[iovecs]);
  std::copy(readable.pieces.begin(), readable.pieces.end(), iov.get());
  std::copy(writable.pieces.begin(), writable.pieces.end(), iov.get() + readable.pieces.size());
  DescriptorChain chain;
  chain.readable_count = static_cast<int>(readable.pieces.size());
  chain.iov_count = iovecs;
  chain.readable_bytes = readable.bytes;
  chain.writable_bytes = writable.bytes;
  std::unique_ptr<iovec[]> data(new iovec[kVhostBlkTaskIovecs]);
  const iovec sentinel{reinterpret_cast<void*>(uintptr_t{0x5a5a5a5a}), 0x5a5a};
  std::fill(data.get(), data.get() + kVhostBlkTaskIovecs, sentinel);

  // What the decoder may read: the header, and the first segment of a discard or write zeroes.
  // Nothing at all without a whole header.
  const uint64_t may_read =
      readable.bytes < kBlkHeaderBytes
          ? 0
          : std::min<uint64_t>(readable.bytes, IsRangeRequest(request.type)
                                                   ? kBlkHeaderBytes + kBlkSegmentBytes
                                                   : kBlkHeaderBytes);
  Poison(readable, may_read, true);
  Poison(writable, 0, true);
  const BlkRequestPlan plan = DecodeBlkRequest(chain, iov.get(), device.d, data.get());
  Poison(readable, may_read, false);
  Poison(writable, 0, false);

  at = 0;
  for (const iovec& p : readable.pieces) {
    if (at >= front.size()) break;
    const uint64_t n = std::min<uint64_t>(p.iov_len, front.size() - at);
    Require(std::memcmp(p.iov_base, front.data() + at, n) == 0, "the decoder wrote the header");
    at += n;
  }
  Require(plan.iovcnt >= 0 && plan.iovcnt <= iovecs, "more data iovecs than the chain has");
  for (int i = plan.iovcnt; i < kVhostBlkTaskIovecs; ++i) {
    Require(data[i].iov_base == sentinel.iov_base && data[i].iov_len == sentinel.iov_len,
            "data_out written past the count returned");
  }
  CheckInvariants(plan, device, readable, writable, data.get());
  CheckAgainstReference(plan, Reference(device, request, readable, writable), request, readable,
                        data.get());
  if (plan.action == BlkRequestAction::kGetId) {
    CheckGetId(plan, readable, writable, data.get(), device);
  }
}

}  // namespace
}  // namespace pollux::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pollux::fuzz::FuzzInput in(data, size);
  pollux::fuzz::RunInput(in);
  return 0;
}
