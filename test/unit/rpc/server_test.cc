// RpcServer over a real Unix socket in a temporary directory. The test thread drives the server
// with Poll(); clients are non-blocking sockets on the same thread (deterministic partial
// reads and writes), or blocking sockets on their own threads (many clients at once).
#include "pollux/rpc/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pollux/rpc/json_rpc.h"
#include "rpc_test_util.h"

namespace pollux::rpc {
namespace {

using test_util::TempDir;

int ConnectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string Request(const Json& id, const std::string& method, const Json& params = nullptr) {
  Json request = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) request["params"] = params;
  return request.dump();
}

// A non-blocking client socket; every call returns at once.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(ConnectTo(path)) {
    if (fd_ >= 0) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Bytes written (0 when the socket is full), or -1 when the server has closed.
  ssize_t SendSome(std::string_view data) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) return n;
    return errno == EAGAIN ? 0 : -1;
  }

  // The next complete reply, if it has arrived.
  std::optional<Json> TryReceive() {
    ReadAvailable();
    std::optional<size_t> end = FindJsonValueEnd(in_);
    if (!end) return std::nullopt;
    Json value = Json::parse(in_.substr(0, *end));
    in_.erase(0, *end);
    return value;
  }

  // Whether the server closed the connection (after everything it sent has been read).
  bool AtEnd() {
    ReadAvailable();
    return eof_;
  }

  // Bytes received but not returned as a reply yet, besides whitespace.
  bool HasUnreadReply() {
    ReadAvailable();
    return in_.find_first_not_of(" \n") != std::string::npos;
  }

  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void ReadAvailable() {
    char buf[64 * 1024];
    while (!eof_) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        // A Unix socket closed with unread input reports ECONNRESET after the queued data.
        eof_ = true;
      } else if (errno == EAGAIN) {
        return;
      }
    }
  }

  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Register("echo", [](const Json& params, RpcResponder r) { r.Result(params); });
    Register("add", [](const Json& params, RpcResponder r) {
      ParamReader reader(params);
      uint64_t a = reader.Uint("a");
      uint64_t b = reader.Uint("b");
      if (absl::Status status = reader.Finish(); !status.ok()) return r.Reply(status);
      r.Result(a + b);
    });
    Register("defer", [this](const Json&, RpcResponder r) { deferred_.push_back(std::move(r)); });
    Register("count", [this](const Json&, RpcResponder r) {
      ++counted_;
      r.Result(counted_);
    });
    Register("throws", [](const Json& params, RpcResponder r) {
      r.Result(params.at("missing").get<int>());  // nlohmann throws out_of_range
    });
    Register("big", [](const Json& params, RpcResponder r) {
      r.Result(std::string(params.at("size").get<size_t>(), 'x'));
    });
    path_ = dir_.Path("rpc.sock");
    Listen({});
  }

  // (Re)starts the server with `options`.
  void Listen(RpcServerOptions options) {
    server_.reset();
    absl::StatusOr<std::unique_ptr<RpcServer>> server =
        RpcServer::Listen(path_, methods_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void Register(const std::string& name, RpcHandler handler) {
    ASSERT_TRUE(methods_.Register(name, std::move(handler)).ok());
  }

  // Polls the server until `done()`; false if it never happens (a hang guard, not a timing
  // expectation).
  bool PollUntil(const std::function<bool()>& done) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      if (!server_->Poll()) {
        pollfd pfd{server_->fd(), POLLIN, 0};
        ::poll(&pfd, 1, 1);
      }
    }
    return true;
  }

  // Writes all of `data`, polling the server while the socket is full. False if the server
  // closed the connection first.
  bool SendAll(Client& client, std::string_view data) {
    bool closed = false;
    EXPECT_TRUE(PollUntil([&] {
      ssize_t n = client.SendSome(data);
      if (n < 0) {
        closed = true;
        return true;
      }
      data.remove_prefix(static_cast<size_t>(n));
      return data.empty();
    }));
    return !closed;
  }

  Json Receive(Client& client) {
    std::optional<Json> reply;
    EXPECT_TRUE(PollUntil([&] { return (reply = client.TryReceive()).has_value(); }));
    return reply.value_or(Json());
  }

  Json Call(Client& client, const std::string& request) {
    EXPECT_TRUE(SendAll(client, request));
    return Receive(client);
  }

  static void ExpectError(const Json& reply, const Json& id, int code) {
    EXPECT_EQ(reply["jsonrpc"], "2.0") << reply;
    EXPECT_EQ(reply["id"], id) << reply;
    EXPECT_EQ(reply["error"]["code"], code) << reply;
  }

  TempDir dir_;
  std::string path_;
  MethodRegistry methods_;
  std::vector<RpcResponder> deferred_;
  int counted_ = 0;
  std::unique_ptr<RpcServer> server_;
};

