// NBD requests: which are refused before reaching the bdev, with which error, and the reply
// headers (simple and structured) byte by byte.
#include "nbd_request.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "nbd_protocol.h"

namespace pollux::nbd {
namespace {

TransmissionParams Params() {
  TransmissionParams p;
  p.size_bytes = 1 << 20;
  p.block_size = 512;
  p.max_payload = 32 << 20;
  p.can_trim = true;
  return p;
}

Request Make(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0) {
  Request r;
  r.type = type;
  r.offset = offset;
  r.length = length;
  r.flags = flags;
  r.cookie = 0x1122334455667788;
  return r;
}

TEST(NbdRequestTest, DecodeChecksTheMagic) {
  uint8_t wire[kRequestSize];
  uint8_t* p = Store32(wire, kRequestMagic);
  p = Store16(p, kCmdFlagFua);
  p = Store16(p, kCmdWrite);
  p = Store64(p, 42);
  p = Store64(p, 4096);
  Store32(p, 512);
  Request r;
  ASSERT_TRUE(DecodeRequest(wire, r));
  EXPECT_EQ(r.flags, kCmdFlagFua);
  EXPECT_EQ(r.type, kCmdWrite);
  EXPECT_EQ(r.cookie, 42u);
  EXPECT_EQ(r.offset, 4096u);
  EXPECT_EQ(r.length, 512u);
  EXPECT_EQ(PayloadLength(r), 512u);
  Store32(wire, kSimpleReplyMagic);
  EXPECT_FALSE(DecodeRequest(wire, r));
}

TEST(NbdRequestTest, WellFormedRequestsPass) {
  TransmissionParams p = Params();
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 4096), p), 0u);
  EXPECT_EQ(CheckRequest(Make(kCmdWrite, (1 << 20) - 512, 512, kCmdFlagFua), p), 0u);
  EXPECT_EQ(CheckRequest(Make(kCmdFlush, 0, 0), p), 0u);
  EXPECT_EQ(CheckRequest(Make(kCmdTrim, 512, 1024), p), 0u);
  EXPECT_EQ(CheckRequest(Make(kCmdWriteZeroes, 0, 1 << 20, kCmdFlagNoHole), p), 0u);
  EXPECT_EQ(CheckRequest(Make(kCmdDisconnect, 0, 0), p), 0u);
}

TEST(NbdRequestTest, RefusedRequestsGetTheirErrors) {
  TransmissionParams p = Params();
  EXPECT_EQ(CheckRequest(Make(99, 0, 512), p), kEinval) << "unknown command";
  EXPECT_EQ(CheckRequest(Make(kCmdCache, 0, 512), p), kEinval) << "not offered";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 512, 0x40), p), kEinval) << "unknown flag";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 512, kCmdFlagFua), p), kEinval) << "FUA on a read";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 512, kCmdFlagDf), p), kEinval)
      << "DF without structured replies";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 0), p), kEinval) << "zero length";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 100, 512), p), kEinval) << "not in whole blocks";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 700), p), kEinval) << "not in whole blocks";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 1 << 20, 512), p), kEinval) << "past the end";
  EXPECT_EQ(CheckRequest(Make(kCmdWrite, 1 << 20, 512), p), kEnospc) << "write past the end";
  EXPECT_EQ(CheckRequest(Make(kCmdWriteZeroes, ~0ull - 100, 512), p), kEnospc) << "offset overflow";
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, (32 << 20) + 512), p), kEoverflow) << "over the maximum";
  EXPECT_EQ(CheckRequest(Make(kCmdWrite, 0, 0xffffffff), p), kEoverflow) << "over the maximum";
  EXPECT_EQ(CheckRequest(Make(kCmdFlush, 0, 0, kCmdFlagFua), p), kEinval) << "flags on a flush";
  EXPECT_EQ(CheckRequest(Make(kCmdBlockStatus, 0, 512), p), kEinval) << "no metadata context";
  p.can_trim = false;
  EXPECT_EQ(CheckRequest(Make(kCmdTrim, 0, 512), p), kEinval) << "trim not offered";
  p.readonly = true;
  EXPECT_EQ(CheckRequest(Make(kCmdWrite, 0, 512), p), kEperm);
  EXPECT_EQ(CheckRequest(Make(kCmdWriteZeroes, 0, 512), p), kEperm);
  EXPECT_EQ(CheckRequest(Make(kCmdRead, 0, 512), p), 0u) << "reads stay allowed";
}

TEST(NbdRequestTest, SimpleReplyIsMagicErrorCookie) {
  uint8_t out[kMaxReplyHeaderSize];
  ASSERT_EQ(EncodeReplyHeader(out, Make(kCmdRead, 0, 512), kEio, Params()), kSimpleReplySize);
  EXPECT_EQ(Load32(out), kSimpleReplyMagic);
  EXPECT_EQ(Load32(out + 4), kEio);
  EXPECT_EQ(Load64(out + 8), 0x1122334455667788u);
}

TEST(NbdRequestTest, StructuredRepliesAreOneDoneChunk) {
  TransmissionParams p = Params();
  p.structured_replies = true;
  p.base_allocation = true;
  uint8_t out[kMaxReplyHeaderSize];

  ASSERT_EQ(EncodeReplyHeader(out, Make(kCmdRead, 4096, 512), 0, p), 28u);
  EXPECT_EQ(Load32(out), kStructuredReplyMagic);
  EXPECT_EQ(Load16(out + 4), kReplyFlagDone);
  EXPECT_EQ(Load16(out + 6), kReplyTypeOffsetData);
  EXPECT_EQ(Load64(out + 8), 0x1122334455667788u);
  EXPECT_EQ(Load32(out + 16), 8u + 512u);
  EXPECT_EQ(Load64(out + 20), 4096u);

  ASSERT_EQ(EncodeReplyHeader(out, Make(kCmdWrite, 0, 512), kEnospc, p), 26u);
  EXPECT_EQ(Load16(out + 6), kReplyTypeError);
  EXPECT_EQ(Load32(out + 16), 6u);
  EXPECT_EQ(Load32(out + 20), kEnospc);
  EXPECT_EQ(Load16(out + 24), 0u);

  ASSERT_EQ(EncodeReplyHeader(out, Make(kCmdBlockStatus, 0, 3000), 0, p), 32u);
  EXPECT_EQ(Load16(out + 6), kReplyTypeBlockStatus);
  EXPECT_EQ(Load32(out + 16), 12u);
  EXPECT_EQ(Load32(out + 20), kBaseAllocationContextId);
  EXPECT_EQ(Load32(out + 24), 3000u);
  EXPECT_EQ(Load32(out + 28), 0u);

  ASSERT_EQ(EncodeReplyHeader(out, Make(kCmdFlush, 0, 0), 0, p), kStructuredReplySize);
  EXPECT_EQ(Load16(out + 6), kReplyTypeNone);
  EXPECT_EQ(Load32(out + 16), 0u);
}

TEST(NbdRequestTest, ErrnoMapsToTheProtocolsErrors) {
  EXPECT_EQ(NbdErrorFromErrno(EIO), kEio);
  EXPECT_EQ(NbdErrorFromErrno(ENOSPC), kEnospc);
  EXPECT_EQ(NbdErrorFromErrno(EROFS), kEperm);
  EXPECT_EQ(NbdErrorFromErrno(ENOTSUP), kEnotsup);
  EXPECT_EQ(NbdErrorFromErrno(ETIMEDOUT), kEio);
}

}  // namespace
}  // namespace pollux::nbd
