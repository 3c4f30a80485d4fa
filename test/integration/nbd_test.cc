// pollux-tgt's NBD server against real NBD clients (qemu-img, qemu-io, fio's nbd engine,
// nbdinfo) and against raw clients that misbehave: each gets an error reply or is cut off with
// a log line, and the target goes on serving the others.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "process.h"
#include "raw_client.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kExportBytes = 16 << 20;

// Wire constants (nbd/nbd_protocol.h is private to the library; a client of the protocol
// spells them out, as every NBD client does).
constexpr uint64_t kIHaveOpt = 0x49484156454f5054;
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;
constexpr uint32_t kOptGo = 7;
constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepErrUnsup = (1u << 31) | 1;
constexpr uint16_t kCmdRead = 0, kCmdWrite = 1, kCmdTrim = 4;

void Put(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t Get(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

// An NBD client by hand: the handshake, then requests with simple replies.
class RawNbdClient {
 public:
  explicit RawNbdClient(const std::string& socket) : raw_(socket) { raw_.SetTimeout(20); }
  bool connected() const { return raw_.connected(); }

  // Reads `n` bytes; empty on EOF or timeout.
  std::string Read(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = recv(raw_.fd(), out.data() + got, n - got, 0);
      if (r <= 0) return "";
      got += static_cast<size_t>(r);
    }
    return out;
  }
  bool Send(const std::string& bytes) { return raw_.Send(bytes); }
  // True when the server closed the connection (EOF within the timeout).
  bool Closed() {
    char byte;
    return recv(raw_.fd(), &byte, 1, 0) == 0;
  }

  std::string Option(uint32_t option, const std::string& data) {
    std::string s;
    Put(s, kIHaveOpt, 8);
    Put(s, option, 4);
    Put(s, data.size(), 4);
    return s + data;
  }
  // Reads one option reply: its type and payload.
  std::pair<uint32_t, std::string> OptionReply() {
    std::string header = Read(20);
    if (header.empty()) return {0, ""};
    return {static_cast<uint32_t>(Get(header, 12, 4)), Read(Get(header, 16, 4))};
  }

  // Greeting, flags, GO `name`; true once in transmission.
  bool Go(const std::string& name) {
    std::string greeting = Read(18);
    if (greeting.size() != 18) return false;
    std::string data;
    Put(data, name.size(), 4);
    data += name;
    Put(data, 0, 2);
    std::string flags;
    Put(flags, 3, 4);  // fixed newstyle, no zeroes
    Send(flags + Option(kOptGo, data));
    for (;;) {
      auto [type, payload] = OptionReply();
      if (type == kRepAck) return true;
      if (type != 3) return false;  // not NBD_REP_INFO: an error
    }
  }

  void Request(uint16_t type, uint64_t offset, uint32_t length, uint64_t cookie,
               const std::string& payload = "", uint16_t flags = 0) {
    std::string s;
    Put(s, kRequestMagic, 4);
    Put(s, flags, 2);
    Put(s, type, 2);
    Put(s, cookie, 8);
    Put(s, offset, 8);
    Put(s, length, 4);
    Send(s + payload);
  }
  // Reads a simple reply: its error (-1 when none came) and checks the cookie.
  int64_t Reply(uint64_t cookie, uint32_t data_length = 0, std::string* data = nullptr) {
    std::string header = Read(16);
    if (header.size() != 16 || Get(header, 0, 4) != kSimpleReplyMagic) return -1;
    EXPECT_EQ(Get(header, 8, 8), cookie);
    uint32_t error = static_cast<uint32_t>(Get(header, 4, 4));
    if (error == 0 && data_length != 0) {
      std::string d = Read(data_length);
      if (data != nullptr) *data = d;
    }
    return error;
  }

 private:
  RawClient raw_;
};

class NbdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = std::make_unique<Target>(std::vector<std::string>{"--cpus", "0-1"});
    ASSERT_TRUE(target_->running()) << target_->Stderr();
    nbd_socket_ = dir_.File("nbd.sock");
    Call({"bdev_malloc_create", "--name", "Malloc0", "--num-blocks",
          std::to_string(kExportBytes / 512), "--block-size", "512"});
    json endpoint = Call({"nbd_server_start", "--socket", nbd_socket_});
    EXPECT_EQ(endpoint["socket"], nbd_socket_);
    Call({"nbd_export_add", "--bdev-name", "Malloc0", "--name", "disk"});
    Call({"nbd_export_add", "--bdev-name", "Malloc0", "--name", "ro", "--readonly", "true"});
  }

  json Call(const std::vector<std::string>& args) {
    RunResult r = target_->Rpc(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    return json::parse(r.out, nullptr, false);
  }
  RunResult CallFails(const std::vector<std::string>& args) {
    RunResult r = target_->Rpc(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << " should fail: " << r.out;
    return r;
  }
  std::string Uri(const std::string& name) {
    return "nbd+unix:///" + name + "?socket=" + nbd_socket_;
  }
  RunResult QemuIo(const std::string& name, const std::vector<std::string>& commands) {
    std::vector<std::string> argv = {"/usr/bin/qemu-io", "-f", "raw"};
    for (const std::string& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    argv.push_back(Uri(name));
    return RunProgram(argv, std::chrono::seconds(60));
  }
  // A client that reads and writes still works after whatever a test did.
  void ExpectStillServing() {
    RunResult r = QemuIo("disk", {"write -P 0x33 4096 4096", "read -P 0x33 4096 4096"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("verification failed"))) << r.out;
  }

  TempDir dir_;
  std::unique_ptr<Target> target_;
  std::string nbd_socket_;
};

TEST_F(NbdTest, QemuImgConvertsAnImageInAndOutUnchanged) {
  std::string image(kExportBytes, '\0');
  std::mt19937_64 random(7);
  for (size_t i = 0; i < image.size(); i += 8) {
    uint64_t v = random();
    std::memcpy(image.data() + i, &v, 8);
  }
  std::string in = dir_.Write("in.raw", image);
  RunResult put =
      RunProgram({"/usr/bin/qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", in, Uri("disk")});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  std::string out = dir_.File("out.raw");
  RunResult get =
      RunProgram({"/usr/bin/qemu-img", "convert", "-f", "raw", "-O", "raw", Uri("disk"), out});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_TRUE(ReadFile(out) == image) << "the image came back different";
  RunResult compare =
      RunProgram({"/usr/bin/qemu-img", "compare", "-f", "raw", "-F", "raw", in, Uri("ro")});
  EXPECT_EQ(compare.exit_code, 0) << Describe(compare);
}

TEST_F(NbdTest, NbdinfoListsAndNbdcopyCopiesOverManyConnections) {
  RunResult list = RunProgram({"/usr/bin/nbdinfo", "--list", "--json", Uri("")});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  json listed = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(listed.contains("exports")) << list.out;
  ASSERT_EQ(listed["exports"].size(), 2u) << list.out;
  json disk = listed["exports"][0];
  EXPECT_EQ(disk["export-name"], "disk");
  EXPECT_EQ(disk["export-size"], kExportBytes);
  EXPECT_EQ(disk["block_size_minimum"], 512);
  EXPECT_EQ(disk["can_multi_conn"], true);
  EXPECT_EQ(listed["exports"][1]["is_read_only"], true);

  std::string image(kExportBytes, '\0');
  std::mt19937_64 random(11);
  for (size_t i = 0; i < image.size(); i += 4096) {
    uint64_t v = random();
    std::memcpy(image.data() + i + (v % 4000), &v, 8);  // sparse-looking, never all zero
  }
  std::string in = dir_.Write("in.raw", image);
  // nbdcopy opens several connections (the export offers multi-conn) with many requests each.
  RunResult put =
      RunProgram({"/usr/bin/nbdcopy", "--connections=4", "--requests=32", in, Uri("disk")});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  std::string out = dir_.File("out.raw");
  RunResult get = RunProgram({"/usr/bin/nbdcopy", Uri("ro"), out});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_TRUE(ReadFile(out) == image) << "the copy came back different";
}

TEST_F(NbdTest, QemuIoAtOddOffsetsAndLengthsWithTrimAndZeroes) {
  RunResult r = QemuIo(
      "disk", {"write -P 0xa5 1000 3001",  // read-modify-write in qemu
               "read -P 0xa5 1000 3001", "read -P 0 0 1000", "write -P 0x11 65536 131072",
               "discard 65536 65536",
               "read -P 0 65536 65536",  // malloc: unmapped reads zeroes
               "read -P 0x11 131072 65536", "write -z 200000 70000", "read -P 0 200000 70000",
               "aio_write -P 0x77 1048576 512", "aio_flush", "read -P 0x77 1048576 512", "flush"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, Not(HasSubstr("verification failed"))) << r.out;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("error"))) << Describe(r);
}

TEST_F(NbdTest, FioVerifiesFromFourClientsAtOnce) {
  RunResult r = RunProgram({"/usr/bin/fio", "--name=nbd", "--ioengine=nbd", "--uri=" + Uri("disk"),
                            "--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=4", "--size=4M",
                            "--offset_increment=4M", "--verify=crc32c", "--verify_fatal=1",
                            "--do_verify=1", "--group_reporting", "--output-format=json"},
                           std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json result = json::parse(r.out.substr(r.out.find('{')), nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << r.out;
  EXPECT_EQ(result["jobs"][0]["error"], 0) << r.out;
  EXPECT_GT(result["jobs"][0]["write"]["io_bytes"].get<uint64_t>(), 0u);
}

TEST_F(NbdTest, ExportsAreListedWithTheirClients) {
  json exports = Call({"nbd_get_exports"});
  ASSERT_EQ(exports.size(), 2u) << exports.dump();
  EXPECT_EQ(exports[0]["name"], "disk");
  EXPECT_EQ(exports[0]["bdev_name"], "Malloc0");
  EXPECT_EQ(exports[1]["readonly"], true);
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("disk"));
  json one = Call({"nbd_get_exports", "--name", "disk"});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["clients"].size(), 1u) << one.dump();
  json saved = Call({"save_config"});
  EXPECT_THAT(saved.dump(), HasSubstr("\"nbd_server_start\""));
  EXPECT_THAT(saved.dump(), HasSubstr("\"nbd_export_add\""));
}

TEST_F(NbdTest, BadRpcCallsGetClearErrors) {
  EXPECT_THAT(CallFails({"nbd_server_start", "--socket", dir_.File("other.sock")}).err,
              HasSubstr("runs already"));
  EXPECT_THAT(CallFails({"nbd_export_add", "--bdev-name", "Nope"}).err, HasSubstr("Nope"));
  EXPECT_THAT(CallFails({"nbd_export_add", "--bdev-name", "Malloc0", "--name", "disk"}).err,
              HasSubstr("exists"));
  EXPECT_THAT(CallFails({"nbd_export_remove", "--name", "nope"}).err, HasSubstr("nope"));
  EXPECT_THAT(CallFails({"nbd_get_exports", "--name", "nope"}).err, HasSubstr("nope"));
  Call({"nbd_server_stop"});
  EXPECT_THAT(CallFails({"nbd_server_stop"}).err, HasSubstr("no NBD server"));
  EXPECT_THAT(CallFails({"nbd_export_add", "--bdev-name", "Malloc0"}).err,
              HasSubstr("nbd_server_start first"));
  EXPECT_THAT(CallFails({"nbd_server_start", "--socket", "x", "--port", "1"}).err,
              HasSubstr("either"));
}

// SPDK's kernel-NBD methods: refused with directions, or answered as with no disk started.
TEST_F(NbdTest, SpdkKernelNbdMethodsPointToTheExports) {
  RunResult start =
      CallFails({"nbd_start_disk", "--bdev-name", "Malloc0", "--nbd-device", "/dev/nbd3"});
  EXPECT_THAT(start.err, HasSubstr("/dev/nbd3"));
  EXPECT_THAT(start.err, HasSubstr("nbd_export_add --bdev-name Malloc0"));
  EXPECT_THAT(CallFails({"nbd_stop_disk", "--nbd-device", "/dev/nbd3"}).err,
              HasSubstr("no kernel NBD disk /dev/nbd3"));
  EXPECT_EQ(Call({"nbd_get_disks"}), json::array());
}

TEST_F(NbdTest, UnknownOptionIsUnsupportedAndTheHandshakeGoesOn) {
  RawNbdClient client(nbd_socket_);
  ASSERT_EQ(client.Read(18).size(), 18u);
  std::string flags;
  Put(flags, 3, 4);
  client.Send(flags + client.Option(4242, "junk"));
  EXPECT_EQ(client.OptionReply().first, kRepErrUnsup);
  std::string data;
  Put(data, 4, 4);
  data += "disk";
  Put(data, 0, 2);
  client.Send(client.Option(kOptGo, data));
  uint32_t type = 0;
  while ((type = client.OptionReply().first) == 3) {
  }
  EXPECT_EQ(type, kRepAck);
}

TEST_F(NbdTest, BadRequestsGetErrorsAndTheConnectionGoesOn) {
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("disk"));
  client.Request(42, 0, 512, 1);
  EXPECT_EQ(client.Reply(1), 22) << "unknown command: EINVAL";
  client.Request(kCmdRead, kExportBytes, 512, 2);
  EXPECT_EQ(client.Reply(2), 22) << "read past the end: EINVAL";
  client.Request(kCmdWrite, kExportBytes - 512, 1024, 3, std::string(1024, 'x'));
  EXPECT_EQ(client.Reply(3), 28) << "write past the end: ENOSPC";
  client.Request(kCmdRead, 0, 64 << 20, 4);
  EXPECT_EQ(client.Reply(4), 75) << "read over the maximum: EOVERFLOW";
  client.Request(kCmdWrite, 0, 33 << 20, 5, std::string(33 << 20, 'y'));
  EXPECT_EQ(client.Reply(5), 75) << "write over the maximum: EOVERFLOW, payload dropped";
  client.Request(kCmdRead, 100, 512, 6);
  EXPECT_EQ(client.Reply(6), 22) << "not in whole blocks: EINVAL";
  // The stream is still in step: a write and a read of it.
  client.Request(kCmdWrite, 8192, 512, 7, std::string(512, 'z'));
  EXPECT_EQ(client.Reply(7), 0);
  std::string data;
  client.Request(kCmdRead, 8192, 512, 8);
  ASSERT_EQ(client.Reply(8, 512, &data), 0);
  EXPECT_EQ(data, std::string(512, 'z'));
}

