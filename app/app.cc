#include "pollux/app/app.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "absl/strings/str_format.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/version.h"
#include "pollux/rpc/config.h"
#include "pollux/rpc/server.h"
#include "pollux/rpc/subsystem.h"
#include "plugin_loader.h"
#include "subsystem_sequence.h"

namespace pollux {
namespace {

// Lives for one RunApp() call. Fields are touched on the app thread, except where noted.
struct AppState {
  const AppOptions* options = nullptr;
  rpc::Json config;                             // validated, before start
  std::unique_ptr<rpc::RpcServer> rpc_server;   // created on the control thread, then app thread
  std::atomic<Thread*> app_thread{nullptr};
  std::atomic<bool> shutdown_requested{false};  // any thread
  std::mutex status_mutex;                      // any thread
  absl::Status exit_status;
  int done_fd = -1;  // eventfd: written by the app thread when it has finished
  absl::AnyInvocable<void()> on_started;
};

AppState* g_app = nullptr;

void SignalDone() {
  uint64_t one = 1;
  ssize_t ignored = write(g_app->done_fd, &one, sizeof(one));
  (void)ignored;
}

void RecordExitStatus(absl::Status status) {
  std::lock_guard lock(g_app->status_mutex);
  if (g_app->exit_status.ok()) g_app->exit_status = std::move(status);
}

void FinishOnAppThread() {
  if (g_app->rpc_server != nullptr) {
    Thread::Current()->RemoveFdHandler(g_app->rpc_server->fd());
    g_app->rpc_server.reset();  // closes connections, removes the socket file
  }
  FinishSubsystems([] {
    Thread::Current()->Exit();
    SignalDone();
  });
}

void StartRpcServer() {
  if (g_app->rpc_server == nullptr) return;
  rpc::RpcServer* server = g_app->rpc_server.get();
  absl::Status s = Thread::Current()->AddFdHandler(server->fd(), [server] { server->Poll(); });
  if (!s.ok()) RequestAppShutdown(s);
}

void StartOnAppThread() {
  StartSubsystems([](absl::Status status) {
    if (!status.ok()) return RequestAppShutdown(status);
    auto after_replay = [](absl::Status replay_status) {
      if (!replay_status.ok()) return RequestAppShutdown(replay_status);
      const AppOptions& options = *g_app->options;
      ReactorRuntime* runtime = ReactorRuntime::Get();
      // The command line wins over the config file: it is what the user typed last.
      if (options.spin_window) runtime->SetSpinWindow(*options.spin_window);
      if (options.mode_from_command_line) runtime->SetMode(options.mode);
      StartRpcServer();
      if (g_app->shutdown_requested.load()) return;
      std::vector<int> cpus;
      for (auto& reactor : runtime->reactors()) cpus.push_back(reactor->cpu());
      std::string rpc_note =
          g_app->rpc_server ? absl::StrFormat(", RPC on %s", g_app->rpc_server->path()) : "";
      PX_LOG(kNotice, "app", "%s started: %zu reactors (cores %s), %s mode%s", options.name,
             cpus.size(), FormatCpuList(cpus), ReactorModeName(runtime->mode()), rpc_note);
      if (g_app->on_started) g_app->on_started();
    };
    if (g_app->config.is_null()) return after_replay(absl::OkStatus());
    rpc::ReplayConfig(g_app->config, g_app->options->config_path, rpc::MethodRegistry::Global(),
                      rpc::SubsystemRegistry::Global(), after_replay);
  });
}

// Blocks SIGINT and SIGTERM in this thread and every thread created after it (EAL's lcores
// inherit the mask), so that only the control thread's signalfd sees them.
class SignalCatcher {
 public:
  SignalCatcher() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask_, &old_mask_);
    fd_ = signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
    // A client that disconnects mid-reply must not kill the target.
    old_sigpipe_ = std::signal(SIGPIPE, SIG_IGN);
  }
  ~SignalCatcher() {
    if (fd_ >= 0) close(fd_);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    std::signal(SIGPIPE, old_sigpipe_);
  }
  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;

  int fd() const { return fd_; }
  // The signal number read, or 0.
  int Read() {
    signalfd_siginfo info;
    if (read(fd_, &info, sizeof(info)) != sizeof(info)) return 0;
    return static_cast<int>(info.ssi_signo);
  }

