// The public class: option checks, the listening socket, and the protocol thread that accepts
// one front-end at a time and serves its messages (with the protocol faults applied here).
#include "vhost_user_test_backend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backend_device.h"
#include "data_path.h"
#include "message_channel.h"
#include "protocol_handler.h"

namespace pollux::testing {

using vhost_backend::Device;
using vhost_backend::UniqueFd;

namespace {

constexpr struct {
  VhostUserTestFault fault;
  const char* name;
} kFaultNames[] = {
    {VhostUserTestFault::kNone, "none"},
    {VhostUserTestFault::kUsedIdOutOfRange, "used-id-out-of-range"},
    {VhostUserTestFault::kUsedLenTooLong, "used-len-too-long"},
    {VhostUserTestFault::kUsedIdxJump, "used-idx-jump"},
    {VhostUserTestFault::kWrongReplyType, "wrong-reply-type"},
    {VhostUserTestFault::kBadReplySize, "bad-reply-size"},
    {VhostUserTestFault::kCloseDuringHandshake, "close-during-handshake"},
    {VhostUserTestFault::kCloseMidIo, "close-mid-io"},
    {VhostUserTestFault::kHang, "hang"},
};

// The disk is a std::vector in this process; keep it to a size a test machine can hold.
constexpr uint64_t kMaxDiskBytes = uint64_t{4} << 30;

absl::Status CheckOptions(const VhostUserTestBackendOptions& o) {
  if (o.socket_path.empty()) return absl::InvalidArgumentError("socket_path is empty");
  if (o.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket_path \"", o.socket_path, "\" is longer than a Unix socket path"));
  }
  const bool power_of_two = (o.block_size & (o.block_size - 1)) == 0;
  if (o.block_size < 512 || o.block_size > 65536 || !power_of_two) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size ", o.block_size, ": a power of two in 512..65536"));
  }
  if (o.num_blocks == 0 || o.num_blocks > kMaxDiskBytes / o.block_size) {
    return absl::InvalidArgumentError(absl::StrCat("num_blocks ", o.num_blocks, ": 1 .. ",
                                                   kMaxDiskBytes / o.block_size, " blocks"));
  }
  if (o.num_queues == 0 || o.num_queues > kVhostTestMaxQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_queues ", o.num_queues, ": 1..", kVhostTestMaxQueues));
  }
  if (o.queue_size_max == 0 || o.queue_size_max > 32768 ||
      (o.queue_size_max & (o.queue_size_max - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue_size_max ", o.queue_size_max, ": a power of two up to 32768"));
  }
  if (o.seg_max == 0 || o.size_max == 0) {
    return absl::InvalidArgumentError("seg_max and size_max must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

const char* VhostUserTestFaultName(VhostUserTestFault fault) {
  for (const auto& entry : kFaultNames) {
    if (entry.fault == fault) return entry.name;
  }
  return "unknown";
}

std::optional<VhostUserTestFault> ParseVhostUserTestFault(std::string_view name) {
  for (const auto& entry : kFaultNames) {
    if (name == entry.name) return entry.fault;
  }
  return std::nullopt;
}

struct VhostUserTestBackend::Impl {
  explicit Impl(Options opts)
      : options(std::move(opts)),
        options_status(CheckOptions(options)),
        device(options_status.ok() ? options : Options{}, &counters) {}

  void AcceptLoop();
  void Serve(UniqueFd connection);
  // Sends `result`'s reply to `request`, bent by kWrongReplyType / kBadReplySize when their turn
  // comes. False when the socket failed.
  bool SendReplyWithFaults(int fd, uint32_t request, const vhost_backend::HandleResult& result);

  const Options options;
  const absl::Status options_status;
  Counters counters;
  // With bad options the device is built from the defaults so that the object stays usable;
  // Start() refuses to run it.
  Device device;
  UniqueFd listen_fd;
  UniqueFd stop_fd;  // eventfd written once by Stop(), never drained: both threads see it
  std::unique_ptr<vhost_backend::DataPath> data_path;
  std::thread protocol_thread;
  std::atomic<bool> connected{false};
  uint64_t messages = 0;  // protocol thread only (fault counts run over all connections)
  uint64_t replies = 0;
};

VhostUserTestBackend::VhostUserTestBackend(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

VhostUserTestBackend::~VhostUserTestBackend() { Stop(); }

absl::Status VhostUserTestBackend::Start() {
  Impl& s = *impl_;
  if (!s.options_status.ok()) return s.options_status;
  if (s.protocol_thread.joinable()) return absl::FailedPreconditionError("already started");
  const std::string& path = s.options.socket_path;
  // A socket file left by a killed back-end would make bind() fail; anything else is kept.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());

  UniqueFd listen_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd.valid()) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::InternalError(absl::StrCat("bind \"", path, "\": ", strerror(errno)));
  }
  if (listen(listen_fd.get(), 4) != 0) {
    const int err = errno;
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("listen \"", path, "\": ", strerror(err)));
  }
  s.stop_fd.Reset(eventfd(0, EFD_CLOEXEC));
  if (!s.stop_fd.valid()) {
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  s.listen_fd = std::move(listen_fd);
  s.data_path = std::make_unique<vhost_backend::DataPath>(&s.device, s.stop_fd.get());
  if (!s.data_path->Start()) {
    s.data_path.reset();
    s.listen_fd.Reset();
    unlink(path.c_str());
    return absl::InternalError("cannot start the data path thread");
  }
  s.protocol_thread = std::thread([&s] { s.AcceptLoop(); });
  return absl::OkStatus();
}

void VhostUserTestBackend::Stop() {
  Impl& s = *impl_;
  if (!s.protocol_thread.joinable()) return;
  const uint64_t one = 1;
  (void)!write(s.stop_fd.get(), &one, sizeof(one));
  {
    // A front-end that stopped mid-message would keep the protocol thread in a blocking read.
    std::lock_guard lock(s.device.mu);
    if (s.device.connection_fd >= 0) shutdown(s.device.connection_fd, SHUT_RDWR);
  }
  s.protocol_thread.join();
  s.data_path->Join();
  s.data_path.reset();
  s.listen_fd.Reset();
  s.stop_fd.Reset();
  unlink(s.options.socket_path.c_str());
}

void VhostUserTestBackend::Impl::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      VHOST_TEST_LOG("poll: %s", strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd connection(accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection.valid()) {
      if (errno != EINTR && errno != ECONNABORTED) VHOST_TEST_LOG("accept: %s", strerror(errno));
      continue;
    }
    Serve(std::move(connection));
  }
}

void VhostUserTestBackend::Impl::Serve(UniqueFd connection) {
  ++counters.connections;
  {
    std::lock_guard lock(device.mu);
    device.connection_fd = connection.get();
  }
  connected = true;
  vhost_backend::ProtocolHandler handler(&device, data_path.get());
  auto message = std::make_unique<vhost_backend::Message>();
  bool hanging = false;
  for (;;) {
    pollfd fds[2] = {{connection.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      VHOST_TEST_LOG("poll: %s", strerror(errno));
      break;
    }
    if (fds[1].revents != 0) break;
    std::string error;
    const vhost_backend::ReceiveStatus status =
        vhost_backend::ReceiveMessage(connection.get(), message.get(), &error);
    if (status == vhost_backend::ReceiveStatus::kClosed) break;
    if (status == vhost_backend::ReceiveStatus::kError) {
      VHOST_TEST_LOG("%s; disconnecting", error.c_str());
      break;
    }
    ++counters.messages;
    const uint64_t index = messages++;
    if (device.FaultFires(Fault::kCloseDuringHandshake, index)) break;
    if (hanging) continue;  // the message and its fds are dropped unanswered
    if (device.FaultFires(Fault::kHang, index)) {
      hanging = true;
      continue;
    }
    const vhost_backend::HandleResult result = handler.Handle(*message);
    message->fds.clear();
    if (result.has_reply &&
        !SendReplyWithFaults(connection.get(), message->header.request, result)) {
      break;
    }
    if (result.disconnect) break;
  }
  {
    std::lock_guard lock(device.mu);
    device.connection_fd = -1;
    device.ResetConnectionState();
  }
  connected = false;
}

bool VhostUserTestBackend::Impl::SendReplyWithFaults(int fd, uint32_t request,
                                                     const vhost_backend::HandleResult& result) {
  using vhost_user::Request;
  const uint64_t index = replies++;
  std::vector<uint8_t> payload = result.reply;
  if (device.FaultFires(Fault::kWrongReplyType, index)) {
    request = static_cast<uint32_t>(request == static_cast<uint32_t>(Request::kGetFeatures)
                                        ? Request::kGetProtocolFeatures
                                        : Request::kGetFeatures);
  } else if (device.FaultFires(Fault::kBadReplySize, index)) {
    payload.resize(payload.size() + 4, 0);
  }
  return vhost_backend::SendReply(fd, request, payload.data(),
                                  static_cast<uint32_t>(payload.size()));
}

const VhostUserTestBackend::Options& VhostUserTestBackend::options() const {
  return impl_->options;
}

const VhostUserTestBackend::Counters& VhostUserTestBackend::counters() const {
  return impl_->counters;
}

std::span<uint8_t> VhostUserTestBackend::disk() { return impl_->device.disk; }

bool VhostUserTestBackend::ReadDisk(uint64_t offset, std::span<uint8_t> out) const {
  const Device& device = impl_->device;
  std::lock_guard lock(device.mu);
  if (offset > device.disk.size() || out.size() > device.disk.size() - offset) return false;
  std::memcpy(out.data(), device.disk.data() + offset, out.size());
  return true;
}

bool VhostUserTestBackend::WriteDisk(uint64_t offset, std::span<const uint8_t> data) {
  Device& device = impl_->device;
  std::lock_guard lock(device.mu);
  if (offset > device.disk.size() || data.size() > device.disk.size() - offset) return false;
  std::memcpy(device.disk.data() + offset, data.data(), data.size());
  return true;
}

bool VhostUserTestBackend::connected() const { return impl_->connected; }

bool VhostUserTestBackend::fault_fired() const { return impl_->device.fault_fired; }

uint64_t VhostUserTestBackend::negotiated_features() const {
  std::lock_guard lock(impl_->device.mu);
  return impl_->device.features;
}

uint64_t VhostUserTestBackend::negotiated_protocol_features() const {
  std::lock_guard lock(impl_->device.mu);
  return impl_->device.protocol_features;
}

bool VhostUserTestBackend::write_cache_enabled() const {
  std::lock_guard lock(impl_->device.mu);
  return impl_->device.write_cache_enabled;
}

}  // namespace pollux::testing
