// The vhost-user-blk request decoder (virtio/vhost_blk_request.h) on requests built by hand:
// the cases vhost_blk_queue_test does not reach through a whole queue (4096-byte blocks, a
// header or segment split across buffers, devices without discard or read-only, limits, the
// edges of a huge device) and the exact iovecs a plan hands to the bdev.
#include "vhost_blk_request.h"

#include <gtest/gtest.h>
#include <linux/virtio_blk.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "vhost_blk_limits.h"

namespace pollux::testing {
namespace {

// A request as the guest lays it out: readable buffers, then writable ones, each its own
// allocation; the readable bytes written front to back.
class GuestRequest {
 public:
  GuestRequest& Readable(std::vector<uint32_t> lengths) { return Add(lengths, false); }
  GuestRequest& Writable(std::vector<uint32_t> lengths) { return Add(lengths, true); }

  // Writes bytes at an offset of the readable part (across buffers as they fall).
  GuestRequest& Put(uint64_t offset, const void* bytes, size_t n) {
    const auto* from = static_cast<const uint8_t*>(bytes);
    uint64_t at = 0;
    for (int i = 0; i < chain_.readable_count; ++i) {
      for (uint64_t k = 0; k < iov_[i].iov_len; ++k, ++at) {
        if (at >= offset && at < offset + n) {
          static_cast<uint8_t*>(iov_[i].iov_base)[k] = from[at - offset];
        }
      }
    }
    return *this;
  }
  GuestRequest& Header(uint32_t type, uint64_t sector) {
    virtio_blk_outhdr h{type, 0, sector};
    return Put(0, &h, sizeof(h));
  }
  GuestRequest& Segment(uint64_t sector, uint32_t num_sectors, uint32_t flags) {
    virtio_blk_discard_write_zeroes s{sector, num_sectors, flags};
    return Put(kBlkHeaderBytes, &s, sizeof(s));
  }

  BlkRequestPlan Decode(const VhostBlkDevice& device) {
    return DecodeBlkRequest(chain_, iov_.data(), device, data_);
  }
  uint8_t* buffer(size_t i) { return buffers_[i].get(); }
  const iovec* data() const { return data_; }

 private:
  GuestRequest& Add(const std::vector<uint32_t>& lengths, bool writable) {
    for (uint32_t len : lengths) {
      buffers_.emplace_back(new uint8_t[len]());
      iov_.push_back({buffers_.back().get(), len});
      chain_.iov_count = static_cast<int>(iov_.size());
      if (writable) {
        chain_.writable_bytes += len;
      } else {
        chain_.readable_bytes += len;
        chain_.readable_count = chain_.iov_count;
      }
    }
    return *this;
  }

  std::vector<std::unique_ptr<uint8_t[]>> buffers_;
  std::vector<iovec> iov_;
  DescriptorChain chain_;
  iovec data_[kVhostBlkTaskIovecs] = {};
};

VhostBlkDevice Device(uint32_t block_size = 512, uint64_t blocks = 2048) {
  VhostBlkDevice d;
  d.block_size = block_size;
  d.capacity_sectors = blocks * (block_size / 512);
  d.discard = true;
  d.write_zeroes = true;
  d.max_discard_sectors = 1 << 16;
  d.max_write_zeroes_sectors = 1 << 16;
  std::memcpy(d.id, "Malloc0", 7);
  return d;
}

void ExpectFinish(const BlkRequestPlan& plan, uint8_t status) {
  EXPECT_EQ(plan.action, BlkRequestAction::kFinish);
  EXPECT_EQ(plan.status, status);
}

TEST(VhostBlkRequestTest, ReadInLinuxLayoutHandsOverTheDataBuffer) {
  GuestRequest r;
  r.Readable({16}).Writable({4096, 1}).Header(VIRTIO_BLK_T_IN, 8);
  BlkRequestPlan plan = r.Decode(Device());
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.io_type, IoType::kRead);
  EXPECT_EQ(plan.sector, 8u);
  EXPECT_EQ(plan.bytes, 4096u);
  EXPECT_EQ(plan.used_len, 4096u);
  ASSERT_EQ(plan.iovcnt, 1);
  EXPECT_EQ(r.data()[0].iov_base, r.buffer(1));
  EXPECT_EQ(r.data()[0].iov_len, 4096u);
  EXPECT_EQ(plan.status_byte, r.buffer(2));
}

TEST(VhostBlkRequestTest, HeaderSplitAcrossBuffersIsGathered) {
  // The header in pieces of 3, 10 and 3 bytes, the last shared with the data.
  GuestRequest r;
  r.Readable({3, 10, 3 + 1024}).Writable({1}).Header(VIRTIO_BLK_T_OUT, 6);
  BlkRequestPlan plan = r.Decode(Device());
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.io_type, IoType::kWrite);
  EXPECT_EQ(plan.sector, 6u);
  EXPECT_EQ(plan.bytes, 1024u);
  EXPECT_EQ(plan.used_len, 0u);
  ASSERT_EQ(plan.iovcnt, 1);
  EXPECT_EQ(r.data()[0].iov_base, r.buffer(2) + 3);
  EXPECT_EQ(r.data()[0].iov_len, 1024u);
}

