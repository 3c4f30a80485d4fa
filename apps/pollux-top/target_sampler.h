// pollux-top's side of the RPC socket: calls the methods a view reads, keeps the two latest
// samples of each (rates come from their difference), and reconnects once the target is back.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rpc_client.h"
#include "view_models.h"

namespace pollux::top {

class TargetSampler {
 public:
  // `timeout`: how long a call may take before the target counts as not answering.
  TargetSampler(std::string socket, std::chrono::milliseconds timeout);

  // Samples every method of `view` (connecting first when not connected). Errors: Unavailable
  // when the target is gone (no socket, refused, closed), DeadlineExceeded when it does not
  // answer in time, and the method's own error otherwise. After a transport error the
  // connection is dropped and the samples forgotten: the next target's counters start anew.
  absl::Status Sample(ViewKind view);

  // The samples of `view`'s methods, in MethodsOf's order; a method the target does not have
  // (-32601) has an empty pair.
  std::vector<const SamplePair*> SamplesOf(ViewKind view) const;

  bool connected() const { return client_.has_value(); }
  const std::string& socket() const { return socket_; }

 private:
  using Clock = rpc::RpcClient::Clock;

  absl::Status Connect();
  void Disconnect();

  std::string socket_;
  std::chrono::milliseconds timeout_;
  Clock::time_point epoch_ = Clock::now();
  std::optional<rpc::RpcClient> client_;
  std::map<std::string, SamplePair> samples_;  // by method
};

}  // namespace pollux::top
