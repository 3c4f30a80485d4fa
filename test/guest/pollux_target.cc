#include "pollux_target.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "child_process.h"

namespace pollux::testing {
namespace {

using Json = nlohmann::json;

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Accepts(const std::string& socket_path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PolluxTgtTarget>> PolluxTgtTarget::Start(
    const VhostBlkExportSpec& spec, PolluxTgtOptions options) {
  Json bdevs = Json::array();
  bdevs.push_back({{"method", "bdev_uring_create"},
                   {"params",
                    {{"name", "Disk0"}, {"filename", spec.backing_file}, {"readonly", spec.read_only}}}});
  std::string bdev = "Disk0";
  if (options.corrupt_reads) {
    bdevs.push_back({{"method", "bdev_error_create"}, {"params", {{"base_name", "Disk0"}}}});
    bdevs.push_back({{"method", "bdev_error_inject_error"},
                     {"params",
                      {{"name", "EE_Disk0"},
                       {"io_type", "read"},
                       {"error_type", "corrupt_data"},
                       {"corrupt_offset", 0},
                       {"corrupt_value", 0x5a},
                       {"always", true}}}});
    bdev = "EE_Disk0";
  }
  Json config = {
      {"subsystems",
       {{{"subsystem", "bdev"}, {"config", bdevs}},
        {{"subsystem", "vhost_blk"},
         {"config",
          {{{"method", "vhost_create_blk_controller"},
            {"params",
             {{"ctrlr", Basename(spec.socket)},
              {"dev_name", bdev},
              {"readonly", spec.read_only},
              {"packed_ring", true},
              {"cpumask", "0x3"}}}}}}}}}};
  std::string config_path = spec.socket + ".json";
  std::ofstream(config_path) << config.dump(2);
  std::unique_ptr<PolluxTgtTarget> target(new PolluxTgtTarget(spec, config_path, bdev));
  if (absl::Status s = target->Launch(); !s.ok()) return s;
  return target;
}

absl::Status PolluxTgtTarget::Launch() {
  rpc_socket_ = spec_.socket + ".rpc";
  ::unlink(rpc_socket_.c_str());
  ::unlink(spec_.socket.c_str());  // a killed target's socket: its file outlives it
  // Info level: the log quoted by failure messages says when front-ends came and went.
  if (!process_.Start({POLLUX_TGT_PATH, "-m", "0x3", "-S", Dirname(spec_.socket), "-r",
                       rpc_socket_, "-c", config_path_, "-L", "info"},
                      spec_.log_path)) {
    return absl::InternalError("pollux-tgt: " + process_.error());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.running()) {
      return absl::UnavailableError(
          absl::StrCat("pollux-tgt exited (code ", process_.exit_code().value_or(-1),
                       ") before serving ", spec_.socket, "; its log: ", spec_.log_path));
    }
    // The vhost socket appears when its controller is created; checked by its file (a probe
    // connection would be a front-end of its own, racing QEMU's reconnection).
    struct stat st;
    if (Accepts(rpc_socket_) && ::stat(spec_.socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("pollux-tgt did not serve " + spec_.socket + " within 30 s");
}

absl::Status PolluxTgtTarget::Restart() {
  process_.Kill();
  return Launch();
}

absl::StatusOr<Json> PolluxTgtTarget::Rpc(const std::string& method, const Json& params) {
  std::string out_path = spec_.socket + ".rpc.out";
  ChildProcess rpc;
  std::vector<std::string> argv = {POLLUX_RPC_PATH, "-s", rpc_socket_, method};
  if (!params.is_null()) {
    argv.push_back("-j");
    argv.push_back(params.dump());
  }
  ::unlink(out_path.c_str());
  if (!rpc.Start(argv, out_path)) return absl::InternalError("pollux-rpc: " + rpc.error());
  std::optional<int> code = rpc.Wait(std::chrono::seconds(30));
  std::ifstream in(out_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (code != 0) return absl::InternalError(absl::StrCat(method, " failed: ", text));
  Json result = Json::parse(text, nullptr, false);
  if (result.is_discarded()) return absl::InternalError(method + ": not JSON: " + text);
  return result;
}

std::string PolluxTgtTarget::DescribeState() {
  std::string text;
  for (const char* method :
       {"framework_get_reactors", "thread_get_stats", "thread_get_pollers",
        "vhost_get_controllers", "bdev_get_iostat"}) {
    absl::StatusOr<Json> result = Rpc(method);
    absl::StrAppend(&text, method, ": ",
                    result.ok() ? result->dump() : std::string(result.status().message()), "\n");
  }
  return text;
}

absl::StatusOr<std::unique_ptr<VhostBlkTarget>> PolluxTgtLauncher::Start(
    const VhostBlkExportSpec& spec) const {
  absl::StatusOr<std::unique_ptr<PolluxTgtTarget>> target = PolluxTgtTarget::Start(spec, options_);
  if (!target.ok()) return target.status();
  return std::unique_ptr<VhostBlkTarget>(std::move(*target));
}

}  // namespace pollux::testing