TEST(VhostBlkRequestTest, DataSharesBuffersWithHeaderAndStatus) {
  // Header and the first data bytes in one buffer; the last data bytes and the status in one.
  GuestRequest r;
  r.Readable({16}).Writable({100, 412 + 512 + 1}).Header(VIRTIO_BLK_T_IN, 0);
  BlkRequestPlan plan = r.Decode(Device());
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.bytes, 1024u);
  ASSERT_EQ(plan.iovcnt, 2);
  EXPECT_EQ(r.data()[0].iov_base, r.buffer(1));
  EXPECT_EQ(r.data()[0].iov_len, 100u);
  EXPECT_EQ(r.data()[1].iov_base, r.buffer(2));
  EXPECT_EQ(r.data()[1].iov_len, 924u);
  EXPECT_EQ(plan.status_byte, r.buffer(2) + 924);

  GuestRequest w;
  w.Readable({16 + 512, 512}).Writable({1}).Header(VIRTIO_BLK_T_OUT, 2);
  plan = w.Decode(Device());
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  ASSERT_EQ(plan.iovcnt, 2);
  EXPECT_EQ(w.data()[0].iov_base, w.buffer(0) + 16);
  EXPECT_EQ(w.data()[0].iov_len, 512u);
  EXPECT_EQ(w.data()[1].iov_base, w.buffer(1));
}

TEST(VhostBlkRequestTest, ChainWithoutWritableByteIsBroken) {
  GuestRequest r;
  r.Readable({16, 512}).Header(VIRTIO_BLK_T_OUT, 0);
  EXPECT_EQ(r.Decode(Device()).action, BlkRequestAction::kBrokenChain);
}

TEST(VhostBlkRequestTest, FourKibibyteBlocksNeedAlignedRanges) {
  const VhostBlkDevice d = Device(4096, 256);  // 2048 sectors
  GuestRequest aligned;
  aligned.Readable({16}).Writable({4096, 1}).Header(VIRTIO_BLK_T_IN, 8);
  BlkRequestPlan plan = aligned.Decode(d);
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.sector, 8u);
  GuestRequest unaligned_sector;
  unaligned_sector.Readable({16}).Writable({4096, 1}).Header(VIRTIO_BLK_T_IN, 1);
  ExpectFinish(unaligned_sector.Decode(d), VIRTIO_BLK_S_IOERR);
  GuestRequest short_write;
  short_write.Readable({16, 512}).Writable({1}).Header(VIRTIO_BLK_T_OUT, 8);
  ExpectFinish(short_write.Decode(d), VIRTIO_BLK_S_IOERR);
  GuestRequest last_block;
  last_block.Readable({16}).Writable({4096, 1}).Header(VIRTIO_BLK_T_IN, 2040);
  EXPECT_EQ(last_block.Decode(d).action, BlkRequestAction::kSubmit);
  GuestRequest past_end;
  past_end.Readable({16}).Writable({4096, 1}).Header(VIRTIO_BLK_T_IN, 2048);
  ExpectFinish(past_end.Decode(d), VIRTIO_BLK_S_IOERR);
}

TEST(VhostBlkRequestTest, EdgesOfTheLargestDevice) {
  // A device of UINT64_MAX / 512 blocks: its last sector, one past it, and a sector whose
  // byte offset does not fit in 64 bits.
  const VhostBlkDevice d = Device(512, UINT64_MAX / 512);
  GuestRequest last;
  last.Readable({16}).Writable({512, 1}).Header(VIRTIO_BLK_T_IN, d.capacity_sectors - 1);
  EXPECT_EQ(last.Decode(d).action, BlkRequestAction::kSubmit);
  GuestRequest past;
  past.Readable({16}).Writable({1024, 1}).Header(VIRTIO_BLK_T_IN, d.capacity_sectors - 1);
  ExpectFinish(past.Decode(d), VIRTIO_BLK_S_IOERR);
  GuestRequest wraps;
  wraps.Readable({16}).Writable({512, 1}).Header(VIRTIO_BLK_T_IN, UINT64_MAX);
  ExpectFinish(wraps.Decode(d), VIRTIO_BLK_S_IOERR);
}

