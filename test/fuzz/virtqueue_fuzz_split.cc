// The virtqueue fuzz target on a split ring: the guest's avail ring and descriptor table
// against SplitRingDevice, with a model of what the device's indexes and notification fields
// must be after each call.
#include <cstddef>

#include "virtqueue_fuzz_session.h"

namespace pollux::fuzz {
namespace {

class SplitSession : public RingSession {
 public:
  SplitSession(const RingSetup& setup, FuzzGuest& guest)
      : RingSession(setup, guest),
        desc_(reinterpret_cast<vring_desc*>(guest.ring_memory() + kDescOffset)),
        avail_(reinterpret_cast<vring_avail*>(guest.ring_memory() + kDriverAreaOffset)),
        used_(reinterpret_cast<vring_used*>(guest.ring_memory() + kDeviceAreaOffset)) {
    avail_->idx = setup.start;
    used_->idx = setup.start;
    driver_idx_ = setup.start;
    guest_.SyncShadow();
    StartDevice(RingPosition{setup.start, setup.start});
  }

  // ---- the guest ----

  void WriteDescriptor(FuzzInput& in) {
    const uint16_t slot = in.U16() % setup_.size;
    const InputDescriptor d = ReadDescriptor(in);
    desc_[slot] = vring_desc{d.addr, d.len, d.flags, d.next_or_id};
    guest_.SyncShadow();
  }

  void MakeAvailable(FuzzInput& in) { Publish(in.U16()); }

  void SetDriverIndex(FuzzInput& in) {
    driver_idx_ = in.U16();
    __atomic_store_n(&avail_->idx, driver_idx_, __ATOMIC_RELEASE);
    guest_.SyncShadow();
  }

  void SetDriverEvent(FuzzInput& in) {
    avail_->flags = in.U16();
    used_event() = in.U16();
    guest_.SyncShadow();
  }

  // Descriptors from `head` on (slot numbers wrap at the queue size), linked in order; with an
  // indirect shape the buffers go to a table that one descriptor points to.
  void AddChain(FuzzInput& in) {
    const uint8_t shape_bits = in.U8();
    const uint16_t head = in.U8() % setup_.size;
    in.U8();  // the id: packed rings only
    const ChainShape s = ReadChainShape(in, shape_bits);
    uint16_t slot = head;
    const auto put = [&](uint64_t gpa, uint32_t len, uint16_t flags, bool last) {
      const auto next = static_cast<uint16_t>((slot + 1) % setup_.size);
      desc_[slot] = vring_desc{gpa, len, static_cast<uint16_t>(flags | (last ? 0 : kNext)), next};
      slot = next;
    };
    if (!s.indirect) {
      for (int i = 0; i < s.buffers; ++i) {
        put(s.gpa[i], s.len[i], BufferFlags(s, i), i + 1 == s.buffers);
      }
    } else {
      const int first = s.first_direct ? 1 : 0;
      if (first == 1) put(s.gpa[0], s.len[0], BufferFlags(s, 0), false);
      const uint64_t table = TableGpa(static_cast<uint8_t>(head));
      for (int i = first; i < s.buffers; ++i) {
        const auto next = static_cast<uint16_t>(i - first + 1);
        const vring_desc e{
            s.gpa[i], s.len[i],
            static_cast<uint16_t>(BufferFlags(s, i) | (i + 1 < s.buffers ? kNext : 0)), next};
        guest_.Write(table + (i - first) * sizeof(e), &e, sizeof(e));
      }
      put(table, static_cast<uint32_t>((s.buffers - first) * sizeof(vring_desc)), kIndirect, true);
    }
    Publish(head);
  }

  // ---- the device ----

