#include "vhost_user_replies_backend.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "pollux/virtio/vhost_user_protocol.h"
#include "pollux/virtio/vring.h"

namespace pollux::fuzz {

using vhost_user::MessageHeader;
using vhost_user::Request;

namespace {

// What the back-end does with a request, the input's byte modulo kActionCount. "The reply"
// is the one the request owes, its value from the input (GET_FEATURES, GET_PROTOCOL_FEATURES,
// GET_QUEUE_NUM: u64; GET_VRING_BASE: num u32, the index echoed; GET_CONFIG: the bytes asked
// for, offset and size echoed), or else an ack (u8, sent as the u64 of REPLY_ACK).
enum Action : uint8_t {
  kAnswer,    // the reply, if one is owed (a GET, or an ack asked for); else nothing
  kRaw,       // request u32, flags u32, size u32, then min(size, kMaxRawPayload) bytes
  kEmpty,     // the reply's header with size 0 (a failed GET_CONFIG, as libvhost-user says it)
  kDouble,    // the reply twice
  kWithFd,    // the reply carrying a file descriptor (an eventfd)
  kPartial,   // n u8, then the reply: its first n % length bytes go out, then the connection ends
  kShutdown,  // the back-end stops sending (the front-end reads EOF); it goes on reading
              // requests but takes no more actions
  kClose,     // the connection ends
  kActionCount,
};

// Above any reply's size, so that a larger message is refused from its header alone and the
// front-end never waits for bytes that do not come.
constexpr size_t kMaxRawPayload = 300;
// Above any request's payload (GET_CONFIG of 256 bytes: 268).
constexpr size_t kMaxRequestPayload = 512;
constexpr int kMaxFds = 16;
constexpr uint16_t kAvailFlag = 1u << VRING_PACKED_DESC_F_AVAIL;
constexpr uint16_t kUsedFlag = 1u << VRING_PACKED_DESC_F_USED;

constexpr uint64_t Bit(int bit) { return uint64_t{1} << bit; }

bool IsGet(uint32_t request) {
  switch (static_cast<Request>(request)) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetQueueNum:
    case Request::kGetVringBase:
    case Request::kGetConfig:
      return true;
    default:
      return false;
  }
}

bool Owed(const MessageHeader& header) {
  return IsGet(header.request) || (header.flags & vhost_user::kFlagNeedReply) != 0;
}

template <typename T>
void Append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

}  // namespace

void Finding(const std::string& what) {
  std::fprintf(stderr, "vhost_user_replies_fuzz: %s\n", what.c_str());
  std::abort();
}

struct FuzzBackend::Received {
  MessageHeader header{};
  std::array<uint8_t, kMaxRequestPayload> payload{};
  std::vector<int> fds;  // closed with the request unless taken

  Received() = default;
  Received(const Received&) = delete;
  Received& operator=(const Received&) = delete;
  ~Received() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  template <typename T>
  T As() const {
    static_assert(sizeof(T) <= kMaxRequestPayload);
    T value;
    std::memcpy(&value, payload.data(), sizeof(T));
    return value;
  }
  int TakeFd() { return fds.empty() ? -1 : std::exchange(fds[0], -1); }
};

FuzzBackend::FuzzBackend(std::string path, const BackendOptions& options, FuzzInput input)
    : path_(std::move(path)), options_(options), input_(input) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(address.sun_path)) Finding("back-end: socket path too long");
  std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path_.c_str());
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ||
      listen(listen_fd_, 1) != 0) {
    Finding("back-end: listening on " + path_ + ": " + std::strerror(errno));
  }
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) Finding(std::string("back-end: eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { Run(); });
}

FuzzBackend::~FuzzBackend() {
  Stop();
  unlink(path_.c_str());
}

void FuzzBackend::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
  for (int* fd : {&listen_fd_, &stop_fd_, &connection_, &kick_fd_, &call_fd_}) {
    if (*fd >= 0) close(std::exchange(*fd, -1));
  }
}

