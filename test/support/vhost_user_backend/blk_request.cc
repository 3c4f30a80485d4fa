#include "blk_request.h"

#include <linux/virtio_blk.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace pollux::testing::vhost_backend {

namespace {

constexpr uint64_t kSectorSize = 512;

// Copies `len` bytes out of the segments, starting `skip` bytes into their concatenation.
void Gather(const std::vector<GuestSegment>& segments, uint64_t skip, uint8_t* out, uint64_t len) {
  for (const GuestSegment& s : segments) {
    if (len == 0) return;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(s.len - skip, len);
    std::memcpy(out, s.data + skip, n);
    out += n;
    len -= n;
    skip = 0;
  }
}

// Copies `len` bytes into the segments from the start of their concatenation.
void Scatter(const std::vector<GuestSegment>& segments, const uint8_t* in, uint64_t len) {
  for (const GuestSegment& s : segments) {
    if (len == 0) return;
    const uint64_t n = std::min<uint64_t>(s.len, len);
    std::memcpy(s.data, in, n);
    in += n;
    len -= n;
  }
}

// Segments carrying data: readable ones past the 16-byte header, writable ones before the
// status byte. This is what seg_max limits (the driver adds header and status on top).
uint64_t CountDataSegments(const DescriptorChain& chain) {
  uint64_t count = 0;
  uint64_t offset = 0;
  for (const GuestSegment& s : chain.readable) {
    if (offset + s.len > sizeof(virtio_blk_outhdr)) ++count;
    offset += s.len;
  }
  offset = 0;
  for (const GuestSegment& s : chain.writable) {
    if (s.len > 0 && offset < chain.writable_bytes - 1) ++count;
    offset += s.len;
  }
  return count;
}

class BlkRequest {
 public:
  BlkRequest(Device& device, const DescriptorChain& chain) : device_(device), chain_(chain) {}

  BlkOutcome Execute();

 private:
  uint8_t Read(const virtio_blk_outhdr& header);
  uint8_t Write(const virtio_blk_outhdr& header);
  uint8_t GetId();
  uint8_t DiscardOrWriteZeroes(const virtio_blk_outhdr& header, bool write_zeroes);
  // Whether [sector, +bytes) is a whole number of blocks inside the disk.
  bool RangeOk(uint64_t sector, uint64_t bytes) const;

  uint64_t data_out_bytes() const { return chain_.readable_bytes - sizeof(virtio_blk_outhdr); }
  uint64_t data_in_bytes() const { return chain_.writable_bytes - 1; }

