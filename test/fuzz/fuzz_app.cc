#include "fuzz_app.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "pollux/app/app.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/io_memory.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "pollux/rpc/config.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"
#include "pollux/virtio/vhost_blk.h"

namespace pollux::fuzz {
namespace {

// Signalled once by whoever finishes; waited for with a deadline.
class Latch {
 public:
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  bool Wait(int timeout_s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(timeout_s), [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::thread* app_thread = nullptr;

// At exit (libFuzzer's, or the replay's return from main): an orderly shutdown, so that the
// app's threads are gone before static destructors run and leak checks see a finished target.
void StopApp() {
  if (app_thread == nullptr) return;
  RequestAppShutdown();
  app_thread->join();
}

}  // namespace

void Die(const std::string& why) {
  std::fprintf(stderr, "fuzz: %s\n", why.c_str());
  std::abort();
}

FuzzApp& FuzzApp::Get() {
  static FuzzApp* app = [] {
    auto* created = new FuzzApp();
    created->Start();
    return created;
  }();
  return *app;
}

void FuzzApp::Start() {
  char folder[] = "/tmp/pollux-fuzz-XXXXXX";
  if (::mkdtemp(folder) == nullptr) Die(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = folder;
  rpc_socket_ = dir_ + "/rpc.sock";
  SetVhostSocketFolder(dir_);
  // Warnings are what bad input gets; at millions of inputs they would be the whole output.
  SetLogLevel(LogLevel::kError);
  // An input may ask for anything, but the target must outlive it.
  rpc::MethodRegistry::Global().Unregister("framework_shutdown");

  AppOptions options;
  options.name = "fuzz";
  options.rpc_socket = rpc_socket_;
  options.eal.cpus = {0};
  options.eal.memory_mb = 256;
  // A malloc bdev of gigabytes would be populated page by page: seconds per input, and the
  // process's RSS towards libFuzzer's limit. Beyond this, creating one fails as it would on a
  // small machine.
  IoMemory::SetKernelBytesLimit(512ull << 20);
  options.mode = ReactorMode::kInterrupt;
  static Latch started;
  app_thread = new std::thread([options] {
    absl::Status status = RunApp(options, [] { started.Open(); });
    if (!status.ok()) Die("the app stopped: " + std::string(status.message()));
  });
  if (!started.Wait(120)) Die("the app did not start within 120 s");
  std::atexit(StopApp);
}

void FuzzApp::RunOnAppThread(absl::AnyInvocable<void(absl::AnyInvocable<void()> done)> fn,
                             int timeout_s) {
  auto latch = std::make_shared<Latch>();
  if (!RunOnThread(AppThread()->id(),
                   [fn = std::move(fn), latch]() mutable { fn([latch] { latch->Open(); }); })) {
    Die("cannot send a message to the app thread");
  }
  if (!latch->Wait(timeout_s)) Die("the app thread did not finish a call within the timeout");
}

std::string FuzzApp::Exchange(std::string_view bytes) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) Die(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, rpc_socket_.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("connect " + rpc_socket_ + ": " + std::strerror(errno));
  }
  // Written and read at once: a client that only wrote could fill the server's reply buffer
  // and stop being read (the server's back-pressure), and both would wait forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string replies;
  size_t sent = 0;
  bool write_shut = false;
  char buffer[64 * 1024];
  for (;;) {
    if (sent == bytes.size() && !write_shut) {
      ::shutdown(fd, SHUT_WR);
      write_shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_shut ? 0 : POLLOUT)), 0};
    ::poll(&p, 1, 100);
    if (std::chrono::steady_clock::now() > deadline) {
      Die("the RPC server did not answer and close within 60 s (" + std::to_string(sent) + " of " +
          std::to_string(bytes.size()) + " bytes sent)");
    }
    if (!write_shut && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = bytes.size();  // the server closed the connection (a request too large)
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        replies.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        break;
      }
    }
  }
  ::close(fd);
  return replies;
}

// How to undo one entry of a saved config: the delete method and its params, or nullopt when
// the entry creates nothing (options).
std::optional<std::pair<std::string, rpc::Json>> UndoOf(const rpc::Json& entry) {
  const std::string method = entry.value("method", "");
  const rpc::Json params = entry.value("params", rpc::Json::object());
  if (method == "vhost_create_blk_controller") {
    return std::make_pair("vhost_delete_controller", rpc::Json{{"ctrlr", params["ctrlr"]}});
  }
  if (method == "bdev_virtio_attach_controller") {
    return std::make_pair("bdev_virtio_detach_controller", rpc::Json{{"name", params["name"]}});
  }
  if (method == "bdev_error_create") {  // named after its base, as SPDK's
    return std::make_pair("bdev_error_delete",
                          rpc::Json{{"name", "EE_" + params.value("base_name", "")}});
  }
  constexpr std::string_view kCreate = "_create";
  if (method.size() > kCreate.size() && method.ends_with(kCreate) && params.contains("name")) {
    return std::make_pair(method.substr(0, method.size() - kCreate.size()) + "_delete",
                          rpc::Json{{"name", params["name"]}});
  }
  return std::nullopt;
}

