#include "pollux/reactor/io_channel.h"

#include <rte_pause.h>

#include <algorithm>

#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "thread_registry.h"

namespace pollux {

IoDevice::IoDevice(std::string io_device_name) : io_device_name_(std::move(io_device_name)) {}

IoDevice::~IoDevice() {
  std::lock_guard lock(mutex_);
  if (!channels_.empty()) {
    PX_LOG(kError, "reactor", "io device \"%s\" destroyed with %zu channels alive", io_device_name_,
           channels_.size());
  }
}

void IoDevice::RegisterIoDevice() {
  std::lock_guard lock(mutex_);
  registered_ = true;
  unregistering_ = false;
}

bool IoDevice::registered() const {
  std::lock_guard lock(mutex_);
  return registered_ && !unregistering_;
}

size_t IoDevice::channel_count() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

void IoDevice::UnregisterIoDevice(absl::AnyInvocable<void()> done) {
  Thread* caller = Thread::Current();
  std::unique_lock lock(mutex_);
  registered_ = false;
  unregistering_ = true;
  if (channels_.empty()) {
    unregistering_ = false;
    lock.unlock();
    if (caller != nullptr) {
      RunOnThread(caller->id(), std::move(done));
    } else {
      done();
    }
    return;
  }
  unregister_thread_id_ = caller != nullptr ? caller->id() : 0;
  unregister_done_ = std::move(done);
}

void IoDevice::ChannelDestroyed(IoChannel* channel) {
  std::unique_lock lock(mutex_);
  channels_.erase(std::remove(channels_.begin(), channels_.end(), channel), channels_.end());
  if (!channels_.empty() || !unregistering_) return;
  unregistering_ = false;
  auto done = std::move(unregister_done_);
  uint64_t thread_id = unregister_thread_id_;
  lock.unlock();
  if (done) RunOnThread(thread_id, std::move(done));
}

IoChannel* GetIoChannelOnThread(Thread& thread, IoDevice& device) {
  for (IoChannel* channel : thread.channels_) {
    // A channel whose last reference went may still be here, its destruction message queued:
    // reuse it. The reference the caller takes keeps that message from destroying it.
    if (&channel->device() == &device) return channel;
  }
  auto* channel = new IoChannel(&device, &thread);
  {
    std::lock_guard lock(device.mutex_);
    if (!device.registered_ || device.unregistering_) {
      delete channel;
      return nullptr;
    }
    // Listed before its context exists, in the same critical section as the check: an
    // UnregisterIoDevice from now on waits for this channel. Listing it only after creating
    // the context let an unregistration that ran meanwhile complete (and its caller free the
    // device) while this channel was still being added to it.
    device.channels_.push_back(channel);
  }
  // Created outside the device lock: a module's context may take its time (open a ring).
  channel->context_ = device.CreateChannelContext();
  thread.channels_.push_back(channel);
  return channel;
}

IoChannelRef GetIoChannel(IoDevice& device) {
  Thread* thread = Thread::Current();
  if (thread == nullptr) return IoChannelRef();
  IoChannel* channel = GetIoChannelOnThread(*thread, device);
  if (channel == nullptr) return IoChannelRef();
  channel->Get();
  return IoChannelRef(channel);
}

void IoChannel::Put() {
  if (--refs_ > 0 || destroy_pending_) return;
  // Destroy later, at the end of the thread's poll, rather than now: the caller may be inside
  // the channel's own code, and a get right after a put (a descriptor reopened) reuses the
  // channel instead. A list on the thread, not a message: a message to itself could find the
  // thread's ring full, and spinning there would never drain it.
  destroy_pending_ = true;
  thread_->channels_to_reap_.push_back(this);
}

void IoChannel::Reap() {
  destroy_pending_ = false;
  if (refs_ == 0) Destroy();
}

void IoChannel::Destroy() {
  auto& list = thread_->channels_;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  context_.reset();
  IoDevice* device = device_;
  device->ChannelDestroyed(this);
  delete this;
}

IoChannelRef& IoChannelRef::operator=(IoChannelRef&& other) noexcept {
  if (this != &other) {
    reset();
    channel_ = other.channel_;
    other.channel_ = nullptr;
  }
  return *this;
}

void IoChannelRef::reset() {
  if (channel_ != nullptr) {
    channel_->Put();
    channel_ = nullptr;
  }
}

// ---- ForEachChannel ----

namespace {

struct ChannelWalk {
  IoDevice* device;
  std::vector<uint64_t> thread_ids;
  size_t next = 0;
  uint64_t origin_id;
  absl::AnyInvocable<void(IoChannel&, absl::AnyInvocable<void(absl::Status)>)> fn;
  absl::AnyInvocable<void(absl::Status)> done;
  absl::Status status;
};

void ChannelWalkStep(void* arg);

void ChannelWalkHop(ChannelWalk* walk) {
  while (walk->next < walk->thread_ids.size()) {
    uint64_t id = walk->thread_ids[walk->next++];
    if (ThreadRegistry::Get().SendToLiveThread(id, &ChannelWalkStep, walk)) return;
  }
  std::unique_ptr<ChannelWalk> owned(walk);
  auto done = std::move(walk->done);
  RunOnThread(walk->origin_id, [done = std::move(done), status = walk->status]() mutable {
    done(std::move(status));
  });
}

void ChannelWalkStep(void* arg) {
  auto* walk = static_cast<ChannelWalk*>(arg);
  Thread* here = Thread::Current();
  for (IoChannel* channel : here->io_channels()) {
    if (&channel->device() == walk->device) {
      // The walk moves on when fn says so, from this thread (now or from a later message).
      return walk->fn(*channel, [walk](absl::Status status) {
        if (!status.ok()) {
          walk->status = std::move(status);
          walk->next = walk->thread_ids.size();
        }
        ChannelWalkHop(walk);
      });
    }
  }
  ChannelWalkHop(walk);
}

}  // namespace

void ForEachChannel(IoDevice& device, absl::AnyInvocable<void(IoChannel&)> fn,
                    absl::AnyInvocable<void(absl::Status)> done) {
  ForEachChannelAsync(
      device,
      [fn = std::move(fn)](IoChannel& channel,
                           absl::AnyInvocable<void(absl::Status)> next) mutable {
        fn(channel);
        next(absl::OkStatus());
      },
      std::move(done));
}

void ForEachChannelAsync(
    IoDevice& device,
    absl::AnyInvocable<void(IoChannel&, absl::AnyInvocable<void(absl::Status)>)> fn,
    absl::AnyInvocable<void(absl::Status)> done) {
  auto* walk = new ChannelWalk{&device, {}, 0, Thread::Current() ? Thread::Current()->id() : 0,
                               std::move(fn), std::move(done), absl::OkStatus()};
  {
    std::lock_guard lock(device.mutex_);
    for (IoChannel* channel : device.channels_) walk->thread_ids.push_back(channel->thread().id());
  }
  ChannelWalkHop(walk);
}

}  // namespace pollux
