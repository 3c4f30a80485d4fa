#include "rbd_connection.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"

namespace pollux::rbd {
namespace {

std::atomic<uint32_t> calls_in_flight{0};
cpu_set_t startup_affinity;
bool startup_affinity_known = false;

// "Connection timed out (errno 110)", from the negative errno librados answers.
std::string ErrnoText(int negative_errno) {
  return absl::StrFormat("%s (errno %d)", std::strerror(-negative_errno), -negative_errno);
}

absl::Status ErrnoStatus(int negative_errno, std::string what) {
  std::string message = absl::StrFormat("%s: %s", what, ErrnoText(negative_errno));
  switch (-negative_errno) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EINVAL:
      return absl::InvalidArgumentError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ETIMEDOUT:
      return absl::DeadlineExceededError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// Applies the settings to a created, unconnected handle.
absl::Status Configure(rados_t cluster, const ConnectionSettings& settings) {
  for (const auto& [key, value] : kDefaultTimeouts) {
    if (int rc = rados_conf_set(cluster, key, value); rc < 0) {
      return ErrnoStatus(rc, absl::StrFormat("setting %s = %s", key, value));
    }
  }
  if (!settings.config_file.empty()) {
    if (int rc = rados_conf_read_file(cluster, settings.config_file.c_str()); rc < 0) {
      return ErrnoStatus(rc, absl::StrFormat("reading config_file \"%s\"", settings.config_file));
    }
  }
  for (const auto& [key, value] : settings.config_param) {
    if (int rc = rados_conf_set(cluster, key.c_str(), value.c_str()); rc < 0) {
      return ErrnoStatus(rc, absl::StrFormat("setting %s = \"%s\"", key, value));
    }
  }
  if (!settings.key_file.empty()) {
    if (int rc = rados_conf_set(cluster, "keyring", settings.key_file.c_str()); rc < 0) {
      return ErrnoStatus(rc, absl::StrFormat("setting keyring = \"%s\"", settings.key_file));
    }
  }
  if (settings.config_file.empty() && settings.config_param.empty() && settings.key_file.empty()) {
    if (int rc = rados_conf_read_file(cluster, nullptr); rc < 0) {
      return ErrnoStatus(rc,
                         "reading the default Ceph configuration ($CEPH_CONF, or "
                         "/etc/ceph/ceph.conf)");
    }
  }
  return absl::OkStatus();
}

// A description of where a connection goes, for its error messages.
std::string Where(rados_t cluster) {
  char mon_host[256] = "";
  if (rados_conf_get(cluster, "mon_host", mon_host, sizeof(mon_host)) < 0 || mon_host[0] == 0) {
    return "the Ceph cluster (no mon_host configured)";
  }
  char timeout[32] = "";
  rados_conf_get(cluster, "client_mount_timeout", timeout, sizeof(timeout));
  return absl::StrFormat("the Ceph cluster at %s (client_mount_timeout %s s)", mon_host, timeout);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Connection>> Connection::Connect(
    const ConnectionSettings& settings) {
  rados_t cluster = nullptr;
  const char* id = settings.user_id.empty() ? nullptr : settings.user_id.c_str();
  if (int rc = rados_create(&cluster, id); rc < 0) {
    return ErrnoStatus(rc, absl::StrFormat("rados_create for user \"%s\"",
                                           settings.user_id.empty() ? "admin" : settings.user_id));
  }
  // Owned from here: every error path below shuts the handle down.
  std::shared_ptr<Connection> connection(new Connection(cluster));
  if (absl::Status s = Configure(cluster, settings); !s.ok()) return s;
  if (int rc = rados_connect(cluster); rc < 0) {
    return ErrnoStatus(rc, absl::StrFormat("connecting to %s", Where(cluster)));
  }
  return connection;
}

Connection::~Connection() { rados_shutdown(cluster_); }

absl::StatusOr<std::unique_ptr<Image>> Image::Open(std::shared_ptr<Connection> connection,
                                                   const std::string& pool,
                                                   const std::string& name) {
  rados_ioctx_t ioctx = nullptr;
  if (int rc = rados_ioctx_create(connection->handle(), pool.c_str(), &ioctx); rc < 0) {
    if (rc == -ENOENT)
      return absl::NotFoundError(absl::StrFormat("pool \"%s\" does not exist", pool));
    return ErrnoStatus(rc, absl::StrFormat("opening pool \"%s\"", pool));
  }
  rbd_image_t image = nullptr;
  if (int rc = rbd_open(ioctx, name.c_str(), &image, nullptr); rc < 0) {
    rados_ioctx_destroy(ioctx);
    if (rc == -ENOENT) {
      return absl::NotFoundError(
          absl::StrFormat("image \"%s\" does not exist in pool \"%s\"", name, pool));
    }
    return ErrnoStatus(rc, absl::StrFormat("opening image \"%s/%s\"", pool, name));
  }
  return std::unique_ptr<Image>(new Image(std::move(connection), ioctx, image));
}

Image::~Image() {
  // rbd_update_unwatch waits for a callback under way: none runs once it returns.
  if (watching_) rbd_update_unwatch(image_, watch_handle_);
  // rbd_close flushes what librbd still holds and releases the exclusive lock.
  if (int rc = rbd_close(image_); rc < 0) {
    PX_LOG(kWarning, "bdev_rbd", "rbd_close: %s", ErrnoText(rc));
  }
  rados_ioctx_destroy(ioctx_);
}

absl::StatusOr<uint64_t> Image::Size() {
  uint64_t size = 0;
  if (int rc = rbd_get_size(image_, &size); rc < 0) return ErrnoStatus(rc, "rbd_get_size");
  return size;
}

absl::Status Image::Resize(uint64_t bytes) {
  if (int rc = rbd_resize(image_, bytes); rc < 0) {
    return ErrnoStatus(rc, absl::StrFormat("resizing the image to %u bytes", bytes));
  }
  return absl::OkStatus();
}

absl::Status Image::Watch(absl::AnyInvocable<void()> on_change) {
  on_change_ = std::move(on_change);
  if (int rc = rbd_update_watch(image_, &watch_handle_, &Image::OnUpdate, this); rc < 0) {
    return ErrnoStatus(rc, "rbd_update_watch");
  }
  watching_ = true;
  return absl::OkStatus();
}

void Image::OnUpdate(void* arg) { static_cast<Image*>(arg)->on_change_(); }

namespace internal {

void StartOffReactor(absl::AnyInvocable<void()> body) {
  calls_in_flight.fetch_add(1, std::memory_order_relaxed);
  std::thread thread([body = std::move(body)]() mutable {
    if (startup_affinity_known) {
      pthread_setaffinity_np(pthread_self(), sizeof(startup_affinity), &startup_affinity);
    }
    body();
    // Its last touch of the module: the shutdown may go on once this is 0.
    calls_in_flight.fetch_sub(1, std::memory_order_release);
  });
  pthread_setname_np(thread.native_handle(), "px-rbd-ctl");
  thread.detach();
}

}  // namespace internal

uint32_t OffReactorCallsInFlight() { return calls_in_flight.load(std::memory_order_acquire); }

void RecordStartupAffinity() {
  startup_affinity_known = sched_getaffinity(0, sizeof(startup_affinity), &startup_affinity) == 0;
}

}  // namespace pollux::rbd
