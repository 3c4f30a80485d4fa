// The JSON-RPC server: a listening Unix socket and its connections behind one epoll fd, driven
// by Poll() on the app thread. No thread, no blocking call, no lock.
#include "pollux/rpc/server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl_string_view.h"
#include "json_value_scanner.h"
#include "pollux/env/log.h"
#include "pollux/env/unix_listener.h"

namespace pollux::rpc {
namespace {

using Clock = std::chrono::steady_clock;

// epoll data of the listening socket and of the timer; connections use their id, which starts
// at 1.
constexpr uint64_t kListenerTag = 0;
constexpr uint64_t kTimerTag = ~uint64_t{0};
// After accept() failed for want of fds or memory: the listener rests this long (level-triggered
// epoll would otherwise report the waiting client again at once, forever).
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// At most one line per this interval about refused connections (a thousand clients at once
// would otherwise write a thousand lines).
constexpr auto kRefusalLogInterval = std::chrono::seconds(1);
constexpr int kMaxEvents = 64;
constexpr size_t kReadChunk = 64 * 1024;
// Reads per connection per Poll(): a client that never stops sending cannot starve the others.
// epoll is level-triggered, so what is left is read at the next Poll().
constexpr int kMaxReadsPerPoll = 16;

std::string Errno(int error) { return std::strerror(error); }

absl::Status PathError(std::string_view what, const std::string& path, int error) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(AbslView(what), " RPC socket ", path, ": ", Errno(error)));
}

// Replies never throw: a method may put bytes that are not UTF-8 in a string (a path, a
// name), which nlohmann's dump() rejects unless told to replace them.
std::string Serialize(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The message of a parse error without nlohmann's "[json.exception.parse_error.101] " prefix.
std::string ParseErrorMessage(const Json::exception& e) {
  std::string_view what = e.what();
  if (auto bracket = what.find("] "); bracket != std::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  return std::string(what);
}

struct Connection {
  uint64_t id = 0;
  int fd = -1;
  std::string in;            // received bytes not yet dispatched
  JsonValueScanner scanner;  // position in `in` of the value being received
  std::string out;           // replies not yet written, from out_offset
  size_t out_offset = 0;
  uint32_t events = 0;       // what epoll watches now
  size_t outstanding = 0;    // requests dispatched and not answered yet
  bool read_closed = false;  // the peer shut down its sending side
  bool skip_line = false;    // after malformed JSON: drop input up to the next newline
  bool closing = false;      // closed when the server entry point on the stack returns
  Clock::time_point partial_since{};  // when the request being received began; {} when none

  size_t pending_output() const { return out.size() - out_offset; }
};

}  // namespace

class RpcServer::Impl {
 public:
  Impl(std::string path, MethodRegistry& methods, RpcServerOptions options)
      : path_(std::move(path)), methods_(methods), options_(options) {}
  ~Impl();

  absl::Status Listen();
  bool Poll();

  int epoll_fd() const { return epoll_fd_; }
  const std::string& path() const { return path_; }
  size_t connection_count() const { return connections_.size(); }

 private:
  void AcceptAll();
  void Refuse(int fd);
  void PauseListener();
  void OnTimer();
  void ArmTimer(Clock::time_point when);
  void TrackPartialRequest(Connection& c);
  void HandleEvents(Connection& c, uint32_t events);
  void ReadAll(Connection& c);
  void ProcessInput(Connection& c);
  void OnEndOfInput(Connection& c);
  void Dispatch(Connection& c, std::string_view text);
  RpcResponder::Sink MakeSink(uint64_t connection_id, Json id);
  void Answer(uint64_t connection_id, const Json& id, const RpcReply& reply);
  void Send(Connection& c, const Json& id, const RpcReply& reply);
  void Flush(Connection& c);
  void UpdateEvents(Connection& c);
  void MaybeFinish(Connection& c);
  void Close(Connection& c, std::string_view why);
  void Enter() { ++entered_; }
  void Leave();

  const std::string path_;
  MethodRegistry& methods_;
  const RpcServerOptions options_;
  UnixListener listener_;  // removes the socket file it created when the server goes
  int listen_fd_ = -1;      // listener_'s
  int epoll_fd_ = -1;
  // One timer for every deadline: the oldest unfinished request's and the listener's rest.
  int timer_fd_ = -1;
  Clock::time_point timer_at_{};  // what the timer is set to; {} when disarmed
  Clock::time_point listener_resumes_at_{};  // {} while the listener is watched
  size_t refused_unlogged_ = 0;
  Clock::time_point refusal_logged_at_{};

  uint64_t next_connection_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  // Connections are only marked closing, and closed when the outermost entry point (Poll() or
  // a late answer) returns, because callers up the stack may hold references to them.
  int entered_ = 0;
  std::vector<uint64_t> closing_;
  std::vector<char> read_buffer_ = std::vector<char>(kReadChunk);

  // Answers may come after the server is gone (a responder kept by a module): their sinks hold
  // this weak reference and drop the answer once it expires.
  std::shared_ptr<Impl*> self_ = std::make_shared<Impl*>(this);
};

RpcServer::Impl::~Impl() {
  self_.reset();
  for (auto& [id, c] : connections_) ::close(c->fd);
  connections_.clear();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (timer_fd_ >= 0) ::close(timer_fd_);
}

absl::Status RpcServer::Impl::Listen() {
  absl::StatusOr<UnixListener> listener = UnixListener::Listen(path_, "RPC socket", "rpc", 0600);
  if (!listener.ok()) return listener.status();
  listener_ = std::move(*listener);
  listen_fd_ = listener_.fd();

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return PathError("cannot create epoll for", path_, errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return PathError("cannot watch", path_, errno);
  }
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return PathError("cannot create a timer for", path_, errno);
  ev.data.u64 = kTimerTag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0) {
    return PathError("cannot watch the timer of", path_, errno);
  }
  PX_LOG(kInfo, "rpc", "listening on %s", path_);
  return absl::OkStatus();
}

