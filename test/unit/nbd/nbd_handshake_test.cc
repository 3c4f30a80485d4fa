// The NBD handshake byte by byte: what the server answers to each option, and where it stops.
#include "nbd_handshake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "nbd_protocol.h"

namespace pollux::nbd {
namespace {

using ::testing::ElementsAre;

class FakeExports : public HandshakeExports {
 public:
  absl::StatusOr<ExportInfo> Find(std::string_view name) override {
    if (name.empty() && exports.size() == 1) return exports.begin()->second;
    auto it = exports.find(std::string(name));
    if (it == exports.end()) return absl::NotFoundError("no export \"" + std::string(name) + "\"");
    return it->second;
  }
  std::vector<std::string> Names() override {
    std::vector<std::string> names;
    for (const auto& [name, info] : exports) names.push_back(name);
    return names;
  }
  absl::Status Open(const ExportInfo& info) override {
    opened.push_back(info.name);
    return refuse_open ? absl::UnavailableError("going away") : absl::OkStatus();
  }

  std::map<std::string, ExportInfo> exports;
  std::vector<std::string> opened;
  bool refuse_open = false;
};

// Builds what a client sends.
class ClientBytes {
 public:
  ClientBytes& U16(uint16_t v) {
    uint8_t b[2];
    Store16(b, v);
    bytes.append(reinterpret_cast<char*>(b), 2);
    return *this;
  }
  ClientBytes& U32(uint32_t v) {
    uint8_t b[4];
    Store32(b, v);
    bytes.append(reinterpret_cast<char*>(b), 4);
    return *this;
  }
  ClientBytes& U64(uint64_t v) {
    uint8_t b[8];
    Store64(b, v);
    bytes.append(reinterpret_cast<char*>(b), 8);
    return *this;
  }
  ClientBytes& Text(std::string_view s) {
    bytes.append(s);
    return *this;
  }
  ClientBytes& Option(uint32_t option, const std::string& data) {
    return U64(kIHaveOpt).U32(option).U32(static_cast<uint32_t>(data.size())).Text(data);
  }
  std::string bytes;
};

std::string GoData(std::string_view name, std::vector<uint16_t> infos = {}) {
  ClientBytes data;
  data.U32(static_cast<uint32_t>(name.size())).Text(name).U16(static_cast<uint16_t>(infos.size()));
  for (uint16_t info : infos) data.U16(info);
  return data.bytes;
}

std::string MetaData(std::string_view name, std::vector<std::string> queries) {
  ClientBytes data;
  data.U32(static_cast<uint32_t>(name.size()))
      .Text(name)
      .U32(static_cast<uint32_t>(queries.size()));
  for (const std::string& q : queries) data.U32(static_cast<uint32_t>(q.size())).Text(q);
  return data.bytes;
}

struct OptionReply {
  uint32_t option;
  uint32_t type;
  std::string payload;
};

// Splits the server's output (after the greeting) into option replies.
std::vector<OptionReply> ParseReplies(const std::string& out) {
  std::vector<OptionReply> replies;
  size_t at = 0;
  auto* p = reinterpret_cast<const uint8_t*>(out.data());
  while (at + kOptionReplyHeaderSize <= out.size()) {
    EXPECT_EQ(Load64(p + at), kOptionReplyMagic);
    uint32_t length = Load32(p + at + 16);
    replies.push_back(
        {Load32(p + at + 8), Load32(p + at + 12), out.substr(at + kOptionReplyHeaderSize, length)});
    at += kOptionReplyHeaderSize + length;
  }
  EXPECT_EQ(at, out.size()) << "trailing bytes";
  return replies;
}

class HandshakeTest : public ::testing::Test {
 protected:
  HandshakeTest() {
    ExportInfo disk;
    disk.name = "disk";
    disk.description = "a test disk";
    disk.size_bytes = 1 << 20;
    disk.block_size = 512;
    disk.can_trim = true;
    exports_.exports["disk"] = disk;
    ExportInfo ro = disk;
    ro.name = "ro";
    ro.readonly = true;
    ro.can_trim = false;
    exports_.exports["ro"] = ro;
  }

