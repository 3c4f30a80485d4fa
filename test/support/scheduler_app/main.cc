// pollux-scheduler-test-app: SPDK's test/event/scheduler app for pollux. A pollux app (the
// framework, the scheduler when it is built, the RPC server) whose only work is what RPC asks
// for: threads that are a given percentage busy (scheduler_test_rpc.cc), so that a test can
// watch a scheduler place them and idle reactors sleep.
#include "pollux/app/app_command_line.h"

namespace {

constexpr char kUsage[] = R"(Usage: pollux-scheduler-test-app [OPTIONS]

Starts one reactor per selected core and serves JSON-RPC, with three methods beside the
framework's: scheduler_thread_create {name, cpu_mask, active_percent},
scheduler_thread_set_active {thread_id, active_percent} and scheduler_thread_delete
{thread_id}. A thread made by them spins for active_percent of each millisecond and lets its
reactor sleep for the rest. SIGINT or SIGTERM shut it down.

Options:
  -c, --config FILE        JSON config to replay at start-up (as pollux-tgt's)
  -m, --cpus LIST          cores to run reactors on: a list ("0-1", "0,2-3") or a hex mask
                           ("0x3"); default: every core this process may run on
  -r, --rpc-socket PATH    JSON-RPC Unix socket (default /var/tmp/pollux.sock)
      --mode MODE          poll or interrupt (default interrupt); overrides the config file
      --spin-window-us N   in interrupt mode, how long a reactor keeps polling after its last
                           work before it sleeps (default 100)
  -L, --log-level LEVEL    error, warning, notice, info or debug (default notice)
  -s, --mem-size MB        DPDK memory in MiB (default 512)
      --hugepages          back DPDK memory with hugepages (default: --no-huge)
  -h, --help               print this help and exit
  -v, --version            print the version and exit
)";

}  // namespace

int main(int argc, char** argv) {
  return pollux::RunAppMain(
      pollux::ParseAppCommandLine(argc, argv, "pollux-scheduler-test-app", kUsage),
      "pollux-scheduler-test-app");
}
