#include "durability_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "block_record.h"
#include "nlohmann/json.hpp"
#include "pollux/bdev/bdev_desc.h"

namespace pollux::durability {
namespace {

// The last round the state file records as flushed; 0 when none.
uint64_t LastFlushedRound(const std::string& path) {
  std::ifstream in(path);
  uint64_t round = 0, last = 0;
  while (in >> round) last = round;
  return last;
}

class DurabilityRun {
 public:
  DurabilityRun(DurabilityOptions options, std::unique_ptr<BdevDesc> desc,
                absl::AnyInvocable<void(absl::Status)> done)
      : options_(std::move(options)), desc_(std::move(desc)), done_(std::move(done)) {
    const Bdev& bdev = desc_->bdev();
    block_size_ = bdev.block_size();
    unit_blocks_ = std::max<uint64_t>(1, 4096 / block_size_);
    units_ = std::min(options_.units, bdev.block_count() / unit_blocks_);
    channel_ = desc_->GetIoChannel();
    slots_.resize(options_.depth);
    for (Slot& slot : slots_) {
      slot.run = this;
      slot.buffer = static_cast<uint8_t*>(std::aligned_alloc(4096, UnitBytes()));
    }
    flushed_ = LastFlushedRound(options_.state_path);
  }
  ~DurabilityRun() {
    if (state_fd_ >= 0) ::close(state_fd_);
    for (Slot& slot : slots_) std::free(slot.buffer);
  }

