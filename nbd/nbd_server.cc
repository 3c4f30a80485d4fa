// The server: its listening socket (watched by an fd handler on the app thread), the export
// table, and the connections, each on a pollux thread of its own. The table and the
// connection list are shared with the connections' threads under a mutex that only
// handshakes, RPC calls and connection ends take.
#include "pollux/nbd/nbd_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "nbd_connection.h"
#include "nbd_exports.h"
#include "nbd_protocol.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/env/log.h"
#include "pollux/env/unix_listener.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

using nbd::ExportEntry;
using nbd::NbdConnection;

struct ExportRecord {
  ExportEntry entry;
  // Held open (read-only) on the app thread: the bdev's removal removes the export.
  std::unique_ptr<BdevDesc> watch;
};

struct ConnectionRecord {
  NbdConnection* connection;
  Thread* thread;
  std::string peer;
  std::string export_name;  // empty during the handshake
};

struct Server {
  std::mutex mutex;
  // Guarded by `mutex`:
  bool running = false;
  std::map<std::string, ExportRecord> exports;
  std::map<uint64_t, ConnectionRecord> connections;
  std::vector<absl::AnyInvocable<void(absl::Status)>> stop_waiters;
  // App thread only:
  NbdServerOptions options;
  rpc::Json endpoint;
  Thread* app_thread = nullptr;
  UnixListener unix_listener;
  int listen_fd = -1;  // TCP, or unix_listener's
  uint64_t next_id = 1;
  std::chrono::steady_clock::time_point refusal_logged_at{};
  uint64_t refused_unlogged = 0;
};

Server& TheServer() {
  static Server* server = new Server;  // lives to the end: connection threads may outlast main
  return *server;
}

std::string PeerName(int fd, uint64_t id) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    char host[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
      return absl::StrFormat("%s:%u", host, ntohs(in->sin_port));
    }
    if (addr.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
      return absl::StrFormat("[%s]:%u", host, ntohs(in6->sin6_port));
    }
  }
  return absl::StrFormat("unix#%u", id);
}

void LogRefusal(Server& s) {
  ++s.refused_unlogged;
  auto now = std::chrono::steady_clock::now();
  if (now - s.refusal_logged_at < std::chrono::seconds(1)) return;
  PX_LOG(kWarning, "nbd", "refused %u client(s): %u connected already (max_connections)",
         s.refused_unlogged, s.options.max_connections);
  s.refused_unlogged = 0;
  s.refusal_logged_at = now;
}

void AcceptAll() {
  Server& s = TheServer();
  for (;;) {
    int fd = accept4(s.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        PX_LOG(kWarning, "nbd", "accept: %s", strerror(errno));
      }
      return;
    }
    const uint64_t id = s.next_id++;
    std::unique_lock lock(s.mutex);
    if (s.connections.size() >= s.options.max_connections) {
      lock.unlock();
      LogRefusal(s);  // before the close the client sees
      close(fd);
      continue;
    }
    lock.unlock();
    if (s.options.socket.empty()) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                 sizeof(one));  // replies are not batched by Nagle
    }
    std::string peer = PeerName(fd, id);
    ThreadOptions options;
    options.ring_size = 4096;
    absl::StatusOr<Thread*> thread = Thread::Create(absl::StrFormat("nbd_%u", id), options);
    if (!thread.ok()) {
      PX_LOG(kWarning, "nbd", "client %s refused: %s", peer, thread.status().message());
      close(fd);
      continue;
    }
    auto* connection = new NbdConnection(id, fd, peer);
    lock.lock();
    s.connections[id] = ConnectionRecord{connection, *thread, peer, ""};
    lock.unlock();
    PX_LOG(kInfo, "nbd", "client %s connected", peer);
    if (!(*thread)->SendMessage([connection] { connection->Start(); })) {
      // A new thread's ring is empty: this cannot fail.
      PX_LOG(kError, "nbd", "client %s: its thread takes no message", peer);
    }
  }
}

absl::StatusOr<int> ListenTcp(const NbdServerOptions& options, uint16_t& bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string port = std::to_string(options.port);
  int rc = getaddrinfo(options.address.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("NBD address %s: %s", options.address, gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(result, freeaddrinfo);
  int error = 0;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      bound_port =
          ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      return fd;
    }
    error = errno;
    close(fd);
  }
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrFormat("cannot listen on %s port %u: %s", options.address,
                                      options.port, strerror(error)));
}

