#include "ceph_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace pollux::testing {
namespace {

constexpr const char* kPrograms[] = {"ceph-mon", "ceph-osd", "ceph", "rbd", "monmaptool"};

// The program's path in $PATH (ChildProcess execs a path), or "".
std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string RandomUuid(std::mt19937_64& rng) {
  const uint64_t high = (rng() & ~0xf000ULL) | 0x4000ULL;
  const uint64_t low = (rng() & ~(0xcULL << 60)) | (0x8ULL << 60);
  char text[40];
  std::snprintf(text, sizeof(text), "%08lx-%04lx-%04lx-%04lx-%012lx", high >> 32,
                (high >> 16) & 0xffff, high & 0xffff, low >> 48, low & 0xffffffffffffUL);
  return text;
}

// Whether nothing listens on 127.0.0.1:port (a mon left behind there would be silently used).
bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  // Connections of a daemon just stopped linger in TIME_WAIT on its port: they do not keep a
  // new daemon from binding it (Ceph sets SO_REUSEADDR too), only a listener does.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool available = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return available;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, int lines) {
  size_t at = text.size();
  while (lines-- > 0 && at > 0) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
  }
  return text.substr(at);
}

}  // namespace

std::optional<std::string> CephCluster::MissingPrograms() {
  for (const char* program : kPrograms) {
    if (FindProgram(program).empty()) {
      return std::string(program) +
             " is not installed (scripts/setup.sh installs ceph-mon, ceph-osd and ceph-common)";
    }
  }
  return std::nullopt;
}

CephCluster::~CephCluster() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::map<std::string, std::string> CephCluster::ClientConfig() const {
  return {{"mon_host", "v2:127.0.0.1:" + std::to_string(port_)},
          {"auth_client_required", "none"},
          {"auth_cluster_required", "none"},
          {"auth_service_required", "none"},
          {"ms_bind_ipv6", "false"},
          {"rbd_cache", "false"}};
}

bool CephCluster::Start() {
  char pattern[] = "/tmp/pollux-ceph-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    error_ = "mkdtemp failed";
    return false;
  }
  dir_ = pattern;
  for (const char* sub : {"mon", "osd", "run", "log", "crash"}) {
    std::filesystem::create_directories(dir_ + "/" + sub);
  }
  std::mt19937_64 rng(std::random_device{}());
  // Daemons bind PORT+1..PORT+99: bases 100 apart, so that parallel tests' clusters seldom
  // meet (and when they do, the OSD takes the next free port of its range).
  for (int attempt = 0; attempt < 50 && port_ == 0; ++attempt) {
    int candidate = 20000 + static_cast<int>(rng() % 400) * 100;
    if (PortFree(candidate)) port_ = candidate;
  }
  if (port_ == 0) {
    error_ = "no free port for the mon";
    return false;
  }
  fsid_ = RandomUuid(rng);
  const std::string d = dir_;
  const std::string p = std::to_string(port_);
  // The recipe's ceph.conf without the mgr (librbd does not need one), and with an OSD that
  // saves its memstore at SIGTERM (Restart). @TOKENS@ are filled in.
  std::ifstream template_file(POLLUX_CEPH_CONF_TEMPLATE);
  std::stringstream text;
  text << template_file.rdbuf();
  std::string conf = text.str();
  if (!template_file || conf.empty()) {
    error_ = std::string("cannot read ") + POLLUX_CEPH_CONF_TEMPLATE;
    return false;
  }
  for (const auto& [token, value] : {std::pair<std::string, std::string>{"@FSID@", fsid_},
                                     {"@DIR@", d},
                                     {"@PORT@", p},
                                     {"@PORT_MIN@", std::to_string(port_ + 1)},
                                     {"@PORT_MAX@", std::to_string(port_ + 99)}}) {
    for (size_t at = conf.find(token); at != std::string::npos; at = conf.find(token, at)) {
      conf.replace(at, token.size(), value);
    }
  }
  std::ofstream(conf_path()) << conf;
  std::ofstream(d + "/keyring").close();  // empty, as the recipe's `: > keyring`
  const std::string osd_uuid = RandomUuid(rng);
  return Step("monmaptool", Run("monmaptool",
                                {"--create", "--fsid", fsid_, "--addv", "a",
                                 "[v2:127.0.0.1:" + p + "]", d + "/monmap"},
                                std::chrono::seconds(30))) &&
         Step("ceph-mon --mkfs",
              Run("ceph-mon",
                  {"-i", "a", "--mkfs", "--monmap", d + "/monmap", "--keyring", d + "/keyring"},
                  std::chrono::seconds(30))) &&
         StartDaemon(mon_, "ceph-mon", "a", "mon") &&
         Step("ceph osd new", Ceph({"osd", "new", osd_uuid, "0"}, std::chrono::seconds(60))) &&
         Step("ceph-osd --mkfs", Run("ceph-osd", {"-i", "0", "--mkfs", "--osd-uuid", osd_uuid},
                                     std::chrono::seconds(60))) &&
         StartDaemon(osd_, "ceph-osd", "0", "osd") &&
         Step("ceph osd pool create", Ceph({"osd", "pool", "create", "rbd", "8", "8"})) &&
         // Blocks until the placement groups are active: the readiness point.
         Step("rbd pool init", Rbd({"pool", "init", "rbd"}));
}

