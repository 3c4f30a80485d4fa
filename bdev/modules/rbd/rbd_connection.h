// The librados and librbd handles of the rbd module, and the OS threads that make and release
// them. Connecting to a cluster, opening an image, reading its size, resizing it and closing
// it all block on the network (for as long as the timeouts allow when the cluster does not
// answer), so none of it runs on a reactor: RunOffReactor runs it on a short-lived OS thread
// and hands the result back to the calling pollux Thread. Private to the module.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/reactor/thread.h"

namespace pollux::rbd {

// librados settings the module gives every connection unless the user's configuration sets
// them (librados' own defaults wait forever, or 300 s to connect): a cluster that goes away
// then fails I/O with ETIMEDOUT after this long instead of holding it, and a cluster that
// never answers fails the RPC that connects to it.
inline constexpr const char* kDefaultTimeouts[][2] = {
    {"rados_osd_op_timeout", "30"},
    {"rados_mon_op_timeout", "30"},
    {"client_mount_timeout", "30"},
};

// How to reach a cluster: SPDK's bdev_rbd_register_cluster parameters, or a bdev's own
// user_id and config (bdev_rbd_create without cluster_name: config_param only, or nothing).
struct ConnectionSettings {
  std::string user_id;                              // empty: librados' default, "admin"
  std::map<std::string, std::string> config_param;  // rados_conf_set, after the file
  std::string config_file;                          // rados_conf_read_file
  std::string key_file;                             // the "keyring" setting
};

// A connected rados_t, shared by the images opened through it. The destructor shuts it down,
// which blocks: let the last reference go off the reactor (ReleaseOffReactor).
class Connection {
 public:
  // rados_create, the default timeouts, then the settings in SPDK's order (file, config_param,
  // key file; $CEPH_CONF or /etc/ceph/ceph.conf when none is given), then rados_connect.
  // Blocks up to client_mount_timeout.
  static absl::StatusOr<std::shared_ptr<Connection>> Connect(const ConnectionSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  rados_t handle() const { return cluster_; }

 private:
  explicit Connection(rados_t cluster) : cluster_(cluster) {}
  rados_t cluster_;
};

// An open image and the I/O context of its pool. The destructor closes both and drops the
// connection reference, all of which blocks: destroy it off the reactor.
class Image {
 public:
  // Opens `pool`/`name` through `connection`. NotFound names the pool or the image missing.
  static absl::StatusOr<std::unique_ptr<Image>> Open(std::shared_ptr<Connection> connection,
                                                     const std::string& pool,
                                                     const std::string& name);
  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  rbd_image_t handle() const { return image_; }
  // The image's size in bytes, refreshed from the cluster when its header changed. Blocks.
  absl::StatusOr<uint64_t> Size();
  // Grows or shrinks the image to `bytes`. Blocks.
  absl::Status Resize(uint64_t bytes);
  // Calls on_change() on a librbd thread whenever the image's header changes (rbd_update_watch:
  // a resize, by this process or any other). It must not block librbd's thread, nor hold a
  // reference to this image. The destructor stops it before the image closes. Once per image.
  absl::Status Watch(absl::AnyInvocable<void()> on_change);

 private:
  Image(std::shared_ptr<Connection> connection, rados_ioctx_t ioctx, rbd_image_t image)
      : connection_(std::move(connection)), ioctx_(ioctx), image_(image) {}
  static void OnUpdate(void* arg);

  std::shared_ptr<Connection> connection_;
  rados_ioctx_t ioctx_;
  rbd_image_t image_;
  absl::AnyInvocable<void()> on_change_;
  uint64_t watch_handle_ = 0;
  bool watching_ = false;
};

// ---- Work off the reactor ----

namespace internal {
// Starts `body` on a new, detached OS thread whose CPU affinity is the one the process started
// with (librados' threads, started from there, inherit it: pinned to a reactor's core they
// would fight it), counted in flight until `body` returns.
void StartOffReactor(absl::AnyInvocable<void()> body);
}  // namespace internal

// Runs work() on its own OS thread, then done(result) on the calling Thread. If that thread is
// gone by then, the result is destroyed on the OS thread (which is why results own what they
// hold: nothing blocking is ever released on a reactor). Call on a Thread.
template <typename T>
void RunOffReactor(absl::AnyInvocable<T()> work, absl::AnyInvocable<void(T)> done) {
  const uint64_t origin = Thread::Current()->id();
  internal::StartOffReactor([work = std::move(work), done = std::move(done), origin]() mutable {
    RunOnThread(origin,
                [done = std::move(done), result = work()]() mutable { done(std::move(result)); });
  });
}

// Destroys `object` (a Connection, an Image) on an OS thread of its own.
template <typename T>
void ReleaseOffReactor(T object) {
  if (object) internal::StartOffReactor([object = std::move(object)]() mutable { object = T(); });
}

// Threads started by StartOffReactor that have not returned yet (the module's shutdown waits
// for 0).
uint32_t OffReactorCallsInFlight();

// Records the CPU affinity of the calling OS thread as the one off-reactor threads take. The
// module calls it while the library loads, before any reactor pins a thread.
void RecordStartupAffinity();

}  // namespace pollux::rbd