  // Starts the handshake and sends the client flags; returns the greeting.
  std::string Begin(uint32_t client_flags = kClientFlagFixedNewstyle | kClientFlagNoZeroes) {
    std::string greeting;
    handshake_.Start(greeting);
    Feed(ClientBytes().U32(client_flags).bytes);
    return greeting;
  }
  // Feeds `bytes` whole and returns what the server answered.
  std::string Feed(const std::string& bytes) {
    std::string out;
    size_t used =
        handshake_.Consume(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    EXPECT_EQ(used, bytes.size());
    return out;
  }

  FakeExports exports_;
  Handshake handshake_{exports_};
};

TEST_F(HandshakeTest, GreetingIsFixedNewstyleWithNoZeroes) {
  std::string greeting;
  handshake_.Start(greeting);
  ASSERT_EQ(greeting.size(), 18u);
  auto* p = reinterpret_cast<const uint8_t*>(greeting.data());
  EXPECT_EQ(Load64(p), kNbdMagic);
  EXPECT_EQ(Load64(p + 8), kIHaveOpt);
  EXPECT_EQ(Load16(p + 16), kFlagFixedNewstyle | kFlagNoZeroes);
}

TEST_F(HandshakeTest, ListNamesEveryExportThenAcks) {
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(kOptList, "").bytes));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].type, kRepServer);
  EXPECT_EQ(replies[0].payload.substr(4), "disk");
  EXPECT_EQ(replies[1].payload.substr(4), "ro");
  EXPECT_EQ(replies[2].type, kRepAck);
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, GoSendsExportAndBlockSizesThenEntersTransmission) {
  Begin();
  auto replies = ParseReplies(
      Feed(ClientBytes().Option(kOptGo, GoData("disk", {kInfoName, kInfoDescription})).bytes));
  ASSERT_EQ(replies.size(), 5u);
  for (const OptionReply& r : replies) EXPECT_EQ(r.option, kOptGo);
  // NBD_INFO_EXPORT: size and transmission flags.
  auto* info = reinterpret_cast<const uint8_t*>(replies[0].payload.data());
  EXPECT_EQ(replies[0].type, kRepInfo);
  EXPECT_EQ(Load16(info), kInfoExport);
  EXPECT_EQ(Load64(info + 2), 1u << 20);
  uint16_t flags = Load16(info + 10);
  EXPECT_TRUE(flags & kFlagSendTrim);
  EXPECT_TRUE(flags & kFlagSendFlush);
  EXPECT_FALSE(flags & kFlagReadOnly);
  EXPECT_EQ(replies[1].payload.substr(2), "disk");
  EXPECT_EQ(replies[2].payload.substr(2), "a test disk");
  auto* sizes = reinterpret_cast<const uint8_t*>(replies[3].payload.data());
  EXPECT_EQ(Load16(sizes), kInfoBlockSize);
  EXPECT_EQ(Load32(sizes + 2), 512u);
  EXPECT_EQ(Load32(sizes + 6), 4096u);
  EXPECT_EQ(Load32(sizes + 10), 32u << 20);
  EXPECT_EQ(replies[4].type, kRepAck);
  EXPECT_EQ(handshake_.state(), Handshake::State::kTransmission);
  EXPECT_EQ(handshake_.chosen().name, "disk");
  EXPECT_THAT(exports_.opened, ElementsAre("disk"));
}

TEST_F(HandshakeTest, ReadOnlyExportSaysSo) {
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(kOptInfo, GoData("ro")).bytes));
  ASSERT_FALSE(replies.empty());
  uint16_t flags = Load16(reinterpret_cast<const uint8_t*>(replies[0].payload.data()) + 10);
  EXPECT_TRUE(flags & kFlagReadOnly);
  EXPECT_FALSE(flags & kFlagSendTrim);
  // INFO does not choose.
  EXPECT_EQ(replies.back().type, kRepAck);
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
  EXPECT_TRUE(exports_.opened.empty());
}

TEST_F(HandshakeTest, UnknownExportGetsAnErrorAndTheClientMayGoOn) {
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(kOptGo, GoData("nope")).bytes));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, kRepErrUnknown);
  EXPECT_THAT(replies[0].payload, ::testing::HasSubstr("nope"));
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
  ParseReplies(Feed(ClientBytes().Option(kOptGo, GoData("disk")).bytes));
  EXPECT_EQ(handshake_.state(), Handshake::State::kTransmission);
}

TEST_F(HandshakeTest, EmptyNameIsTheOnlyExport) {
  exports_.exports.erase("ro");
  Begin();
  ParseReplies(Feed(ClientBytes().Option(kOptGo, GoData("")).bytes));
  EXPECT_EQ(handshake_.state(), Handshake::State::kTransmission);
  EXPECT_EQ(handshake_.chosen().name, "disk");
}

TEST_F(HandshakeTest, RefusedOpenIsAnErrorReply) {
  exports_.refuse_open = true;
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(kOptGo, GoData("disk")).bytes));
  EXPECT_EQ(replies.back().type, kRepErrUnknown);
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, MalformedGoIsInvalid) {
  Begin();
  // A name length beyond the data, then a count of info requests that does not match.
  for (const std::string& data : {ClientBytes().U32(100).Text("disk").bytes,
                                  GoData("disk", {1}) + "x", std::string("\0\0", 2)}) {
    auto replies = ParseReplies(Feed(ClientBytes().Option(kOptGo, data).bytes));
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].type, kRepErrInvalid);
  }
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, ExportNameAnswersWithoutAReplyHeader) {
  Begin(kClientFlagFixedNewstyle);  // no NO_ZEROES: 124 zero bytes follow
  std::string out = Feed(ClientBytes().Option(kOptExportName, "disk").bytes);
  ASSERT_EQ(out.size(), 8u + 2u + 124u);
  EXPECT_EQ(Load64(reinterpret_cast<const uint8_t*>(out.data())), 1u << 20);
  EXPECT_EQ(out.substr(10), std::string(124, '\0'));
  EXPECT_EQ(handshake_.state(), Handshake::State::kTransmission);
}

