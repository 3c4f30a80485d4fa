// --idle-channels: on one job thread, a descriptor and an I/O channel on each of a list of
// bdevs (every bdev of the config that is neither a target nor claimed), held without I/O for
// the whole run. A channel may bring pollers onto the thread (a file channel's, with its wake
// fd): this is "one busy source beside many idle ones on the same thread", what the reactor's
// parking (docs/architecture.md, "Parking") is for.
//
// Threads: everything on the job thread that opened them, where the descriptors' event
// callbacks run too.
//
// Life cycle: Open at the worker's Prepare, Release once the worker's jobs have finished. A
// bdev removed meanwhile (shutdown by signal: the bdev subsystem unregisters every bdev) is
// released right after its remove event, so that nothing here keeps a bdev from going.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/reactor/poller.h"

namespace pollux::perf {

class IdleChannels {
 public:
  IdleChannels() = default;
  ~IdleChannels();
  IdleChannels(const IdleChannels&) = delete;
  IdleChannels& operator=(const IdleChannels&) = delete;

  // Opens each bdev of `bdevs` read-only and gets the calling thread's channel on it; stops at
  // the first failure (what was opened is released by Release).
  absl::Status Open(const std::vector<std::string>& bdevs);
  // Puts every channel and closes every descriptor still open. Idempotent.
  void Release();

  // How many descriptors with their channel were opened (the report's count).
  size_t opened() const { return opened_; }

 private:
  struct Entry {
    std::unique_ptr<BdevDesc> desc;
    IoChannelRef channel;
    bool removed = false;  // its bdev is going: released by release_poller_
  };
  // The remove event: not from inside the descriptor's own callback, so a one-shot poller
  // releases the removed entries right after.
  void OnRemove(Entry& entry);
  static void Close(Entry& entry);

  std::vector<std::unique_ptr<Entry>> entries_;  // stable addresses for the event callbacks
  size_t opened_ = 0;
  PollerHandle release_poller_;
};

}  // namespace pollux::perf
