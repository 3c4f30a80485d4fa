// zero-tgt: a target with pollux's bdev modules plus the out-of-tree zero module; a short
// apps/pollux-tgt/main.cc. Usage: zero-tgt [-c CONFIG] [-m CPUS] [-r RPC_SOCKET]
#include <pollux/app/app.h>
#include <pollux/env/cpu_list.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  pollux::AppOptions options;
  options.name = "zero-tgt";
  int opt;
  while ((opt = getopt(argc, argv, "c:m:r:")) != -1) {
    if (opt == 'c') {
      options.config_path = optarg;
    } else if (opt == 'r') {
      options.rpc_socket = optarg;
    } else if (opt == 'm') {
      absl::StatusOr<std::vector<int>> cpus = pollux::ParseCpuList(optarg);
      if (!cpus.ok()) {
        std::fprintf(stderr, "zero-tgt: %s\n", std::string(cpus.status().message()).c_str());
        return 2;
      }
      options.eal.cpus = *cpus;
    } else {
      std::fprintf(stderr, "Usage: zero-tgt [-c CONFIG] [-m CPUS] [-r RPC_SOCKET]\n");
      return 2;
    }
  }
  absl::Status status = pollux::RunApp(options);
  if (!status.ok()) {
    std::fprintf(stderr, "zero-tgt: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