TEST_F(NbdTest, ReadOnlyExportRefusesChanges) {
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("ro"));
  client.Request(kCmdWrite, 0, 512, 1, std::string(512, 'x'));
  EXPECT_EQ(client.Reply(1), 1) << "EPERM";
  client.Request(kCmdTrim, 0, 512, 2);
  EXPECT_EQ(client.Reply(2), 22) << "trim is not offered read-only";
  client.Request(kCmdRead, 0, 512, 3);
  EXPECT_EQ(client.Reply(3, 512), 0);
}

TEST_F(NbdTest, BadMagicIsCutOffWithALogLine) {
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("disk"));
  client.Send(std::string(28, '\x7f'));
  EXPECT_TRUE(client.Closed());
  EXPECT_THAT(target_->Stderr(), HasSubstr("without the NBD request magic"));
  ExpectStillServing();
}

TEST_F(NbdTest, ClientLeavingMidRequestLosesNothingElse) {
  {
    RawNbdClient client(nbd_socket_);
    ASSERT_TRUE(client.Go("disk"));
    client.Request(kCmdWrite, 0, 1 << 20, 1, std::string(300000, 'h'));
  }
  {
    RawNbdClient client(nbd_socket_);
    ASSERT_TRUE(client.Go("disk"));
    for (int i = 0; i < 64; ++i) client.Request(kCmdRead, 0, 65536, i);  // replies never read
  }
  ExpectStillServing();
  EXPECT_THAT(target_->Stderr(), HasSubstr("in the middle of a write"));
  EXPECT_EQ(Call({"nbd_get_exports", "--name", "disk"})[0]["clients"].size(), 0u);
}