bool RpcServer::Impl::Poll() {
  epoll_event events[kMaxEvents];
  int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, 0);
  if (n <= 0) return false;  // nothing, or EINTR: the next Poll() sees it
  Enter();
  for (int i = 0; i < n; ++i) {
    // A copy: epoll_event is packed on x86-64, so its data is not 8-byte aligned and may not be
    // bound to a reference (map::find takes one).
    const uint64_t tag = events[i].data.u64;
    if (tag == kListenerTag) {
      AcceptAll();
      continue;
    }
    if (tag == kTimerTag) {
      OnTimer();
      continue;
    }
    auto it = connections_.find(tag);
    if (it == connections_.end() || it->second->closing) continue;
    HandleEvents(*it->second, events[i].events);
  }
  Leave();
  return true;
}

void RpcServer::Impl::AcceptAll() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) {
        // EMFILE and the like: the pending client waits until the listener's rest is over.
        PX_LOG(kWarning, "rpc", "accept on %s: %s; new connections wait %d ms", path_,
               Errno(errno), kAcceptBackoff.count());
        PauseListener();
      }
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      Refuse(fd);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->id = next_connection_id_++;
    c->fd = fd;
    c->events = EPOLLIN;
    epoll_event ev{};
    ev.events = c->events;
    ev.data.u64 = c->id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      PX_LOG(kWarning, "rpc", "watch a connection on %s: %s", path_, Errno(errno));
      ::close(fd);
      continue;
    }
    PX_LOG(kDebug, "rpc", "connection %d on %s", c->id, path_);
    connections_.emplace(c->id, std::move(c));
  }
}

// A connection over the limit: one error reply, if the socket takes it now, then closed.
void RpcServer::Impl::Refuse(int fd) {
  const std::string reply =
      Serialize(EncodeReply(nullptr, RpcReply::Error(kServerBusy,
                                                     absl::StrCat("too many connections: the "
                                                                  "limit is ",
                                                                  options_.max_connections))));
  (void)::send(fd, (reply + "\n").data(), reply.size() + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
  ++refused_unlogged_;
  const Clock::time_point now = Clock::now();
  if (now - refusal_logged_at_ >= kRefusalLogInterval) {
    PX_LOG(kWarning, "rpc", "%s: refused %d connections: %d are open, the limit", path_,
           refused_unlogged_, options_.max_connections);
    refused_unlogged_ = 0;
    refusal_logged_at_ = now;
  }
}

void RpcServer::Impl::PauseListener() {
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr) != 0) return;
  listener_resumes_at_ = Clock::now() + kAcceptBackoff;
  ArmTimer(listener_resumes_at_);
}

