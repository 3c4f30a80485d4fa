// RpcClient (pollux-rpc's transport) against a real RpcServer polled by an "app thread".
#include "rpc_client.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <thread>
#include <vector>

#include "pollux/rpc/server.h"
#include "rpc_test_util.h"

namespace pollux::rpc {
namespace {

using test_util::TempDir;

// A server whose app thread polls it until the fixture ends. Handlers run on that thread.
class RpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        methods_.Register("echo", [](const Json& params, RpcResponder r) { r.Result(params); })
            .ok());
    ASSERT_TRUE(methods_
                    .Register("fail",
                              [](const Json&, RpcResponder r) {
                                r.Reply(absl::NotFoundError("bdev \"x\" not found"));
                              })
                    .ok());
    // Keeps the responder: the client waits until its deadline.
    ASSERT_TRUE(methods_
                    .Register("hang", [this](const Json&,
                                             RpcResponder r) { kept_.push_back(std::move(r)); })
                    .ok());
    path_ = dir_.Path("rpc.sock");
    absl::StatusOr<std::unique_ptr<RpcServer>> server = RpcServer::Listen(path_, methods_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    app_thread_ = std::thread([this] {
      while (!stop_) {
        if (!server_->Poll()) {
          pollfd pfd{server_->fd(), POLLIN, 0};
          ::poll(&pfd, 1, 5);
        }
      }
    });
  }

  void TearDown() override {
    stop_ = true;
    if (app_thread_.joinable()) app_thread_.join();
    kept_.clear();
    server_.reset();
  }

  static RpcClient::Clock::time_point Soon(int seconds = 60) {
    return RpcClient::Clock::now() + std::chrono::seconds(seconds);
  }

  TempDir dir_;
  std::string path_;
  MethodRegistry methods_;
  std::vector<RpcResponder> kept_;
  std::unique_ptr<RpcServer> server_;
  std::atomic<bool> stop_{false};
  std::thread app_thread_;
};

TEST_F(RpcClientTest, ResultAndError) {
  absl::StatusOr<RpcClient> client = RpcClient::Connect(path_, Soon());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<RpcReply> reply = client->Call("echo", Json({{"a", 1}}), Soon());
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->ok);
  EXPECT_EQ(reply->result, Json({{"a", 1}}));

  reply = client->Call("fail", nullptr, Soon());
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->code, -19);
  EXPECT_EQ(reply->message, "bdev \"x\" not found");

  reply = client->Call("nope", nullptr, Soon());
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->code, kMethodNotFound);
}

TEST_F(RpcClientTest, ConnectFailureNamesTheSocket) {
  std::string missing = dir_.Path("missing.sock");
  absl::StatusOr<RpcClient> client = RpcClient::Connect(missing, Soon());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.status().message(),
            "cannot connect to " + missing + ": No such file or directory");
}

TEST_F(RpcClientTest, DeadlineWithoutReply) {
  absl::StatusOr<RpcClient> client = RpcClient::Connect(path_, Soon());
  ASSERT_TRUE(client.ok());
  // "hang" never answers, so only the deadline ends the wait (its length does not matter).
  absl::StatusOr<RpcReply> reply =
      client->Call("hang", nullptr, RpcClient::Clock::now() + std::chrono::milliseconds(50));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
}

TEST_F(RpcClientTest, OversizedRequestGetsTheServersError) {
  absl::StatusOr<RpcClient> client = RpcClient::Connect(path_, Soon());
  ASSERT_TRUE(client.ok());
  absl::StatusOr<RpcReply> reply =
      client->Call("echo", Json({{"s", std::string(2 * kMaxMessageBytes, 'z')}}), Soon());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code, kInvalidRequest);
  EXPECT_NE(reply->message.find("the limit is 1048576 bytes"), std::string::npos) << reply->message;
}

}  // namespace
}  // namespace pollux::rpc