// What a saved config creates, newest first (undone in that order: a virtual bdev before its
// base).
std::vector<std::pair<std::string, rpc::Json>> UndoList(const rpc::Json& saved) {
  std::vector<std::pair<std::string, rpc::Json>> undo;
  for (const rpc::Json& subsystem : saved["subsystems"]) {
    const rpc::Json& config = subsystem["config"];
    if (!config.is_array()) continue;
    for (const rpc::Json& entry : config) {
      if (auto step = UndoOf(entry)) undo.push_back(std::move(*step));
    }
  }
  std::reverse(undo.begin(), undo.end());
  return undo;
}

void FuzzApp::Reset() {
  // As a user would: each thing deleted by its own method, which also makes its module forget
  // it (a passthru remembers its base, to attach when the base comes back). Whatever is left
  // (a bdev whose delete failed) is unregistered by force.
  rpc::Json saved;
  RunOnAppThread([&saved](absl::AnyInvocable<void()> done) {
    saved = rpc::SaveConfig(rpc::SubsystemRegistry::Global());
    done();
  });
  // A saved config lists bdevs by module, not by what is built on what: a delete refused
  // because the bdev is claimed is tried again after the others.
  std::vector<std::pair<std::string, rpc::Json>> undo = UndoList(saved);
  std::string failures;  // of the last pass, for the message if something is left
  for (size_t left = undo.size() + 1; !undo.empty() && undo.size() < left;) {
    left = undo.size();
    failures.clear();
    std::vector<std::pair<std::string, rpc::Json>> refused;
    for (auto& step : undo) {
      RunOnAppThread([&](absl::AnyInvocable<void()> done) {
        rpc::MethodRegistry::Global().Call(
            step.first, step.second, [&, done = std::move(done)](rpc::RpcReply reply) mutable {
              if (!reply.ok) {
                failures += step.first + " " + step.second.dump() + ": " + reply.message + "\n";
                refused.push_back(step);
              }
              done();
            });
      });
    }
    undo = std::move(refused);
  }
  RunOnAppThread([](absl::AnyInvocable<void()> done) {
    DeleteAllVhostControllers(
        [done = std::move(done)]() mutable { UnregisterAllBdevs(std::move(done)); });
  });
  RunOnAppThread([&saved](absl::AnyInvocable<void()> done) {
    saved = rpc::SaveConfig(rpc::SubsystemRegistry::Global());
    done();
  });
  if (std::vector<std::pair<std::string, rpc::Json>> left = UndoList(saved); !left.empty()) {
    Die("deleting everything left " + left.front().first + " " + left.front().second.dump() +
        " to do in the saved config:\n" + saved.dump() + "\nfailed deletes:\n" + failures);
  }
}

size_t CheckReplies(std::string_view replies) {
  size_t count = 0;
  while (!replies.empty()) {
    size_t newline = replies.find('\n');
    if (newline == std::string_view::npos)
      Die("a reply without its newline: " + std::string(replies));
    std::string_view line = replies.substr(0, newline);
    replies.remove_prefix(newline + 1);
    rpc::Json reply = rpc::Json::parse(line, nullptr, /*allow_exceptions=*/false);
    auto bad = [&](const char* why) { Die(std::string(why) + ": " + std::string(line)); };
    if (!reply.is_object()) bad("a reply that is not a JSON object");
    if (reply.value("jsonrpc", "") != "2.0") bad("a reply without \"jsonrpc\": \"2.0\"");
    if (!reply.contains("id")) bad("a reply without \"id\"");
    const bool has_result = reply.contains("result");
    const bool has_error = reply.contains("error");
    if (has_result == has_error) bad("a reply with both or neither of result and error");
    if (has_error) {
      const rpc::Json& error = reply["error"];
      if (!error.is_object() || !error.contains("code") || !error["code"].is_number_integer()) {
        bad("an error without an integer code");
      }
      if (!error.contains("message") || !error["message"].is_string() ||
          error["message"].get_ref<const std::string&>().empty()) {
        bad("an error without a message");
      }
    }
    ++count;
  }
  return count;
}

}  // namespace pollux::fuzz