TEST_F(ServerTest, AnswersWithTheRequestId) {
  Client client(path_);
  ASSERT_TRUE(client.connected());
  Json reply = Call(client, Request(1, "add", {{"a", 2}, {"b", 3}}));
  EXPECT_EQ(reply, Json::parse(R"({"jsonrpc":"2.0","id":1,"result":5})"));
  reply = Call(client, Request("str-id", "echo", {{"k", "v"}}));
  EXPECT_EQ(reply["id"], "str-id");
  EXPECT_EQ(reply["result"], Json::parse(R"({"k":"v"})"));
  EXPECT_EQ(server_->connection_count(), 1u);
  EXPECT_EQ(server_->path(), path_);
}

TEST_F(ServerTest, SocketIsPrivateAndRemovedAtDestruction) {
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server_.reset();
  EXPECT_NE(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(ServerTest, RequestSplitAcrossManyWrites) {
  Client client(path_);
  std::string request = Request(7, "echo", {{"text", "a \"quoted\" {brace} \\ [x]"}});
  // Byte by byte, with the server reading each byte before the next one is sent.
  for (size_t i = 0; i < request.size(); ++i) {
    ASSERT_TRUE(SendAll(client, std::string_view(request).substr(i, 1)));
    server_->Poll();
    if (i + 1 < request.size()) {
      ASSERT_FALSE(client.HasUnreadReply()) << "a reply before the request was complete";
    }
  }
  Json reply = Receive(client);
  EXPECT_EQ(reply["id"], 7);
  EXPECT_EQ(reply["result"]["text"], "a \"quoted\" {brace} \\ [x]");
}

TEST_F(ServerTest, PipelinedRequestsInOneWriteEachGetAReply) {
  Client client(path_);
  std::string batch = Request(1, "add", {{"a", 1}, {"b", 1}}) + Request(2, "echo") + "\n  " +
                      Request(3, "count") + " 42 ";
  ASSERT_TRUE(SendAll(client, batch));
  std::vector<Json> replies;
  for (int i = 0; i < 4; ++i) replies.push_back(Receive(client));
  EXPECT_EQ(replies[0], Json::parse(R"({"jsonrpc":"2.0","id":1,"result":2})"));
  EXPECT_EQ(replies[1], Json::parse(R"({"jsonrpc":"2.0","id":2,"result":null})"));
  EXPECT_EQ(replies[2], Json::parse(R"({"jsonrpc":"2.0","id":3,"result":1})"));
  ExpectError(replies[3], nullptr, kInvalidRequest);
}

TEST_F(ServerTest, SeveralClientsAtOnce) {
  constexpr int kClients = 8;
  constexpr int kCallsEach = 25;
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      // Blocking I/O on this thread; the test thread polls the server.
      int fd = ConnectTo(path_);
      EXPECT_GE(fd, 0);
      std::string in;
      for (int i = 0; i < kCallsEach && fd >= 0; ++i) {
        std::string request = Request(i, "echo", {{"client", t}, {"call", i}});
        EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(request.size()));
        std::optional<size_t> end;
        while (!(end = FindJsonValueEnd(in))) {
          char buf[4096];
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        if (!end) {
          ADD_FAILURE() << "connection closed";
          break;
        }
        Json reply = Json::parse(in.substr(0, *end));
        in.erase(0, *end);
        EXPECT_EQ(reply["id"], i);
        EXPECT_EQ(reply["result"], Json({{"client", t}, {"call", i}}));
      }
      if (fd >= 0) ::close(fd);
      ++finished;
    });
  }
  bool all_done = PollUntil([&] { return finished == kClients; });
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(all_done);
  EXPECT_TRUE(PollUntil([&] { return server_->connection_count() == 0; }));
}

