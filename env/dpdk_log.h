// DPDK's log (rte_log: EAL, rte_vhost, rings, ...) as pollux log lines. DPDK's default stream
// writes a message bare (no time, no level) to the console and to syslog; while a
// DpdkLogForwarder is installed, each line DPDK writes is logged with LogLine under the
// component "dpdk", at the level DPDK gave it, and shown or not by pollux's log level (which
// also sets DPDK's own thresholds: EalOptions::quiet, the vhost controller's). Private to env/.
//
// Threads: installed and destroyed on the control thread (InitEal, ~EalSession); DPDK writes
// through it from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "pollux/env/log.h"

namespace pollux {

class DpdkLogForwarder {
 public:
  // Hands DPDK a stream that forwards. nullptr when no stream can be made: DPDK keeps its own.
  static std::unique_ptr<DpdkLogForwarder> Install();
  // Gives DPDK its default stream back.
  ~DpdkLogForwarder();
  DpdkLogForwarder(const DpdkLogForwarder&) = delete;
  DpdkLogForwarder& operator=(const DpdkLogForwarder&) = delete;

 private:
  DpdkLogForwarder() = default;
};

// pollux's level for DPDK's (RTE_LOG_EMERG .. RTE_LOG_DEBUG): the three above error are errors.
LogLevel LogLevelOfDpdk(uint32_t dpdk_level);

// What the forwarding stream does with `text`, written by DPDK at `dpdk_level` on the calling
// thread: whole lines are logged; a line without its newline yet waits (per thread) for the
// rest, keeping the level of its first piece. Exposed for tests.
void ForwardDpdkLogText(std::string_view text, uint32_t dpdk_level);

}  // namespace pollux
