#include "idle_channels.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/reactor/thread.h"

namespace pollux::perf {

IdleChannels::~IdleChannels() {
  // Entries still open when the reactors stopped under them (a failed start-up): their
  // descriptors and channels cannot be released safely from here (not on their thread); leave
  // them, as a job leaves its own.
  for (auto& entry : entries_) {
    (void)entry->desc.release();
    (void)new IoChannelRef(std::move(entry->channel));
  }
  (void)release_poller_.release();
}

absl::Status IdleChannels::Open(const std::vector<std::string>& bdevs) {
  for (const std::string& name : bdevs) {
    auto entry = std::make_unique<Entry>();
    Entry* e = entry.get();
    auto desc = BdevDesc::Open(name, /*writable=*/false, [this, e](BdevEvent event, Bdev&) {
      if (event == BdevEvent::kRemove) OnRemove(*e);
    });
    if (!desc.ok()) {
      return absl::Status(desc.status().code(), absl::StrFormat("--idle-channels: open bdev %s: %s",
                                                                name, desc.status().message()));
    }
    entry->desc = std::move(*desc);
    entry->channel = entry->desc->GetIoChannel();
    entries_.push_back(std::move(entry));
    if (!e->channel) {
      return absl::UnavailableError(
          absl::StrFormat("--idle-channels: bdev %s is being removed", name));
    }
    ++opened_;
  }
  return absl::OkStatus();
}

void IdleChannels::Close(Entry& entry) {
  entry.channel.reset();  // before the descriptor: a channel goes on its descriptor's thread
  entry.desc.reset();
}

void IdleChannels::Release() {
  for (auto& entry : entries_) Close(*entry);
  entries_.clear();
  release_poller_.reset();
}

void IdleChannels::OnRemove(Entry& entry) {
  entry.removed = true;
  if (release_poller_) return;
  release_poller_ = PollerHandle(Thread::Current()->RegisterPoller("perf_idle_release", [this] {
    for (auto& e : entries_) {
      if (e->removed) Close(*e);
    }
    release_poller_.reset();
    return PollResult::kBusy;
  }));
}

}  // namespace pollux::perf