TEST_F(ServerTest, InvalidJsonIsAParseErrorAndTheConnectionGoesOn) {
  Client client(path_);
  Json reply = Call(client, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":}\n");
  ExpectError(reply, nullptr, kParseError);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("syntax error"), std::string::npos)
      << reply;
  reply = Call(client, "tru \n");
  ExpectError(reply, nullptr, kParseError);
  // A number beyond a double: nlohmann's out_of_range, which once ended the process.
  reply = Call(client, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"count\",\"params\":1e999999}\n");
  ExpectError(reply, nullptr, kParseError);
  EXPECT_EQ(reply["error"]["message"], "number overflow parsing '1e999999'") << reply;
  reply = Call(client, Request(2, "count"));
  EXPECT_EQ(reply["result"], 1);
}

TEST_F(ServerTest, MalformedJsonIsAParseErrorAtOnceAndTheNextLineGoesOn) {
  Client client(path_);
  // No closing brace will ever make this valid: the reply comes without waiting for one.
  Json reply = Call(client, R"({"jsonrpc":"2.0","id":1,"method" "count")");
  ExpectError(reply, nullptr, kParseError);
  // The rest of the malformed line is dropped; the next line is a request again.
  reply = Call(client, R"(, "params": {}} still garbage)"
                       "\n" +
                           Request(2, "count"));
  EXPECT_EQ(reply["id"], 2) << reply;
  EXPECT_EQ(reply["result"], 1);
  EXPECT_FALSE(client.HasUnreadReply());
  reply = Call(client, "hello");
  ExpectError(reply, nullptr, kParseError);
}

TEST_F(ServerTest, UnknownMethod) {
  Client client(path_);
  Json reply = Call(client, Request(5, "no_such_method"));
  ExpectError(reply, 5, kMethodNotFound);
  EXPECT_EQ(reply["error"]["message"], "unknown method \"no_such_method\"");
}

TEST_F(ServerTest, BadParamsNameTheParameter) {
  Client client(path_);
  Json reply = Call(client, Request(1, "add", {{"a", 1}, {"b", "two"}}));
  ExpectError(reply, 1, kInvalidParams);
  EXPECT_EQ(reply["error"]["message"], "parameter \"b\" must be an unsigned integer");
  reply = Call(client, Request(2, "add", {{"a", 1}}));
  EXPECT_EQ(reply["error"]["message"], "missing parameter \"b\"");
  reply = Call(client, Request(3, "add", {{"a", 1}, {"b", 2}, {"c", 3}}));
  EXPECT_EQ(reply["error"]["message"], "unknown parameter \"c\"");
}

TEST_F(ServerTest, InvalidRequests) {
  Client client(path_);
  ExpectError(Call(client, R"([{"jsonrpc":"2.0","id":1,"method":"count"}])"), nullptr,
              kInvalidRequest);
  Json batch = Call(client, "[]");
  EXPECT_EQ(batch["error"]["message"], "batch requests are not supported");
  ExpectError(Call(client, R"("just a string")"), nullptr, kInvalidRequest);
  ExpectError(Call(client, R"({"jsonrpc":"2.0","id":1})"), 1, kInvalidRequest);
  ExpectError(Call(client, R"({"jsonrpc":"2.0","id":2,"method":7})"), 2, kInvalidRequest);
  ExpectError(Call(client, R"({"jsonrpc":"1.0","id":3,"method":"count"})"), 3, kInvalidRequest);
  ExpectError(Call(client, R"({"id":4,"method":"count"})"), 4, kInvalidRequest);
  ExpectError(Call(client, R"({"jsonrpc":"2.0","id":{"x":1},"method":"count"})"), nullptr,
              kInvalidRequest);
  EXPECT_EQ(counted_, 0);
}

TEST_F(ServerTest, NotificationsRunWithoutAReply) {
  Client client(path_);
  ASSERT_TRUE(SendAll(client, R"({"jsonrpc":"2.0","method":"count"})"
                              R"({"jsonrpc":"2.0","method":"no_such_method"})"));
  Json reply = Call(client, Request(9, "echo", {{"after", true}}));
  EXPECT_EQ(reply["id"], 9);
  EXPECT_EQ(counted_, 1);
  EXPECT_FALSE(client.HasUnreadReply());
}

TEST_F(ServerTest, ThrowingMethodIsAnInternalErrorAndTheServerGoesOn) {
  Client client(path_);
  Json reply = Call(client, Request(1, "throws"));
  ExpectError(reply, 1, kInternalError);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("method \"throws\" failed"),
            std::string::npos);
  EXPECT_EQ(Call(client, Request(2, "count"))["result"], 1);
}