TEST_F(HandshakeTest, ExportNameOfAnUnknownExportCloses) {
  Begin();
  EXPECT_EQ(Feed(ClientBytes().Option(kOptExportName, "nope").bytes), "");
  EXPECT_EQ(handshake_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, StructuredRepliesAndBaseAllocation) {
  Begin();
  // SET_META_CONTEXT needs structured replies first.
  auto early = ParseReplies(
      Feed(ClientBytes().Option(kOptSetMetaContext, MetaData("disk", {"base:allocation"})).bytes));
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0].type, kRepErrInvalid);
  auto ack = ParseReplies(Feed(ClientBytes().Option(kOptStructuredReply, "").bytes));
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].type, kRepAck);
  auto listed =
      ParseReplies(Feed(ClientBytes().Option(kOptListMetaContext, MetaData("disk", {})).bytes));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].type, kRepMetaContext);
  EXPECT_EQ(listed[0].payload.substr(4), kBaseAllocation);
  auto set = ParseReplies(Feed(
      ClientBytes()
          .Option(kOptSetMetaContext, MetaData("disk", {"qemu:dirty-bitmap:x", "base:allocation"}))
          .bytes));
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(Load32(reinterpret_cast<const uint8_t*>(set[0].payload.data())),
            kBaseAllocationContextId);
  ParseReplies(Feed(ClientBytes().Option(kOptGo, GoData("disk")).bytes));
  EXPECT_TRUE(handshake_.structured_replies());
  EXPECT_TRUE(handshake_.base_allocation());
  EXPECT_TRUE(handshake_.transmission_flags() & kFlagSendDf);
}

TEST_F(HandshakeTest, UnknownOptionsAndTlsAreUnsupported) {
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(77, "xyz").Option(kOptStartTls, "").bytes));
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, kRepErrUnsup);
  EXPECT_EQ(replies[1].type, kRepErrUnsup);
  EXPECT_EQ(handshake_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, AbortIsAckedAndCloses) {
  Begin();
  auto replies = ParseReplies(Feed(ClientBytes().Option(kOptAbort, "").bytes));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, kRepAck);
  EXPECT_EQ(handshake_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, BadMagicOldClientsUnknownFlagsAndHugeOptionsClose) {
  {
    Begin();
    std::string out;
    std::string bytes = ClientBytes().U64(0x1234).U32(kOptList).U32(0).bytes;
    handshake_.Consume(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    EXPECT_EQ(out, "");
    EXPECT_EQ(handshake_.state(), Handshake::State::kClosed);
    EXPECT_THAT(handshake_.close_reason(), ::testing::HasSubstr("IHAVEOPT"));
  }
  for (uint32_t flags : {0u, kClientFlagFixedNewstyle | 0x80u}) {
    Handshake handshake(exports_);
    std::string out;
    std::string bytes = ClientBytes().U32(flags).bytes;
    handshake.Consume(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    EXPECT_EQ(handshake.state(), Handshake::State::kClosed) << flags;
  }
  {
    Handshake handshake(exports_);
    std::string out;
    std::string bytes = ClientBytes()
                            .U32(kClientFlagFixedNewstyle)
                            .U64(kIHaveOpt)
                            .U32(kOptGo)
                            .U32(Handshake::kMaxOptionLength + 1)
                            .bytes;
    handshake.Consume(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    EXPECT_EQ(handshake.state(), Handshake::State::kClosed);
    EXPECT_THAT(handshake.close_reason(), ::testing::HasSubstr("GO"));
  }
}

TEST_F(HandshakeTest, BytesArrivingOneAtATimeGiveTheSameAnswers) {
  std::string all = ClientBytes()
                        .U32(kClientFlagFixedNewstyle | kClientFlagNoZeroes)
                        .Option(kOptStructuredReply, "")
                        .Option(kOptList, "")
                        .Option(kOptGo, GoData("disk"))
                        .bytes;
  std::string greeting;
  handshake_.Start(greeting);
  std::string out;
  std::string pending;
  for (char byte : all) {
    pending.push_back(byte);
    size_t used =
        handshake_.Consume(reinterpret_cast<const uint8_t*>(pending.data()), pending.size(), out);
    pending.erase(0, used);
  }
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(handshake_.state(), Handshake::State::kTransmission);
  auto replies = ParseReplies(out);
  EXPECT_EQ(replies.front().option, kOptStructuredReply);
  EXPECT_EQ(replies.back().type, kRepAck);
  EXPECT_EQ(replies.back().option, kOptGo);
}

}  // namespace
}  // namespace pollux::nbd