void FuzzBackend::Run() {
  for (;;) {
    pollfd p[4];
    int n = 0;
    p[n++] = {stop_fd_, POLLIN, 0};
    const int listen_at = listen_fd_ >= 0 ? n : -1;
    if (listen_at >= 0) p[n++] = {listen_fd_, POLLIN, 0};
    const int connection_at = connection_ >= 0 ? n : -1;
    if (connection_at >= 0) p[n++] = {connection_, POLLIN, 0};
    const int kick_at = kick_fd_ >= 0 && !get_id_answered_ ? n : -1;
    if (kick_at >= 0) p[n++] = {kick_fd_, POLLIN, 0};
    if (poll(p, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      Finding(std::string("back-end: poll: ") + std::strerror(errno));
    }
    if (p[0].revents != 0) return;
    if (listen_at >= 0 && p[listen_at].revents != 0) {
      connection_ = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection_ < 0) Finding(std::string("back-end: accept: ") + std::strerror(errno));
      close(std::exchange(listen_fd_, -1));  // one connection per input
      continue;
    }
    if (kick_at >= 0 && p[kick_at].revents != 0) {
      uint64_t count;
      (void)!read(kick_fd_, &count, sizeof(count));
      AnswerGetId();
    }
    if (connection_at >= 0 && p[connection_at].revents != 0) {
      Received request;
      if (!ReadRequest(request, false)) {
        close(std::exchange(connection_, -1));  // the front-end closed it
        continue;
      }
      Check(request);
      if (can_write_) Act(request);
    }
  }
}

bool FuzzBackend::ReadRequest(Received& r, bool drain) {
  iovec iov{&r.header, sizeof(r.header)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(connection_, &m, MSG_CMSG_CLOEXEC | (drain ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        r.fds.push_back(fd);
      }
    }
  }
  // Closed, reset, or (draining) nothing left.
  if (n <= 0) return false;
  if (m.msg_flags & MSG_CTRUNC) Finding("the front-end sent more fds than any request carries");
  auto* header = reinterpret_cast<uint8_t*>(&r.header);
  const size_t rest = sizeof(r.header) - static_cast<size_t>(n);
  if (rest != 0 && recv(connection_, header + n, rest, MSG_WAITALL) != static_cast<ssize_t>(rest)) {
    Finding("the front-end's request header was cut short");
  }
  if (r.header.size > kMaxRequestPayload) {
    Finding(std::string("the front-end's ") + vhost_user::RequestName(r.header.request) +
            " request claims " + std::to_string(r.header.size) + " bytes of payload");
  }
  if (r.header.size != 0 && recv(connection_, r.payload.data(), r.header.size, MSG_WAITALL) !=
                                static_cast<ssize_t>(r.header.size)) {
    Finding(std::string("the front-end's ") + vhost_user::RequestName(r.header.request) +
            " request was cut short");
  }
  ++record_.requests;
  return true;
}