TEST_F(ServerTest, OversizedRequestIsRefusedAndItsConnectionClosed) {
  Client big(path_);
  // An unterminated string: the request never completes, it only grows past 1 MiB.
  std::string request = R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"s":")";
  request.append(kMaxMessageBytes + 1000, 'a');
  // The server closes while the client is still sending.
  SendAll(big, request);
  Json reply = Receive(big);
  ExpectError(reply, nullptr, kInvalidRequest);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("the limit is 1048576 bytes"), std::string::npos) << reply;
  EXPECT_TRUE(PollUntil([&] { return big.AtEnd(); }));
  EXPECT_TRUE(PollUntil([&] { return server_->connection_count() == 0; }));

  // A complete request over the limit is refused as well.
  Client complete(path_);
  std::string whole = Request(2, "echo", {{"s", std::string(kMaxMessageBytes, 'b')}});
  SendAll(complete, whole);
  ExpectError(Receive(complete), nullptr, kInvalidRequest);
  EXPECT_TRUE(PollUntil([&] { return complete.AtEnd(); }));

  Client next(path_);
  EXPECT_EQ(Call(next, Request(3, "count"))["result"], 1);
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitAreToldAndClosed) {
  ASSERT_NO_FATAL_FAILURE(Listen({.max_connections = 2}));
  Client first(path_), second(path_);
  EXPECT_EQ(Call(first, Request(1, "count"))["result"], 1);
  EXPECT_EQ(Call(second, Request(2, "count"))["result"], 2);
  Client third(path_);
  Json reply = Receive(third);
  ExpectError(reply, nullptr, kServerBusy);
  EXPECT_EQ(reply["error"]["message"], "too many connections: the limit is 2") << reply;
  EXPECT_TRUE(PollUntil([&] { return third.AtEnd(); }));
  EXPECT_EQ(Call(first, Request(3, "count"))["result"], 3);
  // A place freed is a place taken.
  second.Close();
  EXPECT_TRUE(PollUntil([&] { return server_->connection_count() == 1; }));
  Client fourth(path_);
  EXPECT_EQ(Call(fourth, Request(4, "count"))["result"], 4);
}