  Device& device_;
  const DescriptorChain& chain_;
  uint64_t data_written_ = 0;  // bytes written into the writable buffers besides the status
};

BlkOutcome BlkRequest::Execute() {
  VhostUserTestBackendCounters& counters = device_.counters;
  if (chain_.writable_bytes == 0) {
    VHOST_TEST_LOG("request %u has no writable byte for its status", chain_.id);
    ++counters.requests_failed;
    return BlkOutcome{0};
  }
  const GuestSegment& status_segment = chain_.writable.back();
  if (status_segment.data == nullptr || status_segment.len == 0) {
    VHOST_TEST_LOG("request %u: its status byte is outside the memory table", chain_.id);
    ++counters.requests_failed;
    return BlkOutcome{0};
  }
  uint8_t status = VIRTIO_BLK_S_IOERR;
  const VhostUserTestBackendOptions& options = device_.options;
  if (chain_.bad_address) {
    VHOST_TEST_LOG("request %u: a buffer is outside the memory table or crosses a region end",
                   chain_.id);
  } else if (chain_.readable_bytes < sizeof(virtio_blk_outhdr)) {
    VHOST_TEST_LOG("request %u: %llu readable bytes, less than a request header", chain_.id,
                   static_cast<unsigned long long>(chain_.readable_bytes));
  } else if (device_.Negotiated(VIRTIO_BLK_F_SEG_MAX) &&
             CountDataSegments(chain_) > options.seg_max) {
    VHOST_TEST_LOG("request %u: %llu data segments, more than seg_max %u", chain_.id,
                   static_cast<unsigned long long>(CountDataSegments(chain_)), options.seg_max);
  } else if (device_.Negotiated(VIRTIO_BLK_F_SIZE_MAX) &&
             std::any_of(chain_.readable.begin(), chain_.readable.end(),
                         [&](const GuestSegment& s) { return s.len > options.size_max; })) {
    VHOST_TEST_LOG("request %u: a readable segment is larger than size_max %u", chain_.id,
                   options.size_max);
  } else if (device_.Negotiated(VIRTIO_BLK_F_SIZE_MAX) &&
             std::any_of(chain_.writable.begin(), chain_.writable.end(),
                         [&](const GuestSegment& s) { return s.len > options.size_max; })) {
    VHOST_TEST_LOG("request %u: a writable segment is larger than size_max %u", chain_.id,
                   options.size_max);
  } else {
    virtio_blk_outhdr header;
    Gather(chain_.readable, 0, reinterpret_cast<uint8_t*>(&header), sizeof(header));
    switch (header.type) {
      case VIRTIO_BLK_T_IN:
        ++counters.requests_in;
        status = Read(header);
        break;
      case VIRTIO_BLK_T_OUT:
        ++counters.requests_out;
        status = Write(header);
        break;
      case VIRTIO_BLK_T_FLUSH:
        ++counters.requests_flush;
        // A RAM disk has nothing to write back; the counter lets tests see the flush arrive.
        ++counters.flushes;
        status = VIRTIO_BLK_S_OK;
        break;
      case VIRTIO_BLK_T_GET_ID:
        ++counters.requests_get_id;
        status = GetId();
        break;
      case VIRTIO_BLK_T_DISCARD:
        ++counters.requests_discard;
        status = DiscardOrWriteZeroes(header, false);
        break;
      case VIRTIO_BLK_T_WRITE_ZEROES:
        ++counters.requests_write_zeroes;
        status = DiscardOrWriteZeroes(header, true);
        break;
      default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
  }
  if (status == VIRTIO_BLK_S_UNSUPP) ++counters.requests_unsupported;
  if (status == VIRTIO_BLK_S_IOERR) ++counters.requests_failed;
  status_segment.data[status_segment.len - 1] = status;
  return BlkOutcome{static_cast<uint32_t>(data_written_ + 1)};
}

bool BlkRequest::RangeOk(uint64_t sector, uint64_t bytes) const {
  const uint64_t block = device_.options.block_size;
  const uint64_t disk = device_.disk.size();
  if (sector > disk / kSectorSize) return false;
  const uint64_t offset = sector * kSectorSize;
  // QEMU's virtio_blk_sect_range_ok: whole logical blocks, inside the disk.
  return offset % block == 0 && bytes % block == 0 && bytes <= disk - offset;
}

uint8_t BlkRequest::Read(const virtio_blk_outhdr& header) {
  const uint64_t bytes = data_in_bytes();
  if (!RangeOk(header.sector, bytes)) {
    VHOST_TEST_LOG("read of %llu bytes at sector %llu: misaligned or past the end",
                   static_cast<unsigned long long>(bytes),
                   static_cast<unsigned long long>(header.sector));
    return VIRTIO_BLK_S_IOERR;
  }
  Scatter(chain_.writable, device_.disk.data() + header.sector * kSectorSize, bytes);
  data_written_ = bytes;
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequest::Write(const virtio_blk_outhdr& header) {
  const uint64_t bytes = data_out_bytes();
  if (device_.options.read_only) return VIRTIO_BLK_S_IOERR;  // 5.2.6.2: and write nothing
  if (!RangeOk(header.sector, bytes)) {
    VHOST_TEST_LOG("write of %llu bytes at sector %llu: misaligned or past the end",
                   static_cast<unsigned long long>(bytes),
                   static_cast<unsigned long long>(header.sector));
    return VIRTIO_BLK_S_IOERR;
  }
  Gather(chain_.readable, sizeof(virtio_blk_outhdr),
         device_.disk.data() + header.sector * kSectorSize, bytes);
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequest::GetId() {
  // 5.2.6: up to VIRTIO_BLK_ID_BYTES, NUL-padded when the serial is shorter.
  uint8_t id[VIRTIO_BLK_ID_BYTES] = {};
  const std::string& serial = device_.options.serial;
  std::memcpy(id, serial.data(), std::min<size_t>(serial.size(), sizeof(id)));
  const uint64_t bytes = std::min<uint64_t>(data_in_bytes(), sizeof(id));
  Scatter(chain_.writable, id, bytes);
  data_written_ = bytes;
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequest::DiscardOrWriteZeroes(const virtio_blk_outhdr& header, bool write_zeroes) {
  (void)header;  // the ranges come in the payload; the header's sector is unused
  const char* what = write_zeroes ? "write zeroes" : "discard";
  const VhostUserTestBackendOptions& options = device_.options;
  if (!device_.Negotiated(write_zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD)) {
    return VIRTIO_BLK_S_UNSUPP;
  }
  const uint64_t bytes = data_out_bytes();
  using Range = virtio_blk_discard_write_zeroes;
  const uint64_t max_segments =
      write_zeroes ? options.max_write_zeroes_seg : options.max_discard_seg;
  const uint64_t max_sectors =
      write_zeroes ? options.max_write_zeroes_sectors : options.max_discard_sectors;
  if (bytes == 0 || bytes % sizeof(Range) != 0 || bytes / sizeof(Range) > max_segments) {
    VHOST_TEST_LOG("%s payload of %llu bytes (segments of %zu, at most %llu)", what,
                   static_cast<unsigned long long>(bytes), sizeof(Range),
                   static_cast<unsigned long long>(max_segments));
    return VIRTIO_BLK_S_IOERR;
  }
  std::vector<Range> ranges(bytes / sizeof(Range));
  Gather(chain_.readable, sizeof(virtio_blk_outhdr), reinterpret_cast<uint8_t*>(ranges.data()),
         bytes);
  // Check every range before touching the disk, so that a failed request changes nothing.
  for (const Range& r : ranges) {
    // 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP.
    if ((r.flags & ~uint32_t{VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}) != 0 ||
        (!write_zeroes && (r.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))) {
      return VIRTIO_BLK_S_UNSUPP;
    }
    if (options.read_only) return VIRTIO_BLK_S_IOERR;
    if (r.num_sectors > max_sectors || !RangeOk(r.sector, uint64_t{r.num_sectors} * kSectorSize)) {
      VHOST_TEST_LOG("%s of %u sectors at sector %llu: too long, misaligned or past the end", what,
                     r.num_sectors, static_cast<unsigned long long>(r.sector));
      return VIRTIO_BLK_S_IOERR;
    }
  }
  // A RAM disk reads back zeroes after a discard as well: deterministic for tests.
  for (const Range& r : ranges) {
    std::memset(device_.disk.data() + r.sector * kSectorSize, 0,
                uint64_t{r.num_sectors} * kSectorSize);
  }
  return VIRTIO_BLK_S_OK;
}

}  // namespace

BlkOutcome ExecuteBlkRequest(Device& device, const DescriptorChain& chain) {
  return BlkRequest(device, chain).Execute();
}

}  // namespace pollux::testing::vhost_backend