// Sets the timer to `when` unless it is set to go off earlier already.
void RpcServer::Impl::ArmTimer(Clock::time_point when) {
  if (timer_at_ != Clock::time_point{} && timer_at_ <= when) return;
  timer_at_ = when;
  const auto delay =
      std::max(std::chrono::nanoseconds(1), std::chrono::nanoseconds(when - Clock::now()));
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
  ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
}

// Deadlines: requests not completed in time end their connections; a rested listener is
// watched again. Then the timer is set for the next deadline, if any.
void RpcServer::Impl::OnTimer() {
  uint64_t expirations;
  // Non-blocking: EAGAIN when the timer was re-armed after it fired; the deadlines below
  // are checked against the clock either way.
  if (::read(timer_fd_, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
    PX_LOG(kWarning, "rpc", "reading the deadline timer on %s: %s", path_, Errno(errno));
  }
  timer_at_ = {};
  const Clock::time_point now = Clock::now();
  if (listener_resumes_at_ != Clock::time_point{}) {
    if (now >= listener_resumes_at_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenerTag;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
      listener_resumes_at_ = {};
    } else {
      ArmTimer(listener_resumes_at_);
    }
  }
  for (auto& [id, c] : connections_) {
    if (c->closing || c->partial_since == Clock::time_point{}) continue;
    const Clock::time_point deadline = c->partial_since + options_.request_timeout;
    if (now < deadline) {
      ArmTimer(deadline);
      continue;
    }
    const auto seconds = std::chrono::duration<double>(options_.request_timeout).count();
    PX_LOG(kWarning, "rpc", "connection %d on %s: a request not completed within %.3g s; closed",
           c->id, path_, seconds);
    Send(*c, nullptr,
         RpcReply::Error(kInvalidRequest, absl::StrFormat("request not completed within %.3g s",
                                                          seconds)));
    Close(*c, "request timeout");
  }
}

// Notes when the request being received began, for the request timeout.
void RpcServer::Impl::TrackPartialRequest(Connection& c) {
  const bool partial = c.scanner.started() || c.skip_line;
  if (!partial) {
    c.partial_since = {};
  } else if (c.partial_since == Clock::time_point{} &&
             options_.request_timeout != std::chrono::milliseconds(0)) {
    c.partial_since = Clock::now();
    ArmTimer(c.partial_since + options_.request_timeout);
  }
}

void RpcServer::Impl::HandleEvents(Connection& c, uint32_t events) {
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.read_closed) ReadAll(c);
  if (c.closing) return;
  if (events & EPOLLOUT) Flush(c);
  if (c.closing) return;
  // Hang-up: both directions are shut, nothing can be sent any more. What the peer sent before
  // has been read and dispatched above; late answers to it are dropped.
  if (events & (EPOLLHUP | EPOLLERR)) Close(c, "peer hung up");
}