TEST_F(ServerTest, RequestNotCompletedInTimeIsAnsweredAndClosed) {
  ASSERT_NO_FATAL_FAILURE(Listen({.request_timeout = std::chrono::milliseconds(100)}));
  Client half(path_);
  ASSERT_TRUE(SendAll(half, R"({"jsonrpc":"2.0","id":1,"meth)"));
  // A client that completes its requests is never cut off, however long it stays quiet.
  Client quiet(path_);
  EXPECT_EQ(Call(quiet, Request(1, "count"))["result"], 1);
  Json reply = Receive(half);
  ExpectError(reply, nullptr, kInvalidRequest);
  EXPECT_EQ(reply["error"]["message"], "request not completed within 0.1 s") << reply;
  EXPECT_TRUE(PollUntil([&] { return half.AtEnd(); }));
  const auto later = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  EXPECT_TRUE(PollUntil([&] { return std::chrono::steady_clock::now() > later; }));
  EXPECT_FALSE(quiet.AtEnd());
  EXPECT_EQ(Call(quiet, Request(2, "count"))["result"], 2);
}

TEST_F(ServerTest, LargeReplyIsWrittenAcrossPartialWrites) {
  Client client(path_);
  // Larger than a Unix socket's buffer, so the server keeps pending output and waits for
  // EPOLLOUT; the client reads only when the server has stopped writing.
  constexpr size_t kSize = 900 * 1024;
  ASSERT_TRUE(SendAll(client, Request(1, "big", {{"size", kSize}})));
  Json reply = Receive(client);
  EXPECT_EQ(reply["id"], 1);
  EXPECT_EQ(reply["result"].get<std::string>().size(), kSize);
  EXPECT_EQ(Call(client, Request(2, "count"))["result"], 1);
}

TEST_F(ServerTest, LateAnswerReachesTheClient) {
  Client client(path_);
  ASSERT_TRUE(SendAll(client, Request(1, "defer") + Request(2, "defer")));
  ASSERT_TRUE(PollUntil([&] { return deferred_.size() == 2; }));
  // Answered out of order, outside Poll(): each reply carries its own id.
  deferred_[1].Result("second");
  deferred_[0].Error(-19, "no such bdev");
  Json first = Receive(client);
  Json second = Receive(client);
  EXPECT_EQ(first, Json::parse(R"({"jsonrpc":"2.0","id":2,"result":"second"})"));
  ExpectError(second, 1, -19);
}

TEST_F(ServerTest, LateAnswerAfterTheClientLeftIsDropped) {
  {
    Client client(path_);
    ASSERT_TRUE(SendAll(client, Request(1, "defer")));
    ASSERT_TRUE(PollUntil([&] { return deferred_.size() == 1; }));
  }
  ASSERT_TRUE(PollUntil([&] { return server_->connection_count() == 0; }));
  deferred_[0].Result("nobody listens");
  EXPECT_TRUE(deferred_[0].answered());
  // A new client on what may be the same fd number gets only its own reply.
  Client next(path_);
  EXPECT_EQ(Call(next, Request(2, "count")), Json::parse(R"({"jsonrpc":"2.0","id":2,"result":1})"));
  EXPECT_FALSE(next.HasUnreadReply());
}

TEST_F(ServerTest, LateAnswerAfterTheServerIsGoneIsDropped) {
  Client client(path_);
  ASSERT_TRUE(SendAll(client, Request(1, "defer")));
  ASSERT_TRUE(PollUntil([&] { return deferred_.size() == 1; }));
  server_.reset();
  deferred_[0].Result("too late");
  EXPECT_TRUE(client.AtEnd());
}

TEST_F(ServerTest, HalfClosedClientStillGetsItsAnswers) {
  Client client(path_);
  ASSERT_TRUE(SendAll(client, Request(1, "defer") + " 42"));
  client.ShutdownWrite();
  ASSERT_TRUE(PollUntil([&] { return deferred_.size() == 1 && client.HasUnreadReply(); }));
  // The bare 42 at the end of the stream is complete at EOF: not an object.
  ExpectError(Receive(client), nullptr, kInvalidRequest);
  EXPECT_EQ(server_->connection_count(), 1u);
  deferred_[0].Result("done");
  EXPECT_EQ(Receive(client)["result"], "done");
  // All answered: the server closes its side.
  EXPECT_TRUE(PollUntil([&] { return client.AtEnd(); }));
  EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(ServerTest, SecondListenOnALivePathIsRefused) {
  MethodRegistry other;
  absl::StatusOr<std::unique_ptr<RpcServer>> second = RpcServer::Listen(path_, other);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "RPC socket " + path_ + " is in use by another process");
  // The first server is unharmed.
  Client client(path_);
  EXPECT_EQ(Call(client, Request(1, "count"))["result"], 1);
}

TEST(ServerListen, StaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir.Path("stale.sock");
  // A socket file whose server is gone: bound, never listening, closed.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);

  MethodRegistry methods;
  ASSERT_TRUE(methods.Register("ping", [](const Json&, RpcResponder r) { r.Result("pong"); }).ok());
  absl::StatusOr<std::unique_ptr<RpcServer>> server = RpcServer::Listen(path, methods);
  ASSERT_TRUE(server.ok()) << server.status();
  int client = ConnectTo(path);
  ASSERT_GE(client, 0);
  std::string request = Request(1, "ping");
  ASSERT_EQ(::send(client, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string in;
  while (!FindJsonValueEnd(in)) {
    (*server)->Poll();
    char buf[256];
    ssize_t n = ::recv(client, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    if (n == 0) break;
  }
  EXPECT_EQ(Json::parse(in)["result"], "pong");
  ::close(client);
}

TEST(ServerListen, PathThatIsNotASocketIsRefused) {
  TempDir dir;
  std::string path = dir.File("file.sock", "precious data");
  MethodRegistry methods;
  absl::StatusOr<std::unique_ptr<RpcServer>> server = RpcServer::Listen(path, methods);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().message(), "RPC socket path " + path + " exists and is not a socket");
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << "the file must not be removed";
}

TEST(ServerListen, ErrorsNameThePathAndTheReason) {
  TempDir dir;
  MethodRegistry methods;
  std::string path = dir.Path("no-such-dir/rpc.sock");
  absl::StatusOr<std::unique_ptr<RpcServer>> server = RpcServer::Listen(path, methods);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().message(),
            "cannot bind RPC socket " + path + ": No such file or directory");

  std::string long_path = dir.Path(std::string(200, 'x'));
  server = RpcServer::Listen(long_path, methods);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pollux::rpc