// Asks every connection `match` accepts to end; they finish on their own threads.
template <typename Match>
void KillConnections(Server& s, Match match, const std::string& reason) {
  std::lock_guard lock(s.mutex);
  for (auto& [id, record] : s.connections) {
    if (!match(id, record)) continue;
    const uint64_t connection_id = id;
    bool sent = record.thread->SendMessage([connection_id, reason] {
      Server& server = TheServer();
      std::unique_lock held(server.mutex);
      auto it = server.connections.find(connection_id);
      if (it == server.connections.end()) return;  // it ended meanwhile
      NbdConnection* connection = it->second.connection;
      held.unlock();
      connection->Kill(reason);
    });
    if (!sent) PX_LOG(kError, "nbd", "client %s: its thread's ring is full", record.peer);
  }
}

}  // namespace

namespace nbd {

std::optional<ExportEntry> LookupExport(std::string_view name) {
  Server& s = TheServer();
  std::lock_guard lock(s.mutex);
  if (name.empty() && s.exports.size() == 1) return s.exports.begin()->second.entry;
  auto it = s.exports.find(std::string(name));
  if (it == s.exports.end()) return std::nullopt;
  return it->second.entry;
}

std::vector<std::string> ExportNames() {
  Server& s = TheServer();
  std::lock_guard lock(s.mutex);
  std::vector<std::string> names;
  for (const auto& [name, record] : s.exports) names.push_back(name);
  return names;
}

bool BindConnection(uint64_t id, const std::string& name) {
  Server& s = TheServer();
  std::lock_guard lock(s.mutex);
  auto it = s.connections.find(id);
  if (it == s.connections.end() || s.exports.count(name) == 0) return false;
  it->second.export_name = name;
  return true;
}

void ConnectionEnded(uint64_t id) {
  Server& s = TheServer();
  std::unique_lock lock(s.mutex);
  s.connections.erase(id);
  if (!s.connections.empty() || s.stop_waiters.empty()) return;
  auto waiters = std::move(s.stop_waiters);
  s.stop_waiters.clear();
  Thread* app = s.app_thread;
  lock.unlock();
  auto* boxed = new std::vector<absl::AnyInvocable<void(absl::Status)>>(std::move(waiters));
  if (!app->SendMessage([boxed] {
        for (auto& done : *boxed) done(absl::OkStatus());
        delete boxed;
      })) {
    PX_LOG(kError, "nbd", "the app thread's ring is full: nbd_server_stop not answered");
  }
}

void KillConnectionLater(uint64_t id, std::string reason) {
  KillConnections(
      TheServer(), [id](uint64_t other, const ConnectionRecord&) { return other == id; }, reason);
}

}  // namespace nbd

absl::StatusOr<rpc::Json> StartNbdServer(const NbdServerOptions& options) {
  Server& s = TheServer();
  {
    std::lock_guard lock(s.mutex);
    if (s.running) {
      return absl::AlreadyExistsError("an NBD server runs already: nbd_server_stop first");
    }
    if (!s.connections.empty()) {
      return absl::UnavailableError("the last NBD server's clients are still leaving");
    }
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  rpc::Json endpoint;
  if (!options.socket.empty()) {
    absl::StatusOr<UnixListener> listener =
        UnixListener::Listen(options.socket, "NBD socket", "nbd", 0600);
    if (!listener.ok()) return listener.status();
    s.unix_listener = std::move(*listener);
    s.listen_fd = s.unix_listener.fd();
    endpoint = {{"socket", options.socket}};
  } else {
    uint16_t port = 0;
    absl::StatusOr<int> fd = ListenTcp(options, port);
    if (!fd.ok()) return fd.status();
    s.listen_fd = *fd;
    endpoint = {{"address", options.address}, {"port", port}};
  }
  s.app_thread = Thread::Current();
  if (absl::Status added = s.app_thread->AddFdHandler(s.listen_fd, AcceptAll); !added.ok()) {
    if (options.socket.empty()) close(s.listen_fd);
    s.unix_listener.Close();
    s.listen_fd = -1;
    return added;
  }
  s.options = options;
  s.endpoint = endpoint;
  {
    std::lock_guard lock(s.mutex);
    s.running = true;
  }
  PX_LOG(kNotice, "nbd", "NBD server listening on %s", endpoint.dump());
  return endpoint;
}

void StopNbdServer(absl::AnyInvocable<void(absl::Status)> done) {
  Server& s = TheServer();
  std::unique_lock lock(s.mutex);
  if (!s.running) {
    lock.unlock();
    return done(absl::FailedPreconditionError("no NBD server runs"));
  }
  s.running = false;
  std::map<std::string, ExportRecord> exports = std::move(s.exports);
  s.exports.clear();
  lock.unlock();
  exports.clear();  // closes the watches, on the app thread
  s.app_thread->RemoveFdHandler(s.listen_fd);
  if (s.options.socket.empty()) {
    close(s.listen_fd);
  } else {
    s.unix_listener.Close();
  }
  s.listen_fd = -1;
  PX_LOG(kNotice, "nbd", "NBD server stopped");
  KillConnections(
      s, [](uint64_t, const ConnectionRecord&) { return true; }, "the NBD server stops");
  lock.lock();
  if (s.connections.empty()) {
    lock.unlock();
    return done(absl::OkStatus());
  }
  s.stop_waiters.push_back(std::move(done));
}

absl::Status AddNbdExport(const NbdExportOptions& options) {
  Server& s = TheServer();
  if (options.name.empty() || options.name.size() > nbd::kMaxStringSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("export name must be 1 to %u bytes", nbd::kMaxStringSize));
  }
  if (options.description.size() > nbd::kMaxStringSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("description must be at most %u bytes", nbd::kMaxStringSize));
  }
  {
    std::lock_guard lock(s.mutex);
    if (!s.running) {
      return absl::FailedPreconditionError("no NBD server runs: nbd_server_start first");
    }
    if (s.exports.count(options.name) != 0) {
      return absl::AlreadyExistsError(absl::StrFormat("export \"%s\" exists", options.name));
    }
  }
  std::string name = options.name;
  absl::StatusOr<std::unique_ptr<BdevDesc>> watch =
      BdevDesc::Open(options.bdev_name, false, [name](BdevEvent event, Bdev& bdev) {
        if (event != BdevEvent::kRemove) return;
        PX_LOG(kWarning, "nbd", "export \"%s\" removed: bdev %s went away", name, bdev.name());
        // Not inside the layer's callback: removing closes this descriptor.
        if (!Thread::Current()->SendMessage([name] { (void)RemoveNbdExport(name); })) {
          PX_LOG(kError, "nbd", "export \"%s\": the app thread's ring is full", name);
        }
      });
  if (!watch.ok()) return watch.status();
  std::lock_guard lock(s.mutex);
  s.exports[options.name] = ExportRecord{
      ExportEntry{options.name, options.bdev_name, options.description, options.readonly},
      std::move(*watch)};
  PX_LOG(kInfo, "nbd", "exporting bdev %s as \"%s\"%s", options.bdev_name, options.name,
         options.readonly ? " read-only" : "");
  return absl::OkStatus();
}