void FuzzBackend::Check(Received& r) {
  const MessageHeader& h = r.header;
  const auto request = static_cast<Request>(h.request);
  auto bad = [&](const std::string& why) {
    Finding(std::string("the front-end's ") + vhost_user::RequestName(h.request) + " request " +
            why);
  };
  if ((h.flags & vhost_user::kVersionMask) != vhost_user::kVersion) bad("is not version 1");
  if ((h.flags & ~(vhost_user::kVersionMask | vhost_user::kFlagNeedReply)) != 0) {
    bad("has flags " + std::to_string(h.flags) + " (a reply's, or unknown ones)");
  }
  if (IsGet(h.request) && (h.flags & vhost_user::kFlagNeedReply) != 0) {
    bad("asks for an ack, but has a reply of its own");
  }
  size_t size = 0;
  size_t fds = 0;
  switch (request) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetQueueNum:
    case Request::kSetOwner:
      break;
    case Request::kSetFeatures:
    case Request::kSetProtocolFeatures:
    case Request::kSetVringNum:
    case Request::kSetVringBase:
    case Request::kSetVringEnable:
    case Request::kGetVringBase:
      size = 8;
      break;
    case Request::kSetVringAddr:
      size = sizeof(vhost_user::VringAddress);
      break;
    case Request::kSetVringKick:
    case Request::kSetVringCall:
      size = 8;
      fds = (r.As<uint64_t>() & vhost_user::kVringNoFd) != 0 ? 0 : 1;
      break;
    case Request::kSetMemTable: {
      const uint32_t regions = r.As<uint32_t>();
      if (regions == 0 || regions > vhost_user::kMaxMemRegions) bad("has no or too many regions");
      size =
          offsetof(vhost_user::MemoryTable, regions) + regions * sizeof(vhost_user::MemoryRegion);
      fds = regions;
      break;
    }
    case Request::kGetConfig: {
      const auto config = r.As<vhost_user::ConfigSpace>();
      if (config.size > vhost_user::kMaxConfigSize) bad("asks for more than the config space");
      size = vhost_user::kConfigHeaderSize + config.size;
      break;
    }
    default:
      bad("is one this front-end never sends");
  }
  if (h.size != size) {
    bad("carries " + std::to_string(h.size) + " bytes, not " + std::to_string(size));
  }
  if (r.fds.size() != fds) {
    bad("carries " + std::to_string(r.fds.size()) + " fds, not " + std::to_string(fds));
  }
  if (options_.attach_mode) CheckAttachStep(r);

  // What answering GET_ID needs.
  switch (request) {
    case Request::kSetFeatures:
      features_ = r.As<uint64_t>();
      break;
    case Request::kSetMemTable: {
      const auto table = r.As<vhost_user::MemoryTable>();
      memory_known_ = true;
      memory_guest_ = table.regions[0].guest_phys_addr;
      memory_start_ = table.regions[0].userspace_addr;
      memory_size_ = table.regions[0].memory_size;
      break;  // the fd closes with the request: this process maps the memory already
    }
    case Request::kSetVringNum: {
      const auto state = r.As<vhost_user::VringState>();
      if (state.index == 0) ring_size_ = state.num;
      break;
    }
    case Request::kSetVringAddr: {
      const auto address = r.As<vhost_user::VringAddress>();
      if (address.index == 0) {
        desc_ = address.desc_user_addr;
        driver_ = address.avail_user_addr;
        device_ = address.used_user_addr;
        ring_known_ = true;
      }
      break;
    }
    case Request::kSetVringKick:
    case Request::kSetVringCall: {
      if ((r.As<uint64_t>() & vhost_user::kVringIndexMask) != 0 || r.fds.empty()) break;
      int& kept = request == Request::kSetVringKick ? kick_fd_ : call_fd_;
      if (kept >= 0) close(kept);
      kept = r.TakeFd();
      break;
    }
    default:
      break;
  }
}