TEST_F(NbdTest, ConnectionsBeyondTheLimitAreRefused) {
  Call({"nbd_server_stop"});
  Call({"nbd_server_start", "--socket", nbd_socket_, "--max-connections", "2"});
  Call({"nbd_export_add", "--bdev-name", "Malloc0", "--name", "disk"});
  RawNbdClient first(nbd_socket_), second(nbd_socket_);
  ASSERT_TRUE(first.Go("disk"));
  ASSERT_TRUE(second.Go("disk"));
  RawNbdClient third(nbd_socket_);
  EXPECT_TRUE(third.Closed());
  EXPECT_THAT(target_->Stderr(), HasSubstr("max_connections"));
}

TEST_F(NbdTest, RemovingTheExportOrItsBdevDisconnectsItsClients) {
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("ro"));
  Call({"nbd_export_remove", "--name", "ro"});
  EXPECT_TRUE(client.Closed());
  RawNbdClient other(nbd_socket_);
  ASSERT_TRUE(other.Go("disk"));
  Call({"bdev_malloc_delete", "--name", "Malloc0"});
  EXPECT_TRUE(other.Closed());
  EXPECT_EQ(Call({"nbd_get_exports"}).size(), 0u);
}

TEST_F(NbdTest, StopDisconnectsEveryoneAndTheTargetExitsCleanly) {
  RawNbdClient client(nbd_socket_);
  ASSERT_TRUE(client.Go("disk"));
  Call({"nbd_server_stop"});
  EXPECT_TRUE(client.Closed());
  Call({"nbd_server_start", "--socket", nbd_socket_});
  Call({"nbd_export_add", "--bdev-name", "Malloc0", "--name", "disk"});
  RawNbdClient again(nbd_socket_);
  ASSERT_TRUE(again.Go("disk"));
  EXPECT_EQ(target_->Signal(SIGTERM), 0) << target_->Stderr();
}