  void Start() {
    if (units_ == 0 || !channel_)
      return Finish(absl::FailedPreconditionError("no room or channel"));
    if (options_.check) return Fill();
    state_fd_ =
        ::open(options_.state_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (state_fd_ < 0) return Finish(absl::InternalError("cannot open " + options_.state_path));
    round_ = flushed_ + 1;
    Fill();
  }

 private:
  struct Slot {
    DurabilityRun* run = nullptr;
    uint8_t* buffer = nullptr;
    uint64_t unit = 0;
  };

  uint64_t UnitBytes() const { return unit_blocks_ * block_size_; }

  // Keeps `depth` requests in flight until every unit of this pass has been submitted.
  void Fill() {
    for (Slot& slot : slots_) {
      if (slot.unit != 0 || next_unit_ >= units_) continue;
      Submit(slot);
    }
  }

  void Submit(Slot& slot) {
    slot.unit = next_unit_++ + 1;  // 0 marks a free slot
    const uint64_t lba = (slot.unit - 1) * unit_blocks_;
    ++in_flight_;
    if (options_.check) {
      return desc_->Read(*channel_, slot.buffer, lba, unit_blocks_, &OnDone, &slot);
    }
    for (uint64_t b = 0; b < unit_blocks_; ++b) {
      FillBlock(slot.buffer + b * block_size_, block_size_, round_, lba + b);
    }
    desc_->Write(*channel_, slot.buffer, lba, unit_blocks_, &OnDone, &slot);
  }

  static void OnDone(void* arg, BdevIoStatus status, int error_number) {
    Slot& slot = *static_cast<Slot*>(arg);
    DurabilityRun& run = *slot.run;
    --run.in_flight_;
    if (status != BdevIoStatus::kSuccess && run.failure_.ok()) {
      run.failure_ = absl::InternalError(
          absl::StrFormat("%s of unit %u failed: %s", run.options_.check ? "read" : "write",
                          slot.unit - 1, std::strerror(error_number)));
    }
    if (!run.failure_.ok()) {  // no more submissions; the end once the last one is back
      slot.unit = 0;
      if (run.in_flight_ == 0) run.Finish(run.failure_);
      return;
    }
    if (run.options_.check) run.CheckUnit(slot);
    slot.unit = 0;
    if (run.next_unit_ < run.units_) return run.Submit(slot);
    if (run.in_flight_ != 0) return;
    if (run.options_.check) return run.Report();
    run.desc_->Flush(*run.channel_, 0, run.desc_->bdev().block_count(), &OnFlushed, &run);
  }

  static void OnFlushed(void* arg, BdevIoStatus status, int error_number) {
    DurabilityRun& run = *static_cast<DurabilityRun*>(arg);
    if (status != BdevIoStatus::kSuccess) {
      return run.Finish(absl::InternalError(absl::StrFormat(
          "flush of round %u failed: %s", run.round_, std::strerror(error_number))));
    }
    // Only now is the round acknowledged as durable.
    const std::string line = absl::StrFormat("%u\n", run.round_);
    if (::write(run.state_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return run.Finish(absl::InternalError("cannot append to " + run.options_.state_path));
    }
    if (run.options_.rounds != 0 && run.round_ - run.flushed_ >= run.options_.rounds) {
      return run.Finish(absl::OkStatus());
    }
    ++run.round_;
    run.next_unit_ = 0;
    run.Fill();
  }

  void CheckUnit(const Slot& slot) {
    const uint64_t lba = (slot.unit - 1) * unit_blocks_;
    for (uint64_t b = 0; b < unit_blocks_; ++b) {
      std::string why;
      const int64_t round = BlockRound(slot.buffer + b * block_size_, block_size_, lba + b, &why);
      if (round < 0 && (flushed_ != 0 || why.find("never written") == std::string::npos)) {
        errors_.push_back(why);
      } else if (round >= 0 && flushed_ != 0 &&
                 (static_cast<uint64_t>(round) < flushed_ ||
                  static_cast<uint64_t>(round) > flushed_ + 1)) {
        errors_.push_back(absl::StrFormat("block %u holds round %d, but round %u was flushed",
                                          lba + b, round, flushed_));
      }
      ++rounds_seen_[round];
    }
  }

  void Report() {
    nlohmann::json report = {{"flushed_round", flushed_}, {"blocks", units_ * unit_blocks_}};
    for (const auto& [round, count] : rounds_seen_) {
      report["rounds"][round < 0 ? "unwritten" : std::to_string(round)] = count;
    }
    report["errors"] = nlohmann::json::array();
    for (size_t i = 0; i < errors_.size() && i < 20; ++i) report["errors"].push_back(errors_[i]);
    report["error_count"] = errors_.size();
    std::printf("%s\n", report.dump(2).c_str());
    std::fflush(stdout);
    Finish(errors_.empty() ? absl::OkStatus()
                           : absl::DataLossError(absl::StrFormat("%u blocks fail the check: %s",
                                                                 errors_.size(), errors_[0])));
  }

  // Nothing is in flight: the descriptor closes here, on its thread, before done runs.
  void Finish(absl::Status status) {
    auto done = std::move(done_);
    delete this;
    done(status);
  }

  DurabilityOptions options_;
  std::unique_ptr<BdevDesc> desc_;
  absl::AnyInvocable<void(absl::Status)> done_;
  IoChannelRef channel_;
  std::vector<Slot> slots_;
  uint32_t block_size_ = 0;
  uint64_t unit_blocks_ = 1;
  uint64_t units_ = 0;
  uint64_t next_unit_ = 0;
  uint32_t in_flight_ = 0;
  uint64_t flushed_ = 0;
  uint64_t round_ = 0;
  int state_fd_ = -1;
  absl::Status failure_;
  std::vector<std::string> errors_;
  std::map<int64_t, uint64_t> rounds_seen_;
};

}  // namespace

void StartDurabilityRun(const DurabilityOptions& options,
                        absl::AnyInvocable<void(absl::Status)> done) {
  absl::StatusOr<std::unique_ptr<BdevDesc>> desc =
      BdevDesc::Open(options.bdev, !options.check, [](BdevEvent, Bdev&) {});
  if (!desc.ok()) return done(desc.status());
  if (!options.check && !(*desc)->bdev().write_cache()) {
    return done(absl::FailedPreconditionError(options.bdev + " does not report a write cache"));
  }
  // Deletes itself when it finishes (a writer without a round limit never does: it is killed).
  auto* run = new DurabilityRun(options, std::move(*desc), std::move(done));
  run->Start();
}

}  // namespace pollux::durability