void CephCluster::Stop() {
  // One at a time, OSD first: an OSD whose mon is gone spends osd_mon_shutdown_timeout (5 s)
  // trying to say goodbye. Stop: SIGTERM, SIGKILL after 5 s (the state may be thrown away).
  osd_.Stop(std::chrono::seconds(5));
  mon_.Stop(std::chrono::seconds(5));
}

bool CephCluster::Restart() {
  Stop();
  if (!PortFree(port_)) {
    error_ = "the mon port " + std::to_string(port_) + " was taken meanwhile";
    return false;
  }
  return StartDaemon(mon_, "ceph-mon", "a", "mon") && StartDaemon(osd_, "ceph-osd", "0", "osd") &&
         WaitForPool();
}

bool CephCluster::StartDaemon(ChildProcess& daemon, const std::string& program,
                              const std::string& id, const std::string& log) {
  // In the foreground (-f), so that it stays our child: stopped and reaped by its PID.
  if (daemon.Start({FindProgram(program), "-c", conf_path(), "-i", id, "-f"},
                   dir_ + "/log/" + log + ".out")) {
    return true;
  }
  error_ = "starting " + program + ": " + daemon.error();
  return false;
}

bool CephCluster::WaitForPool() {
  // Answers once the OSD is up again and the pool's placement groups are active.
  return Step("rbd ls after restart", Rbd({"ls", "rbd"}));
}

bool CephCluster::CreateImage(const std::string& name, uint64_t size_mib) {
  return Step("rbd create " + name,
              Rbd({"create", "--size", std::to_string(size_mib) + "M", "rbd/" + name}));
}

CephCommandResult CephCluster::Rbd(std::vector<std::string> args, std::chrono::seconds timeout) {
  return Run("rbd", std::move(args), timeout);
}

CephCommandResult CephCluster::Ceph(std::vector<std::string> args, std::chrono::seconds timeout) {
  return Run("ceph", std::move(args), timeout);
}

CephCommandResult CephCluster::Run(const std::string& program, std::vector<std::string> args,
                                   std::chrono::seconds timeout) {
  std::vector<std::string> argv = {FindProgram(program), "-c", conf_path()};
  for (std::string& arg : args) argv.push_back(std::move(arg));
  const std::string log = dir_ + "/log/command-" + std::to_string(++commands_run_) + ".out";
  ChildProcess command;
  CephCommandResult result;
  if (!command.Start(argv, log)) {
    result.output = command.error();
    return result;
  }
  std::optional<int> code = command.Wait(timeout);
  if (!code) command.Kill();
  result.exit_code = code.value_or(-1);
  result.output = ReadAll(log);
  return result;
}

bool CephCluster::Step(const std::string& what, const CephCommandResult& result) {
  if (result.exit_code == 0) return true;
  error_ = what + " failed (exit " + std::to_string(result.exit_code) +
           "): " + Tail(result.output, 20) + DaemonLogs();
  return false;
}

std::string CephCluster::DaemonLogs() {
  return "\n--- mon.out ---\n" + Tail(ReadAll(dir_ + "/log/mon.out"), 10) + "\n--- osd.out ---\n" +
         Tail(ReadAll(dir_ + "/log/osd.out"), 10);
}

}  // namespace pollux::testing
