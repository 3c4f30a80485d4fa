#include "rpc_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pollux::rpc {
namespace {

// poll()'s timeout for the time left until `deadline`, rounded up so that it never spins.
int MillisecondsUntil(RpcClient::Clock::time_point deadline) {
  auto left = deadline - RpcClient::Clock::now();
  if (left <= RpcClient::Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<decltype(ms)>(ms, 1 << 30));
}

}  // namespace

absl::StatusOr<RpcClient> RpcClient::Connect(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot connect to ", path, ": the path is empty or too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", path, ": socket: ", std::strerror(errno)));
  }
  RpcClient client(fd, path);
  for (;;) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
    if (errno == EINTR) continue;
    // A Unix socket connects at once or, when the server's backlog is full, fails with EAGAIN:
    // retry until the deadline.
    if (errno == EAGAIN) {
      if (Clock::now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cannot connect to ", path, ": the server's backlog stays full"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", path, ": ", std::strerror(errno)));
  }
  return client;
}

RpcClient::RpcClient(RpcClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      in_(std::move(other.in_)),
      next_id_(other.next_id_) {}

RpcClient& RpcClient::operator=(RpcClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    in_ = std::move(other.in_);
    next_id_ = other.next_id_;
  }
  return *this;
}

RpcClient::~RpcClient() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status RpcClient::Wait(short events, Clock::time_point deadline) {
  for (;;) {
    pollfd pfd{fd_, events, 0};
    int rc = ::poll(&pfd, 1, MillisecondsUntil(deadline));
    if (rc > 0) return absl::OkStatus();  // ready, or an error/hang-up the next call reports
    if (rc < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll on ", path_, ": ", std::strerror(errno)));
    }
    if (rc == 0 && Clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no reply from ", path_, " in time"));
    }
  }
}

absl::Status RpcClient::SendAll(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (absl::Status status = Wait(POLLOUT, deadline); !status.ok()) return status;
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("send to ", path_, ": ", std::strerror(n < 0 ? errno : EIO)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> RpcClient::Receive(Clock::time_point deadline) {
  char chunk[64 * 1024];
  for (;;) {
    if (std::optional<size_t> end = FindJsonValueEnd(in_)) {
      std::string text = in_.substr(0, *end);
      in_.erase(0, *end);
      Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded()) {
        return absl::DataLossError(absl::StrCat("invalid JSON from ", path_, ": ", text));
      }
      return value;
    }
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      in_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("connection to ", path_, " closed before the reply"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (absl::Status status = Wait(POLLIN, deadline); !status.ok()) return status;
      continue;
    }
    return absl::UnavailableError(absl::StrCat("receive from ", path_, ": ", std::strerror(errno)));
  }
}

absl::StatusOr<RpcReply> RpcClient::Call(std::string_view method, const Json& params,
                                         Clock::time_point deadline) {
  const uint64_t id = next_id_++;
  Json request = {{"jsonrpc", "2.0"}, {"method", method}, {"id", id}};
  if (!params.is_null()) request["params"] = params;
  std::string text = request.dump(-1, ' ', false, Json::error_handler_t::replace);
  text.push_back('\n');
  absl::Status sent = SendAll(text, deadline);
  if (absl::IsDeadlineExceeded(sent)) return sent;
  // When sending fails the server may have refused the request with an error before closing
  // (a request over the size limit): read that error rather than report a broken pipe.
  for (;;) {
    absl::StatusOr<Json> reply = Receive(deadline);
    if (!reply.ok()) return sent.ok() ? reply.status() : sent;
    if (!reply->is_object()) {
      return absl::DataLossError(absl::StrCat("invalid reply from ", path_, ": ", reply->dump()));
    }
    auto reply_id = reply->find("id");
    // Skip answers to other requests; an error about an unreadable request comes with id null.
    if (reply_id == reply->end() || (*reply_id != id && !reply_id->is_null())) continue;
    if (auto error = reply->find("error"); error != reply->end()) {
      if (!error->is_object() || !error->contains("code") ||
          !(*error)["code"].is_number_integer()) {
        return absl::DataLossError(absl::StrCat("invalid error from ", path_, ": ", error->dump()));
      }
      auto message = error->find("message");
      return RpcReply::Error((*error)["code"].get<int>(),
                             message != error->end() && message->is_string()
                                 ? message->get<std::string>()
                                 : std::string());
    }
    if (auto result = reply->find("result"); result != reply->end()) {
      return RpcReply::Result(std::move(*result));
    }
    return absl::DataLossError(absl::StrCat("invalid reply from ", path_, ": ", reply->dump()));
  }
}

}  // namespace pollux::rpc