 private:
  sigset_t mask_, old_mask_;
  int fd_ = -1;
  void (*old_sigpipe_)(int) = SIG_DFL;
};

class EventFd {
 public:
  EventFd() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~EventFd() {
    if (fd_ >= 0) close(fd_);
  }
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Waits on the control thread until the app thread has finished. The first SIGINT/SIGTERM
// starts a shutdown; a second one during shutdown exits at once.
void WaitForShutdown(SignalCatcher& signals, int done_fd, const std::string& name) {
  int signals_seen = 0;
  while (true) {
    pollfd fds[2] = {{done_fd, POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (fds[0].revents & POLLIN) return;
    if (fds[1].revents & POLLIN) {
      int signo = signals.Read();
      if (signo == 0) continue;
      if (++signals_seen == 1) {
        PX_LOG(kNotice, "app", "%s: %s received, shutting down", name, strsignal(signo));
        RequestAppShutdown();
      } else {
        PX_LOG(kWarning, "app", "%s: second signal during shutdown, exiting now", name);
        _exit(128 + signo);
      }
    }
  }
}

}  // namespace

Thread* AppThread() { return g_app != nullptr ? g_app->app_thread.load() : nullptr; }

void RequestAppShutdown(absl::Status status) {
  if (g_app == nullptr) return;
  if (!status.ok()) RecordExitStatus(std::move(status));
  if (g_app->shutdown_requested.exchange(true)) return;
  Thread* app_thread = g_app->app_thread.load();
  if (app_thread == nullptr) return SignalDone();
  while (!app_thread->SendMessage([](void*) { FinishOnAppThread(); }, nullptr)) {
    usleep(100);
  }
}

absl::Status RunApp(const AppOptions& options, absl::AnyInvocable<void()> on_started) {
  if (g_app != nullptr) return absl::FailedPreconditionError("an app is already running");
  AppState state;
  state.options = &options;
  state.on_started = std::move(on_started);

  // Everything that can be checked before the environment starts is checked first, so that a
  // bad plugin, a bad config or a busy socket fails in milliseconds with one clear line.
  // Plugins first: the config may call their RPC methods and name their subsystems.
  if (absl::Status s = LoadPlugins(options.plugins); !s.ok()) return s;
  if (!options.config_path.empty()) {
    auto config = rpc::LoadConfigFile(options.config_path);
    if (!config.ok()) return config.status();
    if (absl::Status s = rpc::ValidateConfig(*config, options.config_path,
                                             rpc::SubsystemRegistry::Global());
        !s.ok()) {
      return s;
    }
    state.config = std::move(*config);
  }

  SignalCatcher signals;
  EventFd done;
  state.done_fd = done.fd();
  if (signals.fd() < 0 || done.fd() < 0) {
    return absl::InternalError(absl::StrFormat("signalfd/eventfd: %s", strerror(errno)));
  }
  if (!options.rpc_socket.empty()) {
    auto server = rpc::RpcServer::Listen(options.rpc_socket, rpc::MethodRegistry::Global(),
                                         options.rpc_server);
    if (!server.ok()) return server.status();
    state.rpc_server = std::move(*server);
  }

  auto eal = InitEal(options.eal);
  if (!eal.ok()) return eal.status();

  g_app = &state;
  absl::Status result;
  {
    ReactorRuntimeOptions runtime_options;
    runtime_options.mode = options.mode;
    if (options.spin_window) runtime_options.spin_window = *options.spin_window;
    auto runtime = ReactorRuntime::Start(**eal, runtime_options);
    if (!runtime.ok()) {
      result = runtime.status();
    } else {
      auto app_thread = Thread::Create("app_thread", {.cpu = (*runtime)->reactors()[0]->cpu()});
      if (!app_thread.ok()) {
        result = app_thread.status();
      } else {
        state.app_thread.store(*app_thread);
        while (!(*app_thread)->SendMessage([](void*) { StartOnAppThread(); }, nullptr)) usleep(100);
        WaitForShutdown(signals, done.fd(), options.name);
        std::lock_guard lock(state.status_mutex);
        result = state.exit_status;
      }
      state.app_thread.store(nullptr);
      runtime->reset();  // stops the reactors
    }
  }
  state.rpc_server.reset();  // when start-up failed before the app thread took it over
  g_app = nullptr;
  eal->reset();
  return result;
}

const char* PolluxVersion() { return POLLUX_VERSION; }

}  // namespace pollux