// The controller's attach and stop, against what this back-end answered.
void FuzzBackend::CheckAttachStep(const Received& r) {
  const MessageHeader& h = r.header;
  const auto request = static_cast<Request>(h.request);
  auto bad = [&](const std::string& why) {
    Finding(std::string("at attach, the front-end's ") + vhost_user::RequestName(h.request) +
            " request " + why);
  };
  if (!IsGet(h.request)) {
    const bool acked = protocol_set_ && (protocol_features_ & Bit(vhost_user::kProtocolReplyAck));
    if (((h.flags & vhost_user::kFlagNeedReply) != 0) != acked) {
      bad(acked ? "asks for no ack although REPLY_ACK was agreed"
                : "asks for an ack although REPLY_ACK was not agreed");
    }
  }
  auto check_index = [&](uint32_t index) {
    if (index >= options_.vq_count) {
      bad("names queue " + std::to_string(index) + " of " + std::to_string(options_.vq_count));
    }
  };
  const bool packed = (features_ & Bit(VIRTIO_F_RING_PACKED)) != 0;
  switch (request) {
    case Request::kGetProtocolFeatures:
      if ((record_.offered_features & Bit(vhost_user::kFProtocolFeatures)) == 0) {
        bad("comes although PROTOCOL_FEATURES was never offered");
      }
      break;
    case Request::kSetProtocolFeatures: {
      const uint64_t value = r.As<uint64_t>();
      if ((value & ~record_.offered_protocol_features) != 0) {
        bad("takes protocol features that were never offered");
      }
      protocol_set_ = true;
      protocol_features_ = value;
      break;
    }
    case Request::kGetQueueNum:
      if (!protocol_set_ || (protocol_features_ & Bit(vhost_user::kProtocolMq)) == 0) {
        bad("comes although protocol feature MQ was not agreed");
      }
      record_.queue_num_asked = true;
      break;
    case Request::kGetConfig:
      if (!protocol_set_ || (protocol_features_ & Bit(vhost_user::kProtocolConfig)) == 0) {
        bad("comes although protocol feature CONFIG was not agreed");
      }
      break;
    case Request::kSetFeatures: {
      const uint64_t value = r.As<uint64_t>();
      if ((value & ~record_.offered_features) != 0) bad("takes features that were never offered");
      if ((value & Bit(VIRTIO_F_VERSION_1)) == 0) bad("leaves out VIRTIO_F_VERSION_1");
      if ((value & Bit(VIRTIO_F_RING_PACKED)) != 0 && !options_.packed_asked) {
        bad("takes RING_PACKED, which the options did not ask for");
      }
      break;
    }
    case Request::kSetMemTable:
      if (r.As<uint32_t>() != 1) bad("has more than the one region of the shared I/O arena");
      break;
    case Request::kSetVringNum: {
      const auto state = r.As<vhost_user::VringState>();
      check_index(state.index);
      if (state.num != options_.vq_size) bad("sets a size other than vq_size");
      break;
    }
    case Request::kSetVringBase: {
      const auto state = r.As<vhost_user::VringState>();
      check_index(state.index);
      if (state.num != (packed ? vhost_user::kPackedFreshBase : 0)) bad("is not a fresh ring's");
      break;
    }
    case Request::kSetVringAddr: {
      const auto address = r.As<vhost_user::VringAddress>();
      check_index(address.index);
      if (!memory_known_) bad("comes before SET_MEM_TABLE");
      const uint64_t n = options_.vq_size;
      Memory(address.desc_user_addr, 16 * n, "descriptor table");
      Memory(address.avail_user_addr, packed ? 4 : 6 + 2 * n, "driver area");
      Memory(address.used_user_addr, packed ? 4 : 6 + 8 * n, "device area");
      break;
    }
    case Request::kSetVringKick:
    case Request::kSetVringCall:
      check_index(static_cast<uint32_t>(r.As<uint64_t>() & vhost_user::kVringIndexMask));
      if (r.fds.size() != 1) bad("comes without an eventfd");
      break;
    case Request::kSetVringEnable: {
      const auto state = r.As<vhost_user::VringState>();
      check_index(state.index);
      if (state.num != 1) bad("does not enable the ring");
      if ((features_ & Bit(vhost_user::kFProtocolFeatures)) == 0) {
        bad("comes although PROTOCOL_FEATURES was not agreed");
      }
      break;
    }
    case Request::kGetVringBase:
      check_index(r.As<vhost_user::VringState>().index);
      break;
    default:
      break;
  }
}