absl::Status RemoveNbdExport(const std::string& name) {
  Server& s = TheServer();
  std::unique_lock lock(s.mutex);
  auto it = s.exports.find(name);
  if (it == s.exports.end()) {
    return absl::NotFoundError(absl::StrFormat("no export \"%s\"", name));
  }
  std::unique_ptr<BdevDesc> watch = std::move(it->second.watch);
  s.exports.erase(it);
  lock.unlock();
  watch.reset();
  KillConnections(
      s, [&name](uint64_t, const ConnectionRecord& r) { return r.export_name == name; },
      absl::StrFormat("export \"%s\" was removed", name));
  return absl::OkStatus();
}

absl::StatusOr<rpc::Json> GetNbdExports(const std::string& name) {
  Server& s = TheServer();
  std::lock_guard lock(s.mutex);
  if (!name.empty() && s.exports.count(name) == 0) {
    return absl::NotFoundError(absl::StrFormat("no export \"%s\"", name));
  }
  rpc::Json list = rpc::Json::array();
  for (const auto& [export_name, record] : s.exports) {
    if (!name.empty() && export_name != name) continue;
    rpc::Json clients = rpc::Json::array();
    for (const auto& [id, c] : s.connections) {
      if (c.export_name == export_name) clients.push_back(c.peer);
    }
    list.push_back({{"name", export_name},
                    {"bdev_name", record.entry.bdev_name},
                    {"readonly", record.entry.readonly},
                    {"description", record.entry.description},
                    {"clients", std::move(clients)}});
  }
  return list;
}

void WriteNbdConfig(rpc::Json& config) {
  Server& s = TheServer();
  std::lock_guard lock(s.mutex);
  if (!s.running) return;
  rpc::Json params = {{"max_connections", s.options.max_connections}};
  if (!s.options.socket.empty()) {
    params["socket"] = s.options.socket;
  } else {
    params["address"] = s.options.address;
    params["port"] = s.endpoint["port"];  // the bound one, when 0 asked for any
  }
  config.push_back({{"method", "nbd_server_start"}, {"params", std::move(params)}});
  for (const auto& [name, record] : s.exports) {
    rpc::Json p = {
        {"bdev_name", record.entry.bdev_name}, {"name", name}, {"readonly", record.entry.readonly}};
    if (!record.entry.description.empty()) p["description"] = record.entry.description;
    config.push_back({{"method", "nbd_export_add"}, {"params", std::move(p)}});
  }
}

}  // namespace pollux
