// Bad input on the command line and over RPC: a clear error, and the target keeps serving.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"
#include "raw_client.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(TargetBadInput, UnknownMethod) {
  Target target({"--cpus", "0"});
  RunResult r = target.Rpc({"no_such_method"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("-32601"));
  EXPECT_THAT(r.err, HasSubstr("no_such_method"));
}

TEST(TargetBadInput, BadParamsNameTheParameter) {
  Target target({"--cpus", "0"});
  RunResult r = target.Rpc({"framework_set_mode", "--mode", "poll", "--turbo", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("-32602"));
  EXPECT_THAT(r.err, HasSubstr("turbo"));
  r = target.Rpc({"framework_set_mode"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("mode"));
}

TEST(TargetBadInput, InvalidJsonAndOversizedRequest) {
  Target target({"--cpus", "0-1"});
  {
    RawClient client(target.socket());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":]"));
    json reply = client.ReadReply();
    EXPECT_EQ(reply["error"]["code"], -32700) << reply.dump();
  }
  {
    RawClient client(target.socket());
    ASSERT_TRUE(client.connected());
    std::string huge = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"x\",\"params\":{\"a\":\"" +
                       std::string(2 << 20, 'a') + "\"}}";
    client.Send(huge);  // the server may close before it has read everything
    json reply = client.ReadReply();
    if (!reply.is_null()) {
      EXPECT_EQ(reply["error"]["code"], -32600) << reply.dump();
    }
    EXPECT_TRUE(reply.is_null() || client.Closed());
  }
  // Unharmed: it still answers.
  RunResult r = target.Rpc({"pollux_get_version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(TargetBadInput, PipelinedRequestsInOneWrite) {
  Target target({"--cpus", "0"});
  RawClient client(target.socket());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(
      R"({"jsonrpc":"2.0","id":1,"method":"pollux_get_version"}{"jsonrpc":"2.0","id":2,)"
      R"("method":"log_get_level"})"));
  json first = client.ReadReply();
  json second = client.ReadReply();
  std::set<int> ids = {first["id"].get<int>(), second["id"].get<int>()};
  EXPECT_EQ(ids, (std::set<int>{1, 2}));
}

TEST(TargetBadInput, SocketHeldByLiveTargetIsRefused) {
  Target first({"--cpus", "0"});
  ASSERT_TRUE(first.running());
  RunResult second = RunProgram({TgtPath(), "--cpus", "1", "-r", first.socket()});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("in use"));
  EXPECT_THAT(second.err, HasSubstr(first.socket()));
  // The refused start did not take the socket away from the first target.
  EXPECT_EQ(first.Rpc({"pollux_get_version"}).exit_code, 0);
}

TEST(TargetBadInput, StaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir.File("stale.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // a dead target's socket file: nobody listens
  ASSERT_TRUE(std::filesystem::exists(path));
  Target target({"--cpus", "0", "-r", path}, path);
  ASSERT_TRUE(target.running()) << target.Stderr();
  EXPECT_EQ(target.Rpc({"pollux_get_version"}).exit_code, 0);
}

TEST(TargetBadInput, BadCores) {
  RunResult r = RunProgram({TgtPath(), "--cpus", "999"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("999"));
  r = RunProgram({TgtPath(), "--cpus", "0-4096"});
  EXPECT_NE(r.exit_code, 0);
  r = RunProgram({TgtPath(), "-m", "0xzz"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("0xzz"));
  r = RunProgram({TgtPath(), "--mode", "turbo"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("turbo"));
}

TEST(TargetBadInput, HugepagesWithoutReservationFailsClearly) {
  TempDir dir;
  RunResult r = RunProgram({TgtPath(), "--cpus", "0", "--hugepages", "-r", dir.File("s.sock")});
  if (r.exit_code == 0) GTEST_SKIP() << "this machine has hugepages";
  EXPECT_THAT(r.err, HasSubstr("DPDK environment"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(TargetBadInput, HelpDocumentsEveryOption) {
  RunResult r = RunProgram({TgtPath(), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--config", "--cpus", "--rpc-socket", "--mode", "--log-level",
                             "--mem-size", "--hugepages", "--spin-window-us",
                             "--rpc-max-request-size", "--rpc-max-connections",
                             "--rpc-request-timeout"}) {
    EXPECT_THAT(r.out, HasSubstr(option));
  }
}

}  // namespace
}  // namespace pollux::testing