  void Poll(FuzzInput& in) {
    const uint8_t budget = in.U8();
    uint16_t available = CheckAvailable();
    if (broken_) return;
    for (int popped = 0; available > 0 && (budget == 0 || popped < budget); ++popped) {
      const uint16_t head = avail_->ring[last_avail_ & (setup_.size - 1)];
      const ExpectedChain expected = ExpectSplitChain(Reference(), desc_, head);
      DescriptorChain chain;
      MarkIovecs();
      const RingError error = device_->Pop(&chain, iov_, setup_.max_iov);
      CheckChain(expected, error, chain);
      if (error != RingError::kNone) {
        guest_.CheckDeviceWrites({}, "a failed Pop wrote guest memory");
        broken_ = true;
        return;
      }
      ++last_avail_;
      // Notifications on and EVENT_IDX: avail_event follows what was taken.
      if (setup_.event_idx && enabled_) {
        Require(avail_event() == last_avail_, "Pop left avail_event behind");
        CheckWrites(AvailEventSpan(), "Pop wrote more than avail_event");
      } else {
        guest_.CheckDeviceWrites({}, "Pop wrote guest memory");
      }
      CheckPosition();
      AddInFlight(chain);
      // Nothing changed in guest memory: exactly one fewer chain is available.
      Require(CheckAvailable() == available - 1, "Available did not count the Pop");
      --available;
    }
  }

  void Complete(FuzzInput& in) {
    const int count = 1 + in.U8() % 8;
    for (int i = 0; i < count; ++i) {
      const uint16_t pick = in.U16();
      const uint32_t written = in.U32();
      const std::optional<DescriptorChain> chain = TakeInFlight(pick);
      if (!chain) return;
      const uint16_t entry = used_idx_ & (setup_.size - 1);
      // Both overloads: the vhost-blk queue keeps the id and slots, not the chain.
      if ((pick & 0x8000) != 0) {
        device_->PushUsed(chain->id, chain->ring_slots, written);
      } else {
        device_->PushUsed(*chain, written);
      }
      const vring_used_elem& e = used_->ring[entry];
      Require(e.id == chain->id && e.len == written, "PushUsed wrote another used entry");
      const DeviceWrite span{kDeviceAreaOffset + offsetof(vring_used, ring) + entry * sizeof(e),
                             sizeof(e)};
      CheckWrites(span, "PushUsed wrote more than its used entry");
      ++used_idx_;
      CheckPosition();  // not published yet: the position does not move
    }
  }

  void Publish() {
    const bool interrupt = device_->PublishUsed();
    if (used_idx_ == published_) {
      Require(!interrupt, "PublishUsed with nothing pushed asked for an interrupt");
      guest_.CheckDeviceWrites({}, "PublishUsed with nothing pushed wrote guest memory");
      return;
    }
    Require(used_->idx == used_idx_, "PublishUsed stored another used index");
    CheckWrites(DeviceWrite{kDeviceAreaOffset + offsetof(vring_used, idx), 2},
                "PublishUsed wrote more than the used index");
    bool expected = (avail_->flags & VRING_AVAIL_F_NO_INTERRUPT) == 0;
    if (setup_.event_idx) {
      // 2.7.10: an interrupt when used_event is among the entries just published; always the
      // first time after (re)start.
      const auto since_old = static_cast<uint16_t>(used_event() - published_);
      const auto published_now = static_cast<uint16_t>(used_idx_ - published_);
      expected = !signalled_valid_ || since_old < published_now;
      signalled_valid_ = true;
    }
    Require(interrupt == expected, "PublishUsed's interrupt decision");
    published_ = used_idx_;
    CheckPosition();
  }

  void EnableNotifications() {
    const bool idle = device_->EnableNotifications();
    enabled_ = true;
    CheckNotificationField(last_avail_, 0);
    Require(idle == (avail_->idx == last_avail_), "EnableNotifications missed a chain");
  }

  void DisableNotifications() {
    device_->DisableNotifications();
    enabled_ = false;
    CheckNotificationField(static_cast<uint16_t>(last_avail_ + 0x8000), VRING_USED_F_NO_NOTIFY);
  }

  void KeepNotificationsOff() {
    device_->KeepNotificationsOff();
    if (setup_.event_idx) {
      Require(avail_event() == static_cast<uint16_t>(last_avail_ + 0x8000),
              "KeepNotificationsOff left avail_event where a kick comes");
      CheckWrites(AvailEventSpan(), "KeepNotificationsOff wrote more than avail_event");
    } else {
      guest_.CheckDeviceWrites({}, "KeepNotificationsOff wrote guest memory");
    }
  }