std::string FuzzBackend::Reply(const Received& r) {
  std::string payload;
  switch (static_cast<Request>(r.header.request)) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetQueueNum:
      Append(payload, input_.U64());
      break;
    case Request::kGetVringBase: {
      vhost_user::VringState state{r.As<vhost_user::VringState>().index, input_.U32()};
      Append(payload, state);
      break;
    }
    case Request::kGetConfig: {
      const auto asked = r.As<vhost_user::ConfigSpace>();
      Append(payload, asked.offset);
      Append(payload, asked.size);
      Append(payload, uint32_t{0});
      for (uint32_t i = 0; i < asked.size; ++i) payload.push_back(static_cast<char>(input_.U8()));
      break;
    }
    default:
      Append(payload, uint64_t{input_.U8()});
      break;
  }
  std::string message;
  Append(message, MessageHeader{r.header.request, vhost_user::kVersion | vhost_user::kFlagReply,
                                static_cast<uint32_t>(payload.size())});
  return message + payload;
}

void FuzzBackend::Act(const Received& r) {
  switch (input_.U8() % kActionCount) {
    case kAnswer:
      if (Owed(r.header)) SendMessage(Reply(r), false);
      break;
    case kRaw: {
      MessageHeader header;
      header.request = input_.U32();
      header.flags = input_.U32();
      header.size = input_.U32();
      std::string message;
      Append(message, header);
      for (size_t i = 0; i < std::min<size_t>(header.size, kMaxRawPayload); ++i) {
        message.push_back(static_cast<char>(input_.U8()));
      }
      SendMessage(message, false);
      break;
    }
    case kEmpty: {
      std::string message;
      Append(message,
             MessageHeader{r.header.request, vhost_user::kVersion | vhost_user::kFlagReply, 0});
      SendMessage(message, false);
      break;
    }
    case kDouble: {
      const std::string reply = Reply(r);
      SendMessage(reply, false);
      SendMessage(reply, false);
      break;
    }
    case kWithFd:
      SendMessage(Reply(r), true);
      break;
    case kPartial: {
      const uint8_t n = input_.U8();
      std::string reply = Reply(r);
      reply.resize(n % reply.size());
      SendMessage(reply, false);
      CloseConnection();
      break;
    }
    case kShutdown:
      shutdown(connection_, SHUT_WR);
      can_write_ = false;
      break;
    case kClose:
      CloseConnection();
      break;
  }
}

