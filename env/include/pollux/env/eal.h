// The DPDK environment (EAL) of a pollux process.
//
// Layout of lcores: lcore 0 is the control thread (the caller of Init: the main thread of the
// process), which floats over every selected core and mostly sleeps; lcores 1..N are the reactor
// lcores, one pinned to each selected core. This keeps the control thread (gtest's, or the app's
// main) out of the poll loops.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux {

class DpdkLogForwarder;

struct EalOptions {
  std::vector<int> cpus;        // one reactor per core; empty: every core this process may use
  size_t memory_mb = 512;       // DPDK memory (-m)
  bool hugepages = false;       // off: --no-huge (these machines have none)
  std::string file_prefix;      // empty: "pollux_<pid>", so that processes never collide
  bool quiet = true;            // EAL's own notices go to the log only at info level
};

// One reactor lcore: the EAL lcore id and the core it is pinned to.
struct ReactorLcore {
  unsigned lcore_id;
  int cpu;
};

// The initialised environment. EAL can be initialised only once per process: a second Init
// fails. While the session lives, DPDK's log lines are pollux log lines (component "dpdk").
// Destroying the session calls rte_eal_cleanup() and removes the runtime directory.
class EalSession {
 public:
  ~EalSession();
  EalSession(const EalSession&) = delete;
  EalSession& operator=(const EalSession&) = delete;

  const std::vector<ReactorLcore>& reactor_lcores() const { return reactor_lcores_; }
  const std::string& file_prefix() const { return file_prefix_; }
  // The arguments handed to rte_eal_init, for logs and error messages.
  const std::vector<std::string>& eal_args() const { return eal_args_; }

 private:
  friend absl::StatusOr<std::unique_ptr<EalSession>> InitEal(const EalOptions& options);
  EalSession() = default;

  std::vector<ReactorLcore> reactor_lcores_;
  std::string file_prefix_;
  std::vector<std::string> eal_args_;
  std::string runtime_dir_;
  std::unique_ptr<DpdkLogForwarder> log_forwarder_;  // nullptr: DPDK logs on its own
};

// Checks the options, builds the EAL arguments and initialises EAL. Errors carry EAL's own
// message (captured from its log) instead of aborting.
absl::StatusOr<std::unique_ptr<EalSession>> InitEal(const EalOptions& options);

// The EAL arguments InitEal would pass (for tests and --help output).
absl::StatusOr<std::vector<std::string>> BuildEalArgs(const EalOptions& options,
                                                      std::vector<int>* cpus_out);

}  // namespace pollux