TEST(VhostBlkRequestTest, DiscardAndWriteZeroesFollowTheDevice) {
  VhostBlkDevice d = Device();
  // A segment split across two buffers.
  GuestRequest split;
  split.Readable({20, 12}).Writable({1}).Header(VIRTIO_BLK_T_DISCARD, 0).Segment(16, 8, 0);
  BlkRequestPlan plan = split.Decode(d);
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.io_type, IoType::kUnmap);
  EXPECT_EQ(plan.sector, 16u);
  EXPECT_EQ(plan.bytes, 8u * 512);
  EXPECT_EQ(plan.iovcnt, 0);

  auto request = [](uint32_t type, uint32_t num_sectors, uint32_t flags) {
    auto r = std::make_unique<GuestRequest>();
    r->Readable({16, 16}).Writable({1}).Header(type, 0).Segment(0, num_sectors, flags);
    return r;
  };
  ExpectFinish(request(VIRTIO_BLK_T_DISCARD, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)->Decode(d),
               VIRTIO_BLK_S_UNSUPP);
  plan = request(VIRTIO_BLK_T_WRITE_ZEROES, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)->Decode(d);
  EXPECT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.io_type, IoType::kWriteZeroes);
  // Over the advertised limit.
  d.max_write_zeroes_sectors = 8;
  ExpectFinish(request(VIRTIO_BLK_T_WRITE_ZEROES, 9, 0)->Decode(d), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(request(VIRTIO_BLK_T_WRITE_ZEROES, 8, 0)->Decode(d).action, BlkRequestAction::kSubmit);
  // Not offered: unsupported; read-only: an error.
  d.discard = false;
  ExpectFinish(request(VIRTIO_BLK_T_DISCARD, 1, 0)->Decode(d), VIRTIO_BLK_S_UNSUPP);
  d.read_only = true;
  ExpectFinish(request(VIRTIO_BLK_T_WRITE_ZEROES, 1, 0)->Decode(d), VIRTIO_BLK_S_IOERR);
}

TEST(VhostBlkRequestTest, ReadOnlyDeviceReadsAndFlushes) {
  VhostBlkDevice d = Device();
  d.read_only = true;
  GuestRequest flush;
  flush.Readable({16}).Writable({1}).Header(VIRTIO_BLK_T_FLUSH, 0);
  BlkRequestPlan plan = flush.Decode(d);
  ASSERT_EQ(plan.action, BlkRequestAction::kSubmit);
  EXPECT_EQ(plan.io_type, IoType::kFlush);
  GuestRequest write;
  write.Readable({16, 512}).Writable({1}).Header(VIRTIO_BLK_T_OUT, 0);
  ExpectFinish(write.Decode(d), VIRTIO_BLK_S_IOERR);
}

TEST(VhostBlkRequestTest, GetIdWritesWhatFitsAcrossBuffers) {
  const VhostBlkDevice d = Device();
  GuestRequest r;
  r.Readable({16}).Writable({3, 30}).Header(VIRTIO_BLK_T_GET_ID, 0);
  BlkRequestPlan plan = r.Decode(d);
  ASSERT_EQ(plan.action, BlkRequestAction::kGetId);
  EXPECT_EQ(plan.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(plan.used_len, uint32_t{VIRTIO_BLK_ID_BYTES});
  EXPECT_EQ(plan.status_byte, r.buffer(2) + 29);
  WriteBlkId(r.data(), plan.iovcnt, d.id, plan.used_len);
  EXPECT_EQ(std::memcmp(r.buffer(1), "Mal", 3), 0);
  EXPECT_EQ(std::memcmp(r.buffer(2), "loc0", 5), 0);  // with the id's NUL padding

  GuestRequest none;
  none.Readable({16}).Writable({1}).Header(VIRTIO_BLK_T_GET_ID, 0);
  ExpectFinish(none.Decode(d), VIRTIO_BLK_S_IOERR);
}

}  // namespace
}  // namespace pollux::testing
