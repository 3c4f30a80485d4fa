#include "data_path.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "blk_request.h"

namespace pollux::testing::vhost_backend {

namespace {

constexpr auto kIdleSleep = std::chrono::milliseconds(1);

void Interrupt(Device& device, QueueSlot& slot) {
  if (!slot.need_notify) return;
  slot.need_notify = false;
  if (!slot.ring.ShouldNotify() || !slot.call.valid()) return;
  const uint64_t one = 1;
  if (write(slot.call.get(), &one, sizeof(one)) == sizeof(one)) {
    ++device.counters.interrupts;
  } else {
    VHOST_TEST_LOG("write to call eventfd: %s", std::strerror(errno));
  }
}

}  // namespace

size_t CompletePending(Device& device, QueueSlot& slot, bool all, Clock::time_point now) {
  if (device.io_frozen || slot.broken || !slot.ring.attached()) return 0;
  size_t completed = 0;
  while (!slot.pending.empty() && (all || slot.pending.front().due <= now)) {
    const PendingRequest request = std::move(slot.pending.front());
    slot.pending.pop_front();
    const DescriptorChain& chain = request.chain;
    const BlkOutcome outcome = ExecuteBlkRequest(device, chain);
    UsedEntry entry{chain.id, outcome.used_len, chain.ring_slots, chain.writable_bytes > 0, 0};
    const uint64_t sequence = device.requests_completed++;
    if (device.FaultFires(VhostUserTestFault::kUsedIdOutOfRange, sequence)) {
      entry.id = slot.ring.num();
    } else if (device.FaultFires(VhostUserTestFault::kUsedLenTooLong, sequence)) {
      entry.len = static_cast<uint32_t>(chain.writable_bytes + 1);
    } else if (device.FaultFires(VhostUserTestFault::kUsedIdxJump, sequence)) {
      if (slot.ring.packed()) {
        entry.id = slot.ring.UnseenBufferId();
      } else {
        entry.extra_used_idx = slot.ring.num();
      }
    }
    slot.ring.PushUsed(entry);
    slot.need_notify = true;
    ++device.counters.requests_completed;
    ++completed;
  }
  Interrupt(device, slot);
  return completed;
}

DataPath::DataPath(Device* device, int stop_fd) : device_(*device), stop_fd_(stop_fd) {}

DataPath::~DataPath() { Join(); }

bool DataPath::Start() {
  wake_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) {
    VHOST_TEST_LOG("eventfd: %s", std::strerror(errno));
    return false;
  }
  thread_ = std::thread([this] { Run(); });
  return true;
}

void DataPath::Wake() {
  const uint64_t one = 1;
  if (wake_fd_.valid()) (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void DataPath::Join() {
  if (thread_.joinable()) thread_.join();
}

bool DataPath::ServiceQueue(uint32_t index, QueueSlot& slot, Clock::time_point now,
                            Clock::time_point* next_due) {
  bool busy = false;
  const auto delay = std::chrono::microseconds(device_.options.completion_delay_us);
  // At most one ring's worth per pass, so one busy queue does not starve the others.
  for (uint32_t n = 0; n < slot.ring.num(); ++n) {
    PendingRequest request;
    std::string error;
    const PopResult result = slot.ring.Pop(device_.memory, &request.chain, &error);
    if (result == PopResult::kEmpty) break;
    if (result == PopResult::kBroken) {
      VHOST_TEST_LOG("queue %u: %s; the queue stops", index, error.c_str());
      slot.broken = true;
      ++device_.counters.ring_errors;
      return true;
    }
    busy = true;
    ++device_.counters.requests_received;
    ++device_.counters.requests_per_queue[index];
    if (device_.FaultFires(VhostUserTestFault::kCloseMidIo, device_.requests_received++)) {
      // Leave this request and every pending one without a used entry, and let the protocol
      // thread see the connection end: shutdown() wakes its blocking read without racing with
      // its close().
      device_.io_frozen = true;
      if (device_.connection_fd >= 0) shutdown(device_.connection_fd, SHUT_RDWR);
      return true;
    }
    request.due = now + delay;
    slot.pending.push_back(std::move(request));
  }
  if (CompletePending(device_, slot, false, now) > 0) busy = true;
  if (busy) {
    slot.ring.SetNotification(false);
  } else if (!slot.ring.notifications_enabled()) {
    slot.ring.SetNotification(true);
    // Poll once more after arming: a chain published before the driver saw "kick me" came
    // without a kick.
    if (slot.ring.HasAvailable()) busy = true;
  }
  if (!slot.pending.empty() && slot.pending.front().due < *next_due) {
    *next_due = slot.pending.front().due;
  }
  return busy;
}

void DataPath::Run() {
  struct KickSource {
    uint32_t queue;
    uint64_t generation;
  };
  std::vector<pollfd> fds;
  std::vector<KickSource> sources;
  for (;;) {
    const Clock::time_point now = Clock::now();
    Clock::time_point next_due = now + kIdleSleep;
    bool busy = false;
    fds.clear();
    sources.clear();
    {
      std::lock_guard lock(device_.mu);
      for (uint32_t i = 0; i < device_.queues.size(); ++i) {
        QueueSlot& slot = device_.queues[i];
        if (!slot.started) continue;
        if (slot.enabled && !slot.broken && !device_.io_frozen && slot.ring.attached()) {
          if (ServiceQueue(i, slot, now, &next_due)) busy = true;
        }
        if (slot.kick.valid()) {
          fds.push_back(pollfd{slot.kick.get(), POLLIN, 0});
          sources.push_back(KickSource{i, slot.kick_generation});
        }
      }
    }
    fds.push_back(pollfd{stop_fd_, POLLIN, 0});
    fds.push_back(pollfd{wake_fd_.get(), POLLIN, 0});
    timespec timeout{0, 0};
    if (!busy) {
      const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(next_due - now);
      if (wait.count() > 0) timeout.tv_nsec = static_cast<long>(wait.count());
    }
    // The kick fds were collected under the lock but are polled without it: the protocol thread
    // may replace one meanwhile. At worst that is a spurious wake-up; the read below happens
    // under the lock and only if the fd is still the one polled (same generation).
    if (ppoll(fds.data(), fds.size(), &timeout, nullptr) < 0 && errno != EINTR) {
      VHOST_TEST_LOG("ppoll: %s", std::strerror(errno));
    }
    if (fds[fds.size() - 2].revents != 0) return;  // stop
    if (fds.back().revents & POLLIN) {
      uint64_t count;
      (void)!read(wake_fd_.get(), &count, sizeof(count));
    }
    std::lock_guard lock(device_.mu);
    for (size_t i = 0; i < sources.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      QueueSlot& slot = device_.queues[sources[i].queue];
      if (slot.kick_generation != sources[i].generation || !slot.kick.valid()) continue;
      uint64_t count;
      if (read(slot.kick.get(), &count, sizeof(count)) == sizeof(count)) ++device_.counters.kicks;
    }
  }
}

}  // namespace pollux::testing::vhost_backend
