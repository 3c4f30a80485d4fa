#include "pollux/env/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

absl::Status PathError(std::string_view what, std::string_view noun, const std::string& path,
                       int error) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrFormat("%s %s %s: %s", what, noun, path, std::strerror(error)));
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A live server answers connect(); a stale file (its server died) refuses it and is removed.
absl::Status RefuseLiveServer(const std::string& path, std::string_view noun,
                              std::string_view component) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return PathError("cannot check", noun, path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s path %s exists and is not a socket", noun, path));
  }
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return PathError("cannot check", noun, path, errno);
  sockaddr_un addr = Address(path);
  int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int error = rc == 0 ? 0 : errno;
  ::close(probe);
  // EAGAIN: the listener's backlog is full, so it is alive too.
  if (rc == 0 || error == EAGAIN || error == EINPROGRESS) {
    return absl::AlreadyExistsError(
        absl::StrFormat("%s %s is in use by another process", noun, path));
  }
  if (error != ECONNREFUSED && error != ENOENT) return PathError("cannot check", noun, path, error);
  if (error == ECONNREFUSED) {
    PX_LOG(kNotice, component, "removing stale %s %s", noun, path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return PathError("cannot remove stale", noun, path, errno);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UnixListener> UnixListener::Listen(const std::string& path, std::string_view noun,
                                                  std::string_view component, uint32_t mode,
                                                  int backlog) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s path \"%s\" is empty or longer than %d bytes", noun, path,
                        sizeof(sockaddr_un::sun_path) - 1));
  }
  if (absl::Status status = RefuseLiveServer(path, noun, component); !status.ok()) return status;
  UnixListener listener;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return PathError("cannot create", noun, path, errno);
  sockaddr_un addr = Address(path);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int error = errno;
    ::close(fd);  // the file, if any, is not ours: leave it
    return PathError("cannot bind", noun, path, error);
  }
  listener.fd_ = fd;
  listener.path_ = path;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    listener.dev_ = st.st_dev;
    listener.ino_ = st.st_ino;
  }
  // chmod before listen(): until then every connect() is refused, so no other user can slip in
  // while the file still has the umask's mode.
  if (::chmod(path.c_str(), mode) != 0) return PathError("cannot chmod", noun, path, errno);
  if (::listen(fd, backlog) != 0) return PathError("cannot listen on", noun, path, errno);
  return listener;
}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

void UnixListener::Close() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace pollux