// An SPDK config that attaches a kernel /dev/nbdX does not start half configured: the target
// exits with the directions of nbd_start_disk.
TEST(NbdConfigTest, SpdkKernelNbdDiskInAConfigIsAClearError) {
  TempDir dir;
  json config = {{"subsystems",
                  {{{"subsystem", "nbd"},
                    {"config",
                     {{{"method", "nbd_start_disk"},
                       {"params", {{"bdev_name", "Malloc0"}, {"nbd_device", "/dev/nbd0"}}}}}}}}}};
  RunResult r = RunProgram({TgtPath(), "--cpus", "0", "-r", dir.File("rpc.sock"), "-c",
                            dir.Write("spdk.json", config.dump())});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("nbd_start_disk"));
  EXPECT_THAT(r.err, HasSubstr("nbd_server_start"));
}

TEST(NbdConfigTest, ConfigReplaysAndSaveConfigWritesItBack) {
  TempDir dir;
  std::string socket = dir.File("nbd.sock");
  json config = {{"subsystems",
                  {{{"subsystem", "bdev"},
                    {"config",
                     {{{"method", "bdev_malloc_create"},
                       {"params", {{"name", "M0"}, {"num_blocks", 8192}, {"block_size", 4096}}}}}}},
                   {{"subsystem", "nbd"},
                    {"config",
                     {{{"method", "nbd_server_start"}, {"params", {{"socket", socket}}}},
                      {{"method", "nbd_export_add"},
                       {"params",
                        {{"bdev_name", "M0"},
                         {"name", "m"},
                         {"readonly", true},
                         {"description", "four KiB blocks"}}}}}}}}}};
  std::string path = dir.Write("nbd.json", config.dump());
  std::string saved;
  {
    Target target({"--cpus", "0", "-c", path});
    ASSERT_TRUE(target.running()) << target.Stderr();
    RunResult info = RunProgram(
        {"/usr/bin/qemu-img", "info", "--output=json", "nbd+unix:///m?socket=" + socket});
    ASSERT_EQ(info.exit_code, 0) << Describe(info);
    EXPECT_EQ(json::parse(info.out)["virtual-size"], 8192 * 4096);
    RunResult r = target.Rpc({"save_config"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    saved = dir.Write("saved.json", r.out);
  }
  Target again({"--cpus", "0", "-c", saved});
  ASSERT_TRUE(again.running()) << again.Stderr();
  RunResult exports = again.Rpc({"nbd_get_exports"});
  ASSERT_EQ(exports.exit_code, 0) << exports.err;
  json list = json::parse(exports.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["readonly"], true);
  EXPECT_EQ(list[0]["description"], "four KiB blocks");
}

}  // namespace
}  // namespace pollux::testing
