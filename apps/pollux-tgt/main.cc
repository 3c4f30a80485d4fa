// pollux-tgt: the pollux target. Starts the reactors, replays a JSON config and serves
// JSON-RPC until SIGINT, SIGTERM or framework_shutdown.
#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "pollux/app/app_command_line.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/virtio/vhost_blk.h"

namespace {

constexpr char kUsage[] = R"(Usage: pollux-tgt [OPTIONS]

Starts the pollux target: one reactor per selected core, the JSON config replayed as RPC
calls, and a JSON-RPC server on a Unix socket. SIGINT or SIGTERM shut it down cleanly; a
second signal during shutdown exits at once.

Options:
  -c, --config FILE        JSON config to replay at start-up (SPDK's format:
                           {"subsystems":[{"subsystem":..,"config":[{"method":..,"params":..}]}]})
  -m, --cpus LIST          cores to run reactors on: a list ("0-1", "0,2-3") or a hex mask
                           ("0x3"); default: every core this process may run on
  -r, --rpc-socket PATH    JSON-RPC Unix socket (default /var/tmp/pollux.sock)
      --rpc-max-request-size BYTES
                           a larger request gets an error and its connection is closed
                           (default 1048576)
      --rpc-max-connections N
                           clients beyond N at once get an error and are closed (default 64)
      --rpc-request-timeout SECONDS
                           a request not completed within this time gets an error and its
                           connection is closed; 0: no limit (default 30)
  -S, --socket-dir DIR     folder for vhost-user controller sockets (default: the working
                           directory); it must exist
      --mode MODE          poll: reactors always spin; interrupt: idle reactors sleep
                           (default interrupt); overrides the config file
      --spin-window-us N   in interrupt mode, how long a reactor keeps polling after its last
                           work before it sleeps (default 100)
  -L, --log-level LEVEL    error, warning, notice, info or debug (default notice)
  -s, --mem-size MB        DPDK memory in MiB (default 512)
      --hugepages          back DPDK memory with hugepages (default: ordinary memory,
                           --no-huge, since most machines reserve none)
      --shared-mem-size MB the shared I/O arena's address space, in MiB (an even number, default
                           65536): I/O buffers a vhost-user back-end maps
      --plugin PATH        load a bdev module built outside pollux (a .so built with
                           pollux_add_plugin) before the config replays; repeatable. A plugin
                           built against another pollux version is refused
  -h, --help               print this help and exit
  -v, --version            print the version and exit
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<pollux::AppCommandLineOption> own = {
      {"socket-dir", 'S', true,
       [](const char* dir) -> std::string {
         struct stat st;
         if (::stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
           return std::string("--socket-dir \"") + dir + "\": not a directory";
         }
         pollux::SetVhostSocketFolder(dir);
         return "";
       }},
      {"shared-mem-size", 0, true,
       [](const char* value) -> std::string {
         uint64_t mb = 0;
         const char* end = value + std::strlen(value);
         auto [ptr, ec] = std::from_chars(value, end, mb);
         if (*value == '\0' || ec != std::errc() || ptr != end || mb > (1u << 24)) {
           return std::string("--shared-mem-size: expected MiB, got \"") + value + "\"";
         }
         if (auto s = pollux::SetSharedIoArenaSize(mb << 20); !s.ok()) {
           return "--shared-mem-size: " + std::string(s.message());
         }
         return "";
       }},
  };
  return pollux::RunAppMain(pollux::ParseAppCommandLine(argc, argv, "pollux-tgt", kUsage, own),
                            "pollux-tgt");
}