  void ReadChain(FuzzInput& in) {
    const uint16_t head = in.U16();
    const ExpectedChain expected = ExpectSplitChain(Reference(), desc_, head);
    DescriptorChain chain;
    MarkIovecs();
    const RingError error = device_->ReadChain(head, &chain, iov_, setup_.max_iov);
    CheckChain(expected, error, chain);
    guest_.CheckDeviceWrites({}, "ReadChain wrote guest memory");
    CheckPosition();
    // The vhost-blk queue stops the ring when a resubmitted chain is broken, as after a Pop.
    if (error != RingError::kNone) {
      broken_ = true;
    } else {
      AddInFlight(chain);
    }
  }

  void Restart() {
    // What was pushed but not published is lost with the old device, as with a target that
    // went away: the driver never saw it.
    StartDevice(device_->position());
  }

  void SetBase(FuzzInput& in) {
    const uint16_t avail = in.U16();
    const uint16_t used = in.U16();
    StartDevice(RingPosition{avail, used});
  }

 private:
  void StartDevice(RingPosition position) {
    device_.emplace(
        desc_, avail_, used_,
        DeviceRingConfig{setup_.size, setup_.event_idx, setup_.indirect, &guest_.memory()},
        position);
    guest_.CheckDeviceWrites({}, "the constructor wrote guest memory");
    last_avail_ = position.last_avail_idx;
    used_idx_ = position.last_used_idx;
    published_ = position.last_used_idx;
    enabled_ = true;
    signalled_valid_ = false;
    CheckPosition();
  }

  // The driver makes `head` available: the ring entry, then the index with release.
  void Publish(uint16_t head) {
    avail_->ring[driver_idx_ & (setup_.size - 1)] = head;
    __atomic_store_n(&avail_->idx, ++driver_idx_, __ATOMIC_RELEASE);
    guest_.SyncShadow();
  }

  // Available() against the indexes; breaks the ring on an index jump, as the queue does.
  uint16_t CheckAvailable() {
    RingError error = RingError::kNone;
    const uint16_t available = device_->Available(&error);
    const auto ahead = static_cast<uint16_t>(avail_->idx - last_avail_);
    if (ahead > setup_.size) {
      Require(error == RingError::kAvailIndexJump && available == 0, "missed an index jump");
      broken_ = true;
    } else {
      Require(error == RingError::kNone && available == ahead, "Available miscounted");
    }
    guest_.CheckDeviceWrites({}, "Available wrote guest memory");
    return available;
  }

  void CheckPosition() {
    const RingPosition p = device_->position();
    Require(p.last_avail_idx == last_avail_ && p.last_used_idx == published_,
            "position() differs from the model");
  }

  // The field Enable/DisableNotifications write: avail_event with EVENT_IDX, else used flags.
  void CheckNotificationField(uint16_t avail_event_value, uint16_t used_flags) {
    if (setup_.event_idx) {
      Require(avail_event() == avail_event_value, "notification change left avail_event wrong");
      CheckWrites(AvailEventSpan(), "a notification change wrote more than avail_event");
    } else {
      Require(used_->flags == used_flags, "notification change left used flags wrong");
      CheckWrites(DeviceWrite{kDeviceAreaOffset + offsetof(vring_used, flags), 2},
                  "a notification change wrote more than the used flags");
    }
  }

  void CheckWrites(DeviceWrite allowed, const char* what) {
    guest_.CheckDeviceWrites(std::span<const DeviceWrite>(&allowed, 1), what);
  }

  DeviceWrite AvailEventSpan() const {
    return {kDeviceAreaOffset + offsetof(vring_used, ring) + sizeof(vring_used_elem) * setup_.size,
            2};
  }
  uint16_t& avail_event() {
    return *reinterpret_cast<uint16_t*>(guest_.ring_memory() + AvailEventSpan().offset);
  }
  uint16_t& used_event() { return avail_->ring[setup_.size]; }

  vring_desc* desc_;
  vring_avail* avail_;
  vring_used* used_;
  std::optional<SplitRingDevice> device_;
  uint16_t driver_idx_ = 0;  // the driver's next avail index
  // The model of the device: what its indexes and notification state must be.
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;   // pushed
  uint16_t published_ = 0;  // in used->idx
  bool enabled_ = true;
  bool signalled_valid_ = false;
};

}  // namespace

void RunSplitRing(const RingSetup& setup, FuzzGuest& guest, FuzzInput& in) {
  SplitSession session(setup, guest);
  RunOps(session, in);
}

}  // namespace pollux::fuzz
