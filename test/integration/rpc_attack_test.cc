// Clients that attack the RPC server of a target that is doing I/O: a 100 MB request, a client
// that never reads its replies, half a request and then silence, a thousand connections at
// once, bytes that are not UTF-8, nesting 100,000 levels deep. Each gets an error or is cut off
// with a log line; meanwhile the target answers another client, its I/O goes on, its memory
// stays put, and its verify workload ends clean. The target is pollux-perf (pollux-tgt's app
// and RPC server, with I/O of its own) with its RPC server's limits on the command line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "perf_runner.h"
#include "process.h"
#include "raw_client.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}}]}]})";

std::string Request(int id, const std::string& method, const std::string& params_text = "") {
  std::string text =
      R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":")" + method + "\"";
  if (!params_text.empty()) text += R"(,"params":)" + params_text;
  return text + "}\n";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

class RpcAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ASan holds freed memory in quarantine (256 MiB by default), which the target's RSS would
    // show as growth whatever it frees; a small one keeps the memory check meaningful.
    if (kAddressSanitizer) {
      const char* options = std::getenv("ASAN_OPTIONS");
      const std::string joined =
          std::string(options != nullptr ? options : "") + ":quarantine_size_mb=8";
      ::setenv("ASAN_OPTIONS", joined.c_str(), 1);
    }
  }

  // pollux-perf verifying a malloc bdev for `seconds`, serving RPC with a 2 s request timeout.
  void StartTarget(int seconds = 5) {
    socket_ = dir_.File("rpc.sock");
    target_ = std::make_unique<Process>(std::vector<std::string>{PerfPath(),
                                                                 "-c",
                                                                 dir_.Write("config.json", kConfig),
                                                                 "-b",
                                                                 "Malloc0",
                                                                 "-w",
                                                                 "verify",
                                                                 "-q",
                                                                 "4",
                                                                 "-o",
                                                                 "4096",
                                                                 "-t",
                                                                 std::to_string(seconds),
                                                                 "-m",
                                                                 "0",
                                                                 "--mode",
                                                                 "interrupt",
                                                                 "--json",
                                                                 "-r",
                                                                 socket_,
                                                                 "--rpc-request-timeout",
                                                                 "2",
                                                                 "--rpc-max-connections",
                                                                 "64"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && target_->running()) {
      RawClient probe(socket_);
      if (probe.connected()) {
        probe.SetTimeout(10);
        // Wait for the job's first I/O, so that "I/O goes on" compares running states.
        if (ReadOps() > 0) {
          rss_at_start_kb_ = RssKb();
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "pollux-perf did not serve RPC with its job running; stderr:\n" << target_->Err();
  }

  // The job's reads so far, from a well-behaved client (0 if it got no answer).
  uint64_t ReadOps() {
    RawClient client(socket_);
    client.SetTimeout(10);
    if (!client.connected() || !client.Send(Request(1, "bdev_get_iostat"))) return 0;
    json reply = client.ReadReply();
    if (!reply.is_object() || !reply.contains("result")) return 0;
    return reply["result"]["bdevs"][0].value("num_read_ops", uint64_t{0});
  }

  // While an attack is on: another client is answered and the job's reads go on.
  void ExpectServingAndDoingIo() {
    const uint64_t before = ReadOps();
    ASSERT_GT(before, 0u) << "a well-behaved client got no answer";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_GT(ReadOps(), before) << "the job's I/O stopped";
  }

  uint64_t RssKb() const {
    std::ifstream status("/proc/" + std::to_string(target_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    }
    return 0;
  }

  // The job ended with every block verified, and the target's memory grew by less than
  // `max_growth_mb` over the attack.
  void ExpectCleanEnd(uint64_t max_growth_mb = 48) {
    const uint64_t rss_kb = RssKb();
    EXPECT_LT(rss_kb, rss_at_start_kb_ + max_growth_mb * 1024)
        << "RSS grew from " << rss_at_start_kb_ << " kB to " << rss_kb << " kB";
    ASSERT_EQ(target_->Wait(std::chrono::seconds(60)), 0) << target_->Err();
  }

  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Process> target_;
  uint64_t rss_at_start_kb_ = 0;
};

TEST_F(RpcAttackTest, RequestOf100MegabytesIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartTarget());
  RawClient attacker(socket_);
  attacker.SetTimeout(10);
  // The server stops reading once the request passes its limit: what it has not read is
  // refused by the socket (EPIPE, ECONNRESET) or left in it.
  std::string chunk(1 << 20, 'a');
  attacker.Send(R"({"jsonrpc":"2.0","id":1,"method":"bdev_get_bdevs","params":{"name":")");
  size_t sent_mb = 0;
  for (; sent_mb < 100; ++sent_mb) {
    if (!attacker.Send(chunk)) break;
  }
  json reply = attacker.ReadReply();
  if (!reply.is_null()) {
    EXPECT_THAT(reply.dump(), HasSubstr("request too large")) << reply.dump();
  }
  EXPECT_TRUE(attacker.Closed()) << "the connection of a request over the limit stays open";
  EXPECT_LT(sent_mb, 100u) << "the server read 100 MB of one request";
  ExpectServingAndDoingIo();
  ExpectCleanEnd();
  EXPECT_THAT(target_->Err(), HasSubstr("refused"));
}

TEST_F(RpcAttackTest, ClientThatNeverReadsItsRepliesStopsBeingRead) {
  ASSERT_NO_FATAL_FAILURE(StartTarget());
  RawClient attacker(socket_);
  attacker.SetTimeout(2);
  // 20,000 requests (tens of MB of replies) and not a byte read: once its replies fill the
  // server's limit the server stops reading it, the sockets fill, and the send blocks.
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += Request(i, "bdev_get_bdevs");
  int sent = 0;
  for (; sent < 200; ++sent) {
    if (!attacker.Send(burst)) break;
  }
  EXPECT_LT(sent, 200) << "the server kept reading a client that reads none of its replies";
  ExpectServingAndDoingIo();
  ExpectCleanEnd();
}

TEST_F(RpcAttackTest, HalfARequestThenSilenceIsCutOffAtTheTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartTarget());
  RawClient attacker(socket_);
  attacker.SetTimeout(10);
  ASSERT_TRUE(attacker.Send(R"({"jsonrpc":"2.0","id":1,"method":"bdev_get)"));
  ExpectServingAndDoingIo();
  const auto start = std::chrono::steady_clock::now();
  json reply = attacker.ReadReply();  // the 2 s timeout's error
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(reply.is_object()) << "no answer within 10 s";
  EXPECT_EQ(reply["error"]["code"], -32600) << reply.dump();
  EXPECT_THAT(reply["error"]["message"].get<std::string>(), HasSubstr("not completed within 2"));
  EXPECT_TRUE(attacker.Closed());
  EXPECT_LT(waited, 9.0);
  ExpectCleanEnd();
  EXPECT_THAT(target_->Err(), HasSubstr("a request not completed within 2 s; closed"));
}

TEST_F(RpcAttackTest, ThousandConnectionsAtOnceBeyondTheLimitAreRefused) {
  rlimit files;
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = std::min<rlim_t>(files.rlim_max, 4096);
  setrlimit(RLIMIT_NOFILE, &files);
  const int attackers = static_cast<int>(std::min<rlim_t>(1000, files.rlim_cur - 64));
  ASSERT_NO_FATAL_FAILURE(StartTarget(6));
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < attackers; ++i) {
    clients.push_back(std::make_unique<RawClient>(socket_));
    clients.back()->SetTimeout(5);
  }
  // Each is either served (one of the first 64) or told so and closed.
  int served = 0, refused = 0;
  for (auto& client : clients) {
    if (!client->connected()) {
      ++refused;  // the listen backlog was full
      continue;
    }
    client->Send(Request(7, "framework_get_reactors"));
    json reply = client->ReadReply();
    if (reply.is_object() && reply.contains("result")) {
      ++served;
    } else {
      ASSERT_TRUE(reply.is_null() || reply["error"]["code"] == -32000) << reply.dump();
      if (reply.is_object()) {
        EXPECT_THAT(reply["error"]["message"].get<std::string>(),
                    HasSubstr("too many connections"));
      }
      EXPECT_TRUE(client->Closed());
      ++refused;
    }
  }
  EXPECT_LE(served, 64);
  EXPECT_GT(served, 0);
  EXPECT_EQ(served + refused, attackers);
  clients.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server sees them go
  ExpectServingAndDoingIo();
  ExpectCleanEnd();
  EXPECT_THAT(target_->Err(), HasSubstr("refused"));
}

TEST_F(RpcAttackTest, BytesThatAreNotUtf8GetErrorsInValidJson) {
  ASSERT_NO_FATAL_FAILURE(StartTarget());
  RawClient attacker(socket_);
  attacker.SetTimeout(10);
  const std::vector<std::string> requests = {
      Request(1, "bdev_get_bdevs", "{\"name\":\"Malloc\xff\xfe\"}"),
      Request(2, "bdev_\xc3\x28get_bdevs"),
      Request(3, "bdev_malloc_create",
              "{\"name\":\"M\xed\xa0\x80\",\"num_blocks\":8,\"block_size\":512}"),
      Request(4, "bdev_get_bdevs", "{\"n\xf0\x28\x8c\xbc\":1}"),
      "{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"framework_get_reactors\"}\n",
  };
  for (const std::string& request : requests) {
    ASSERT_TRUE(attacker.Send(request));
    json reply = attacker.ReadReply();
    ASSERT_TRUE(reply.is_object()) << "no valid JSON reply to " << request;
    EXPECT_TRUE(reply.contains("error")) << reply.dump();
  }
  ExpectServingAndDoingIo();
  ExpectCleanEnd();
}

TEST_F(RpcAttackTest, NestingOf100000LevelsGetsAnError) {
  ASSERT_NO_FATAL_FAILURE(StartTarget());
  const int depth = 100'000;
  const std::vector<std::string> requests = {
      Request(1, "bdev_get_bdevs",
              "{\"name\":" + std::string(depth, '[') + std::string(depth, ']') + "}"),
      Request(2, "bdev_get_bdevs",
              [&] {
                std::string nested;
                for (int i = 0; i < depth; ++i) nested += "{\"a\":";
                return nested + "1" + std::string(depth, '}');
              }()),
      std::string(depth, '[') + std::string(depth, ']') + "\n",
      // Never closed: the request is cut off at the timeout instead.
      std::string(depth, '['),
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    RawClient attacker(socket_);
    attacker.SetTimeout(10);
    ASSERT_TRUE(attacker.Send(requests[i]));
    json reply = attacker.ReadReply();
    ASSERT_TRUE(reply.is_object()) << "no answer to nesting " << i;
    EXPECT_TRUE(reply.contains("error")) << reply.dump();
  }
  ExpectServingAndDoingIo();
  ExpectCleanEnd();
}

}  // namespace
}  // namespace pollux::testing