void FuzzBackend::SendMessage(const std::string& bytes, bool with_fd) {
  if (connection_ < 0 || !can_write_ || bytes.empty()) return;
  if (bytes.size() >= sizeof(MessageHeader)) {
    MessageHeader h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    const bool could_be_reply = (h.flags & vhost_user::kVersionMask) == vhost_user::kVersion &&
                                (h.flags & vhost_user::kFlagReply) != 0 && h.size == 8 &&
                                bytes.size() == sizeof(h) + 8;
    if (could_be_reply) {
      uint64_t value;
      std::memcpy(&value, bytes.data() + sizeof(h), sizeof(value));
      switch (static_cast<Request>(h.request)) {
        case Request::kGetFeatures:
          record_.offered_features |= value;
          break;
        case Request::kGetProtocolFeatures:
          record_.offered_protocol_features |= value;
          break;
        case Request::kGetQueueNum:
          record_.max_queue_num = std::max(record_.max_queue_num, value);
          break;
        default:
          break;
      }
    }
  }
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  int fd = -1;
  if (with_fd) {
    fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) Finding(std::string("back-end: eventfd: ") + std::strerror(errno));
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  const ssize_t n = sendmsg(connection_, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (fd >= 0) close(fd);  // the message holds its own reference until read or dropped
  // EPIPE or ECONNRESET: the front-end is gone, nothing to tell. A full socket buffer cannot
  // happen (every input sends far less), but would change what the front-end reads.
  if ((n < 0 && errno == EAGAIN) || (n >= 0 && static_cast<size_t>(n) != bytes.size())) {
    Finding("back-end: a reply did not fit in the socket buffer");
  }
}

void FuzzBackend::CloseConnection() {
  if (connection_ < 0) return;
  // From here the front-end's sends fail, so whatever it sent before is in the queue: read it
  // all, as a back-end that had kept reading would have.
  shutdown(connection_, SHUT_RDWR);
  can_write_ = false;
  for (;;) {
    Received request;
    if (!ReadRequest(request, true)) break;
    Check(request);
  }
  close(std::exchange(connection_, -1));
}

uint8_t* FuzzBackend::Memory(uint64_t address, uint64_t length, const char* what) const {
  const uint64_t offset = address - memory_start_;
  if (!memory_known_ || address < memory_start_ || offset > memory_size_ ||
      length > memory_size_ - offset) {
    Finding(std::string("the front-end's ") + what + " lies outside the memory it shared");
  }
  // The front-end is this process: its addresses are ours.
  return reinterpret_cast<uint8_t*>(address);
}

uint8_t* FuzzBackend::Guest(uint64_t address, uint64_t length, const char* what) const {
  if (address < memory_guest_) {
    Finding(std::string("the front-end's ") + what + " lies outside the memory it shared");
  }
  return Memory(address - memory_guest_ + memory_start_, length, what);
}

void FuzzBackend::AnswerGetId() {
  get_id_answered_ = true;
  if (!options_.attach_mode) Finding("the front-end kicked a queue outside an attach");
  if (!ring_known_ || ring_size_ == 0) {
    Finding("the front-end kicked queue 0 before it had set the ring up");
  }
  if ((features_ & Bit(VIRTIO_F_RING_PACKED)) != 0) {
    AnswerGetIdPacked();
  } else {
    AnswerGetIdSplit();
  }
  if (call_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(call_fd_, &one, sizeof(one));
  }
}

void FuzzBackend::AnswerGetIdSplit() {
  const uint32_t n = ring_size_;
  auto* desc = reinterpret_cast<vring_desc*>(Memory(desc_, 16ull * n, "descriptor table"));
  auto* avail = reinterpret_cast<vring_avail*>(Memory(driver_, 6 + 2ull * n, "available ring"));
  auto* used = reinterpret_cast<vring_used*>(Memory(device_, 6 + 8ull * n, "used ring"));
  const uint16_t avail_idx = __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE);
  if (avail_idx != 1) {
    Finding("GET_ID: the available index is " + std::to_string(avail_idx) + ", not 1");
  }
  const uint16_t head = avail->ring[0];
  if (head >= n) Finding("GET_ID: its head descriptor is out of range");
  const GetIdAnswer& answer = options_.get_id;
  if (answer.mode == 1) {
    used->ring[0] = vring_used_elem{answer.id, answer.length};
    __atomic_store_n(&used->idx, std::max<uint16_t>(1, answer.extra), __ATOMIC_RELEASE);
    return;
  }
  std::vector<Buffer> chain;
  const vring_desc first = desc[head];
  const vring_desc* table = desc;
  uint32_t entries = n;
  uint32_t i = head;
  if (first.flags & VRING_DESC_F_INDIRECT) {
    if (first.len == 0 || first.len % sizeof(vring_desc) != 0 ||
        (first.flags & VRING_DESC_F_NEXT)) {
      Finding("GET_ID: a malformed indirect descriptor");
    }
    entries = first.len / sizeof(vring_desc);
    table = reinterpret_cast<const vring_desc*>(Guest(first.addr, first.len, "indirect table"));
    i = 0;
  }
  for (;;) {
    if (chain.size() >= entries) Finding("GET_ID: its chain loops");
    const vring_desc d = table[i];
    chain.push_back({d.addr, d.len, (d.flags & VRING_DESC_F_WRITE) != 0});
    if ((d.flags & VRING_DESC_F_NEXT) == 0) break;
    i = d.next;
    if (i >= entries) Finding("GET_ID: a next index out of range");
  }
  CompleteGetId(chain.data(), chain.size());
  used->ring[0] = vring_used_elem{head, answer.length};
  __atomic_store_n(&used->idx, uint16_t{1}, __ATOMIC_RELEASE);
}

