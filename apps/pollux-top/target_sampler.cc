#include "target_sampler.h"

#include "absl/strings/str_cat.h"

namespace pollux::top {

TargetSampler::TargetSampler(std::string socket, std::chrono::milliseconds timeout)
    : socket_(std::move(socket)), timeout_(timeout) {}

absl::Status TargetSampler::Connect() {
  absl::StatusOr<rpc::RpcClient> client = rpc::RpcClient::Connect(socket_, Clock::now() + timeout_);
  if (!client.ok()) return client.status();
  client_.emplace(*std::move(client));
  return absl::OkStatus();
}

void TargetSampler::Disconnect() {
  client_.reset();
  samples_.clear();
}

absl::Status TargetSampler::Sample(ViewKind view) {
  if (!client_) {
    if (absl::Status status = Connect(); !status.ok()) return status;
  }
  for (const MethodCall& call : MethodsOf(view)) {
    absl::StatusOr<rpc::RpcReply> reply =
        client_->Call(call.method, call.params, Clock::now() + timeout_);
    if (!reply.ok()) {
      Disconnect();
      return reply.status();
    }
    SamplePair& pair = samples_[call.method];
    if (!reply->ok) {
      pair = SamplePair{};
      if (reply->code == rpc::kMethodNotFound) continue;  // a target without that component
      return absl::InternalError(
          absl::StrCat(call.method, ": error ", reply->code, ": ", reply->message));
    }
    const double now_s = std::chrono::duration<double>(Clock::now() - epoch_).count();
    pair.previous = std::move(pair.current);
    pair.current = MethodSample{std::move(reply->result), now_s};
  }
  return absl::OkStatus();
}

std::vector<const SamplePair*> TargetSampler::SamplesOf(ViewKind view) const {
  std::vector<const SamplePair*> samples;
  for (const MethodCall& call : MethodsOf(view)) {
    auto it = samples_.find(call.method);
    samples.push_back(it != samples_.end() ? &it->second : nullptr);
  }
  return samples;
}

}  // namespace pollux::top
