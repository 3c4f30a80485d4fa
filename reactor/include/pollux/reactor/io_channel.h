// I/O devices and channels (SPDK's io_device / io_channel): any object can be an IoDevice, and
// each Thread that uses it gets its own channel, holding per-thread state (a queue, a kernel
// ring, counters), so the data path shares nothing between threads and takes no lock.
//
// A channel is created on first use on a thread, reference counted, and destroyed on its own
// thread by a message once its last reference is gone.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace pollux {

class Thread;
class IoChannel;
class IoChannelRef;

// Per-thread state of an IoDevice. Subclass it; it is created and destroyed on its thread.
class ChannelContext {
 public:
  virtual ~ChannelContext() = default;
};

class IoDevice {
 public:
  explicit IoDevice(std::string io_device_name);
  // The device must be unregistered (or never registered) by now.
  virtual ~IoDevice();
  IoDevice(const IoDevice&) = delete;
  IoDevice& operator=(const IoDevice&) = delete;

  const std::string& io_device_name() const { return io_device_name_; }

  // Makes channels available. Any thread.
  void RegisterIoDevice();

  // Refuses new channels, waits until every existing one is destroyed, then runs `done` on the
  // calling Thread. Call from a Thread.
  void UnregisterIoDevice(absl::AnyInvocable<void()> done);

  bool registered() const;
  size_t channel_count() const;

 protected:
  // Creates the calling thread's channel state. Runs on that thread.
  virtual std::unique_ptr<ChannelContext> CreateChannelContext() = 0;

 private:
  friend class IoChannel;
  friend IoChannel* GetIoChannelOnThread(Thread& thread, IoDevice& device);
  friend void ForEachChannelAsync(
      IoDevice& device,
      absl::AnyInvocable<void(IoChannel&, absl::AnyInvocable<void(absl::Status)>)> fn,
      absl::AnyInvocable<void(absl::Status)> done);

  void ChannelDestroyed(IoChannel* channel);

  const std::string io_device_name_;
  mutable std::mutex mutex_;  // channel creation and destruction only, never per I/O
  bool registered_ = false;
  bool unregistering_ = false;
  std::vector<IoChannel*> channels_;
  uint64_t unregister_thread_id_ = 0;
  absl::AnyInvocable<void()> unregister_done_;
};

class IoChannel {
 public:
  IoChannel(const IoChannel&) = delete;
  IoChannel& operator=(const IoChannel&) = delete;

  IoDevice& device() const { return *device_; }
  Thread& thread() const { return *thread_; }
  int refs() const { return refs_; }

  template <typename T>
  T& context() const {
    return static_cast<T&>(*context_);
  }

 private:
  friend class IoChannelRef;
  friend class IoDevice;
  friend class Thread;
  friend IoChannel* GetIoChannelOnThread(Thread& thread, IoDevice& device);
  friend IoChannelRef GetIoChannel(IoDevice& device);

  IoChannel(IoDevice* device, Thread* thread) : device_(device), thread_(thread) {}
  void Get() { ++refs_; }
  void Put();
  // At the end of the thread's poll: destroys the channel unless it was taken again.
  void Reap();
  void Destroy();

  IoDevice* device_;
  Thread* thread_;
  std::unique_ptr<ChannelContext> context_;
  int refs_ = 0;
  bool destroy_pending_ = false;  // listed in the thread's channels_to_reap_
};

// A reference to the calling thread's channel of a device; releases it on destruction.
// Use (and destroy) it on the thread that obtained it.
class IoChannelRef {
 public:
  IoChannelRef() = default;
  IoChannelRef(IoChannelRef&& other) noexcept : channel_(other.channel_) { other.channel_ = nullptr; }
  IoChannelRef& operator=(IoChannelRef&& other) noexcept;
  ~IoChannelRef() { reset(); }

  IoChannel* get() const { return channel_; }
  IoChannel* operator->() const { return channel_; }
  IoChannel& operator*() const { return *channel_; }
  explicit operator bool() const { return channel_ != nullptr; }
  void reset();

 private:
  friend IoChannelRef GetIoChannel(IoDevice& device);
  explicit IoChannelRef(IoChannel* channel) : channel_(channel) {}
  IoChannel* channel_ = nullptr;
};

// The calling thread's channel of `device`, created on first use. Empty when the device is not
// registered (or is being unregistered) or when called outside a Thread.
IoChannelRef GetIoChannel(IoDevice& device);

// Runs fn(channel) on each thread that has a channel of `device`, one thread after the other,
// then done(OK) on the calling thread. Call from a Thread.
void ForEachChannel(IoDevice& device, absl::AnyInvocable<void(IoChannel&)> fn,
                    absl::AnyInvocable<void(absl::Status)> done);

// ForEachChannel for work that finishes later: fn(channel, next) calls next once, on the
// channel's thread, now or from a later message; the walk moves on only then. A non-OK status
// stops the walk and becomes done's. Call from a Thread.
void ForEachChannelAsync(
    IoDevice& device,
    absl::AnyInvocable<void(IoChannel&, absl::AnyInvocable<void(absl::Status)>)> fn,
    absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
