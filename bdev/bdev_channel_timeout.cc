// Per-I/O timeouts (SPDK's spdk_bdev_set_timeout and bdev_channel_poll_timeout).
//
// A descriptor's timeout lives in its bdev's state (BdevState::timeouts); every channel of the
// bdev keeps a copy of that list and, while it is not empty, a timed poller that walks the
// channel's in-flight list and reports each caller I/O of a watching descriptor outstanding
// longer than that descriptor's timeout, once. The list is in submission order, so a walk
// stops at the first I/O that is not late; what was reported is remembered as a TSC
// watermark per watch, not as a flag in every BdevIo (nothing more on the submission path).
// No timeout set, no poller: an idle reactor sleeps as before.
#include <rte_cycles.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "bdev_channel.h"
#include "bdev_state.h"
#include "pollux/reactor/thread.h"

namespace pollux {

void BdevChannel::RefreshTimeouts() {
  std::vector<ChannelTimeoutWatch> watches;
  uint64_t smallest_us = 0;
  {
    std::lock_guard lock(bdev_.state_->mutex);
    for (const BdevTimeoutSetting& setting : bdev_.state_->timeouts) {
      ChannelTimeoutWatch watch{setting, UsToTsc(setting.timeout_us), 0};
      // A descriptor that keeps its timeout keeps its watermark (nothing reported twice).
      for (const ChannelTimeoutWatch& old : timeout_watches_) {
        if (old.setting.desc == setting.desc && old.setting.timeout_us == setting.timeout_us) {
          watch.reported_until_tsc = old.reported_until_tsc;
        }
      }
      watches.push_back(watch);
      if (smallest_us == 0 || setting.timeout_us < smallest_us) smallest_us = setting.timeout_us;
    }
  }
  timeout_watches_ = std::move(watches);
  if (timeout_watches_.empty()) {
    timeout_poller_.reset();
    timeout_period_us_ = 0;
    return;
  }
  // Half the smallest timeout (an I/O is reported at most that late), 10 us to 1 s.
  uint64_t period_us = std::clamp<uint64_t>(smallest_us / 2, 10, 1'000'000);
  if (timeout_poller_ && period_us == timeout_period_us_) return;
  PollerOptions options;
  options.period = std::chrono::microseconds(period_us);
  timeout_period_us_ = period_us;
  timeout_poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      "bdev_timeout " + bdev_.name(), [this] { return PollTimeouts(); }, std::move(options)));
}

uint64_t BdevChannel::UsToTsc(uint64_t us) noexcept {
  uint64_t hz = rte_get_tsc_hz();
  return us / 1'000'000 * hz + (us % 1'000'000) * hz / 1'000'000;
}

IoChannel* BdevChannel::FindIoChannel() const noexcept {
  for (IoChannel* channel : Thread::Current()->io_channels()) {
    if (&channel->device() == &bdev_.state_->channels) return channel;
  }
  return nullptr;
}

PollResult BdevChannel::PollTimeouts() noexcept {
  if (in_flight_.empty()) return PollResult::kIdle;
  const uint64_t now = rte_rdtsc();
  IoChannel* io_channel = nullptr;
  bool reported = false;
  // Completions a callback causes (an Abort) wait for the thread's next poll, so nothing
  // leaves the list under the walk; I/O a callback submits is appended, later than `now`.
  thread_.EnterSubmit();
  for (ChannelTimeoutWatch& watch : timeout_watches_) {
    if (now < watch.timeout_tsc) continue;
    const uint64_t cutoff = now - watch.timeout_tsc;
    for (BdevIo* io = in_flight_.front(); io != nullptr; io = BdevInFlightList::next(*io)) {
      // Split children carry no submission time of their own.
      if (io->kind_ != BdevIo::Kind::kUser) continue;
      if (io->submit_tsc_ > cutoff) break;
      if (io->desc_ != watch.setting.desc || io->submit_tsc_ <= watch.reported_until_tsc) continue;
      if (io_channel == nullptr) io_channel = FindIoChannel();
      if (io_channel == nullptr) break;
      BdevIoTimeoutInfo info{*io_channel,
                             io->type_,
                             io->offset_blocks_,
                             io->num_blocks_,
                             (now - io->submit_tsc_) * 1'000'000 / rte_get_tsc_hz(),
                             io->cb_arg_};
      watch.setting.cb(watch.setting.cb_arg, info);
      reported = true;
    }
    watch.reported_until_tsc = std::max(watch.reported_until_tsc, cutoff);
  }
  thread_.LeaveSubmit();
  return reported ? PollResult::kBusy : PollResult::kIdle;
}

}  // namespace pollux