void FuzzBackend::AnswerGetIdPacked() {
  const uint32_t n = ring_size_;
  auto* desc = reinterpret_cast<vring_packed_desc*>(Memory(desc_, 16ull * n, "descriptor ring"));
  Memory(driver_, 4, "driver event area");
  Memory(device_, 4, "device event area");
  const uint16_t head_flags = __atomic_load_n(&desc[0].flags, __ATOMIC_ACQUIRE);
  if ((head_flags & (kAvailFlag | kUsedFlag)) != kAvailFlag) {
    Finding("GET_ID: slot 0 is not available in the first wrap");
  }
  const GetIdAnswer& answer = options_.get_id;
  if (answer.mode == 1) {
    desc[0].id = answer.id;
    desc[0].len = answer.length;
    __atomic_store_n(&desc[0].flags, static_cast<uint16_t>(kAvailFlag | kUsedFlag | answer.extra),
                     __ATOMIC_RELEASE);
    return;
  }
  std::vector<Buffer> chain;
  uint16_t buffer_id;
  if (head_flags & VRING_DESC_F_INDIRECT) {
    const vring_packed_desc first = desc[0];
    if (first.len == 0 || first.len % sizeof(vring_packed_desc) != 0) {
      Finding("GET_ID: a malformed indirect descriptor");
    }
    const auto* table =
        reinterpret_cast<const vring_packed_desc*>(Guest(first.addr, first.len, "indirect table"));
    for (uint32_t i = 0; i < first.len / sizeof(vring_packed_desc); ++i) {
      chain.push_back({table[i].addr, table[i].len, (table[i].flags & VRING_DESC_F_WRITE) != 0});
    }
    buffer_id = first.id;
  } else {
    for (uint32_t i = 0;; ++i) {
      // A fresh ring: a chain that reaches the end of the ring is longer than the ring.
      if (i >= n) Finding("GET_ID: its chain is longer than the ring");
      const vring_packed_desc d = desc[i];
      const uint16_t flags = i == 0 ? head_flags : d.flags;
      if ((flags & (kAvailFlag | kUsedFlag)) != kAvailFlag) {
        Finding("GET_ID: a descriptor of its chain is not available");
      }
      chain.push_back({d.addr, d.len, (flags & VRING_DESC_F_WRITE) != 0});
      if ((flags & VRING_DESC_F_NEXT) == 0) {
        buffer_id = d.id;
        break;
      }
    }
  }
  CompleteGetId(chain.data(), chain.size());
  desc[0].id = buffer_id;
  desc[0].len = answer.length;
  __atomic_store_n(&desc[0].flags, static_cast<uint16_t>(kAvailFlag | kUsedFlag), __ATOMIC_RELEASE);
}

void FuzzBackend::CompleteGetId(const Buffer* chain, size_t count) {
  if (count != 3) {
    Finding("GET_ID: a chain of " + std::to_string(count) + " descriptors, not 3");
  }
  if (chain[0].device_writes || chain[0].length != sizeof(virtio_blk_outhdr)) {
    Finding("GET_ID: its first descriptor is not a request header");
  }
  virtio_blk_outhdr header;
  std::memcpy(&header, Guest(chain[0].address, sizeof(header), "request header"), sizeof(header));
  if (header.type != VIRTIO_BLK_T_GET_ID) Finding("GET_ID: the request's type is not GET_ID");
  if (!chain[1].device_writes || chain[1].length != VIRTIO_BLK_ID_BYTES) {
    Finding("GET_ID: its second descriptor is not a writable 20-byte buffer");
  }
  if (!chain[2].device_writes || chain[2].length != 1) {
    Finding("GET_ID: its last descriptor is not a writable status byte");
  }
  const GetIdAnswer& answer = options_.get_id;
  std::memcpy(Guest(chain[1].address, VIRTIO_BLK_ID_BYTES, "id buffer"), answer.serial,
              VIRTIO_BLK_ID_BYTES);
  *Guest(chain[2].address, 1, "status byte") = answer.status;
  record_.get_id_completed = true;
}

}  // namespace pollux::fuzz
