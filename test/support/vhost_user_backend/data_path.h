// The back-end's data path: a thread that polls every started and enabled queue, pops requests,
// completes them (now, or completion_delay_us later), writes the used rings and interrupts the
// front-end as its event suppression asks. When a pass finds nothing it turns kick notifications
// on, looks once more, and sleeps on the kick eventfds for at most 1 ms; when busy it turns them
// off again, so the front-end sees both states.
#pragma once

#include <atomic>
#include <thread>

#include "backend_device.h"

namespace pollux::testing::vhost_backend {

// Completes `slot`'s pending requests: all of them (GET_VRING_BASE, SET_MEM_TABLE), or those due
// by `now`. Writes their used entries and then interrupts if needed. Returns how many completed.
// Called with device.mu held, on either thread.
size_t CompletePending(Device& device, QueueSlot& slot, bool all, Clock::time_point now);

class DataPath {
 public:
  // `stop_fd` becomes readable (and stays so) when the back-end stops.
  DataPath(Device* device, int stop_fd);
  ~DataPath();  // Join()
  DataPath(const DataPath&) = delete;
  DataPath& operator=(const DataPath&) = delete;

  // Starts the thread; false (logged) when the wake-up eventfd cannot be created.
  bool Start();
  // Makes a sleeping data path look at the queues again (a ring was started or enabled).
  // Any thread.
  void Wake();
  // Waits for the thread after the stop fd fired.
  void Join();

 private:
  void Run();
  // One pass over `slot`: pop, complete what is due, interrupt, adjust kick notifications.
  // Returns whether it found work; lowers *next_due to its earliest pending deadline.
  bool ServiceQueue(uint32_t index, QueueSlot& slot, Clock::time_point now,
                    Clock::time_point* next_due);

  Device& device_;
  const int stop_fd_;
  UniqueFd wake_fd_;
  std::thread thread_;
};

}  // namespace pollux::testing::vhost_backend