void RpcServer::Impl::ReadAll(Connection& c) {
  for (int i = 0; i < kMaxReadsPerPoll; ++i) {
    // Back-pressure: a client that sends requests but does not read the replies stops being
    // read until its replies drain (UpdateEvents drops EPOLLIN meanwhile).
    if (c.pending_output() >= kMaxMessageBytes) return;
    ssize_t n = ::recv(c.fd, read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(read_buffer_.data(), static_cast<size_t>(n));
      ProcessInput(c);
      if (c.closing) return;
      continue;
    }
    if (n == 0) {
      OnEndOfInput(c);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return;
    Close(c, Errno(errno));
    return;
  }
}

// Dispatches every complete value in the input, then checks what is left against the size
// limit. The scanner resumes where it stopped, so a large request that trickles in is scanned
// once.
void RpcServer::Impl::ProcessInput(Connection& c) {
  size_t consumed = 0;
  while (!c.closing) {
    std::string_view rest = std::string_view(c.in).substr(consumed);
    if (c.skip_line) {
      // A stream has no resync point after malformed JSON (SPDK closes the connection); the
      // next line is the best guess, since clients send one request per line.
      size_t newline = rest.find('\n');
      c.skip_line = newline == std::string_view::npos;
      consumed += c.skip_line ? rest.size() : newline + 1;
      if (c.skip_line) break;
      continue;
    }
    std::optional<size_t> end = c.scanner.Scan(rest);
    if (!end) break;
    if (*end > options_.max_request_bytes) break;  // refused below
    c.skip_line = c.scanner.invalid() && rest[*end - 1] != '\n';
    c.scanner.Reset();
    consumed += *end;
    Dispatch(c, rest.substr(0, *end));
  }
  if (c.closing) return;
  // Drop what was dispatched, and whitespace between values, in one move per read.
  if (!c.scanner.started()) {
    c.in.clear();
    c.scanner.Reset();
  } else {
    c.in.erase(0, consumed);
  }
  if (c.in.size() > options_.max_request_bytes) {
    PX_LOG(kWarning, "rpc", "connection %d on %s: request over %d bytes refused", c.id, path_,
           options_.max_request_bytes);
    Send(c, nullptr,
         RpcReply::Error(kInvalidRequest, absl::StrCat("request too large: the limit is ",
                                                       options_.max_request_bytes, " bytes")));
    // Send() flushed what the socket takes now; the rest of the reply is given up with the
    // connection.
    Close(c, "request too large");
    return;
  }
  TrackPartialRequest(c);
}

// The peer shut down its side. A value at the very end of the stream (a bare number has no
// terminator) is complete now. The connection stays open until its requests are answered.
void RpcServer::Impl::OnEndOfInput(Connection& c) {
  c.read_closed = true;
  c.partial_since = {};
  if (c.scanner.started()) Dispatch(c, c.in);
  c.in.clear();
  c.scanner.Reset();
  if (c.closing) return;
  UpdateEvents(c);
  MaybeFinish(c);
}

void RpcServer::Impl::Dispatch(Connection& c, std::string_view text) {
  Json request;
  try {
    request = Json::parse(text);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double ("1e999999").
    Send(c, nullptr, RpcReply::Error(kParseError, ParseErrorMessage(e)));
    return;
  }
  if (request.is_array()) {
    Send(c, nullptr, RpcReply::Error(kInvalidRequest, "batch requests are not supported"));
    return;
  }
  if (!request.is_object()) {
    Send(c, nullptr, RpcReply::Error(kInvalidRequest, "a request must be a JSON object"));
    return;
  }
  // A request without "id" is a notification: it runs, and nobody hears about it.
  auto id_it = request.find("id");
  const bool notification = id_it == request.end();
  Json id = notification ? Json() : std::move(*id_it);
  if (!id.is_null() && !id.is_string() && !id.is_number()) {
    Send(c, nullptr, RpcReply::Error(kInvalidRequest, "\"id\" must be a string, a number or null"));
    return;
  }
  auto version = request.find("jsonrpc");
  if (version == request.end() || *version != "2.0") {
    Send(c, id, RpcReply::Error(kInvalidRequest, "\"jsonrpc\" must be \"2.0\""));
    return;
  }
  auto method = request.find("method");
  if (method == request.end() || !method->is_string()) {
    Send(c, id, RpcReply::Error(kInvalidRequest, "\"method\" must be a string"));
    return;
  }
  auto params_it = request.find("params");
  const Json params = params_it == request.end() ? Json() : std::move(*params_it);
  const std::string& name = method->get_ref<const std::string&>();
  PX_LOG(kDebug, "rpc", "connection %d: %s", c.id, name);
  if (notification) {
    methods_.Call(name, params, [](RpcReply) {});
    return;
  }
  ++c.outstanding;
  methods_.Call(name, params, MakeSink(c.id, std::move(id)));
}

// The sink of one request's responder. It finds the connection again by id when the answer
// comes: by then the client may be gone (the answer is dropped) or the server itself.
RpcResponder::Sink RpcServer::Impl::MakeSink(uint64_t connection_id, Json id) {
  return [server = std::weak_ptr<Impl*>(self_), connection_id, id = std::move(id)](RpcReply reply) {
    std::shared_ptr<Impl*> self = server.lock();
    if (!self) return;
    (*self)->Answer(connection_id, id, reply);
  };
}

void RpcServer::Impl::Answer(uint64_t connection_id, const Json& id, const RpcReply& reply) {
  auto it = connections_.find(connection_id);
  if (it == connections_.end() || it->second->closing) {
    PX_LOG(kDebug, "rpc", "connection %d closed before its answer", connection_id);
    return;
  }
  Enter();
  Connection& c = *it->second;
  --c.outstanding;
  Send(c, id, reply);
  MaybeFinish(c);
  Leave();
}

void RpcServer::Impl::Send(Connection& c, const Json& id, const RpcReply& reply) {
  std::string text = Serialize(EncodeReply(id, reply));
  if (text.size() > kMaxMessageBytes) {
    PX_LOG(kWarning, "rpc", "connection %d: a reply of %d bytes exceeds the 1 MiB limit", c.id,
           text.size());
    text = Serialize(EncodeReply(
        id, RpcReply::Error(kInternalError, absl::StrCat("reply too large: ", text.size(),
                                                         " bytes, the limit is 1 MiB"))));
  }
  // A newline after each reply lets line-oriented tools (socat, nc) show them one per line;
  // JSON parsers skip it.
  c.out.append(text).push_back('\n');
  Flush(c);
}

void RpcServer::Impl::Flush(Connection& c) {
  while (c.pending_output() > 0) {
    ssize_t n =
        ::send(c.fd, c.out.data() + c.out_offset, c.pending_output(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    Close(c, n < 0 ? Errno(errno) : "send wrote nothing");
    return;
  }
  if (c.pending_output() == 0) {
    c.out.clear();
    c.out_offset = 0;
  } else if (c.out_offset > kReadChunk && c.out_offset * 2 > c.out.size()) {
    c.out.erase(0, c.out_offset);  // keep appends from growing the buffer forever
    c.out_offset = 0;
  }
  UpdateEvents(c);
  MaybeFinish(c);
}

void RpcServer::Impl::UpdateEvents(Connection& c) {
  if (c.closing) return;
  uint32_t wanted = 0;
  if (!c.read_closed && c.pending_output() < kMaxMessageBytes) wanted |= EPOLLIN;
  if (c.pending_output() > 0) wanted |= EPOLLOUT;
  if (wanted == c.events) return;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.u64 = c.id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    Close(c, Errno(errno));
    return;
  }
  c.events = wanted;
}

// A half-closed connection closes once all its requests are answered and the answers sent.
void RpcServer::Impl::MaybeFinish(Connection& c) {
  if (!c.closing && c.read_closed && c.outstanding == 0 && c.pending_output() == 0) {
    Close(c, "done");
  }
}

void RpcServer::Impl::Close(Connection& c, std::string_view why) {
  if (c.closing) return;
  c.closing = true;
  PX_LOG(kDebug, "rpc", "connection %d on %s closed: %s", c.id, path_, why);
  closing_.push_back(c.id);
}

void RpcServer::Impl::Leave() {
  if (--entered_ > 0) return;
  for (uint64_t id : closing_) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    // close() removes the fd from the epoll set as well.
    ::close(it->second->fd);
    connections_.erase(it);
  }
  closing_.clear();
}

absl::StatusOr<std::unique_ptr<RpcServer>> RpcServer::Listen(const std::string& path,
                                                             MethodRegistry& methods,
                                                             RpcServerOptions options) {
  auto impl = std::make_unique<Impl>(path, methods, options);
  if (absl::Status status = impl->Listen(); !status.ok()) return status;
  return std::unique_ptr<RpcServer>(new RpcServer(std::move(impl)));
}

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcServer::~RpcServer() = default;

int RpcServer::fd() const { return impl_->epoll_fd(); }

bool RpcServer::Poll() { return impl_->Poll(); }

const std::string& RpcServer::path() const { return impl_->path(); }

size_t RpcServer::connection_count() const { return impl_->connection_count(); }

}  // namespace pollux::rpc
