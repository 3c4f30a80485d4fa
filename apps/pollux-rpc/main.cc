// pollux-rpc: calls one JSON-RPC method of a running pollux-tgt. See Usage() for the options
// and the exit status.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "command_line.h"
#include "help_format.h"
#include "pollux/env/version.h"
#include "rpc_client.h"

namespace {

constexpr const char* kDefaultSocket = "/var/tmp/pollux.sock";

enum ExitCode : int {
  kExitOk = 0,
  kExitRpcError = 1,
  kExitUnreachable = 2,
  kExitTimeout = 3,
  kExitUsage = 64,
};

int Fail(int code, std::string_view message) {
  std::cerr << "pollux-rpc: " << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using pollux::rpc::Json;
  using pollux::rpc::RpcClient;

  const char* env_socket = std::getenv("POLLUX_RPC_SOCKET");
  const std::string default_socket = env_socket && *env_socket ? env_socket : kDefaultSocket;
  absl::StatusOr<pollux::rpc::CommandLine> line =
      pollux::rpc::ParseCommandLine(argc, argv, default_socket);
  if (!line.ok()) {
    return Fail(kExitUsage, std::string(line.status().message()) + " (see pollux-rpc --help)");
  }
  // --help without METHOD: the usage, then the target's methods if one is reachable. With
  // METHOD: the method's help, from the target's specs (they check its parameters too).
  const bool general_help = line->help && line->method.empty();
  if (general_help) std::cout << pollux::rpc::Usage("pollux-rpc", default_socket);
  if (line->version) {
    std::cout << "pollux-rpc " << POLLUX_VERSION << "\n";
    return kExitOk;
  }

  // 0 (or more than a year, which would overflow the clock) means no timeout.
  constexpr double kForever = 365.0 * 24 * 3600;
  RpcClient::Clock::time_point deadline = RpcClient::Clock::time_point::max();
  if (line->timeout_s > 0 && line->timeout_s < kForever) {
    deadline = RpcClient::Clock::now() + std::chrono::duration_cast<RpcClient::Clock::duration>(
                                             std::chrono::duration<double>(line->timeout_s));
  }
  auto exit_code_of = [&](const absl::Status& status) {
    if (absl::IsDeadlineExceeded(status)) {
      return Fail(kExitTimeout,
                  absl::StrCat(status.message(), " (timeout ", line->timeout_s, " s; see -t)"));
    }
    return Fail(kExitUnreachable, std::string(status.message()));
  };

  // -r: a target that is starting has no socket yet (ENOENT) or one not listening yet
  // (ECONNREFUSED): both Unavailable. Retried 0.2 s apart, as SPDK's rpc.py --conn-retries.
  absl::StatusOr<RpcClient> client = RpcClient::Connect(line->socket, deadline);
  for (int retry = 0; retry < line->conn_retries && absl::IsUnavailable(client.status()); ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client = RpcClient::Connect(line->socket, deadline);
  }
  if (!client.ok() && general_help) {
    std::cout << "\nStart pollux-tgt (or give its socket with -s) to list its methods here.\n";
    return kExitOk;
  }
  if (!client.ok()) {
    if (absl::IsDeadlineExceeded(client.status())) return exit_code_of(client.status());
    return Fail(kExitUnreachable,
                std::string(client.status().message()) + "; is pollux-tgt running?");
  }
  const bool list_methods = line->method.empty() && !line->help;
  std::string method = line->method;
  Json params = line->params;
  if (line->help) {
    method = "rpc_get_method_help";
    params = general_help ? Json() : Json{{"name", line->method}};
  } else if (list_methods) {
    method = "rpc_get_methods";
  }
  absl::StatusOr<pollux::rpc::RpcReply> reply = client->Call(method, params, deadline);
  if (general_help && (!reply.ok() || !reply->ok)) {
    std::cout << "\nThe target at " << line->socket << " did not list its methods.\n";
    return kExitOk;
  }
  if (!reply.ok()) return exit_code_of(reply.status());

  if (!reply->ok) {
    Json error = {{"code", reply->code}, {"message", reply->message}};
    std::cerr << error.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return kExitRpcError;
  }
  if (general_help) {
    std::cout << "\nMethods of the target at " << line->socket
              << ", by component (pollux-rpc METHOD --help describes one):\n"
              << pollux::rpc::FormatMethodList(reply->result);
  } else if (line->help) {
    std::cout << pollux::rpc::FormatMethodHelp(reply->result);
  } else if (list_methods && reply->result.is_array()) {
    for (const Json& name : reply->result) {
      std::cout << (name.is_string() ? name.get<std::string>() : name.dump()) << "\n";
    }
  } else {
    std::cout << reply->result.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  }
  return kExitOk;
}
