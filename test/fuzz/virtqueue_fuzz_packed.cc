// The virtqueue fuzz target on a packed ring: descriptors made available in place against
// PackedRingDevice, with a model of the device's positions, its batch of used descriptors and
// the event suppression fields.
#include <cstddef>

#include "virtqueue_fuzz_session.h"

namespace pollux::fuzz {
namespace {

class PackedSession : public RingSession {
 public:
  PackedSession(const RingSetup& setup, FuzzGuest& guest)
      : RingSession(setup, guest),
        desc_(reinterpret_cast<vring_packed_desc*>(guest.ring_memory() + kDescOffset)),
        driver_event_(
            reinterpret_cast<vring_packed_desc_event*>(guest.ring_memory() + kDriverAreaOffset)),
        device_event_(
            reinterpret_cast<vring_packed_desc_event*>(guest.ring_memory() + kDeviceAreaOffset)),
        driver_(PackedPosition::From(setup.start, setup.size)) {
    StartDevice(RingPosition{setup.start, setup.start});
  }

  // ---- the guest ----

  void WriteDescriptor(FuzzInput& in) {
    const uint16_t slot = in.U16() % setup_.size;
    const InputDescriptor d = ReadDescriptor(in);
    desc_[slot] = vring_packed_desc{d.addr, d.len, d.next_or_id, d.flags};
    guest_.SyncShadow();
  }

  // Marks the driver's next slots available in its wrap (their other flags as they are), the
  // first one last with release, as a driver hands over a chain.
  void MakeAvailable(FuzzInput& in) {
    const int count = 1 + in.U16() % 8;
    const uint16_t first = driver_.slot;
    uint16_t first_flags = 0;
    for (int i = 0; i < count; ++i) {
      const uint16_t flags =
          static_cast<uint16_t>((desc_[driver_.slot].flags & ~(kAvailFlag | kUsedFlag)) |
                                (driver_.wrap ? kAvailFlag : kUsedFlag));
      if (i == 0) {
        first_flags = flags;
      } else {
        desc_[driver_.slot].flags = flags;
      }
      driver_.Advance(1, setup_.size);
    }
    __atomic_store_n(&desc_[first].flags, first_flags, __ATOMIC_RELEASE);
    guest_.SyncShadow();
  }

  void SetDriverIndex(FuzzInput& in) { driver_ = PackedPosition::From(in.U16(), setup_.size); }

  void SetDriverEvent(FuzzInput& in) {
    driver_event_->flags = in.U16();
    driver_event_->off_wrap = in.U16();
    guest_.SyncShadow();
  }

  // Descriptors in the driver's next slots, each carrying the id; with an indirect shape the
  // buffers go to a table that one descriptor points to (after a direct first one if asked).
  void AddChain(FuzzInput& in) {
    const uint8_t shape_bits = in.U8();
    const uint8_t table_space = in.U8();
    const uint8_t id = in.U8();
    const ChainShape s = ReadChainShape(in, shape_bits);
    const uint16_t first = driver_.slot;
    uint16_t first_flags = 0;
    bool is_first = true;
    const auto put = [&](uint64_t gpa, uint32_t len, uint16_t flags, bool last) {
      flags = static_cast<uint16_t>(flags | (last ? 0 : kNext) |
                                    (driver_.wrap ? kAvailFlag : kUsedFlag));
      desc_[driver_.slot] = vring_packed_desc{gpa, len, id, is_first ? uint16_t{0} : flags};
      if (is_first) first_flags = flags;
      is_first = false;
      driver_.Advance(1, setup_.size);
    };
    if (!s.indirect) {
      for (int i = 0; i < s.buffers; ++i) {
        put(s.gpa[i], s.len[i], BufferFlags(s, i), i + 1 == s.buffers);
      }
    } else {
      const int direct = s.first_direct ? 1 : 0;
      if (direct == 1) put(s.gpa[0], s.len[0], BufferFlags(s, 0), false);
      const uint64_t table = TableGpa(table_space);
      for (int i = direct; i < s.buffers; ++i) {
        const vring_packed_desc e{s.gpa[i], s.len[i], 0, BufferFlags(s, i)};
        guest_.Write(table + (i - direct) * sizeof(e), &e, sizeof(e));
      }
      put(table, static_cast<uint32_t>((s.buffers - direct) * sizeof(vring_packed_desc)), kIndirect,
          true);
    }
    __atomic_store_n(&desc_[first].flags, first_flags, __ATOMIC_RELEASE);
    guest_.SyncShadow();
  }

  // ---- the device ----

  void Poll(FuzzInput& in) {
    const uint8_t budget = in.U8();
    // Slots a poll may take without the guest writing meanwhile: a head is available in one
    // wrap only, and every slot after a chain's last is a head, so the device stops within two
    // laps; a loop would show here (more slots than the driver could ever have handed over
    // is a guest's own breakage, not the device's).
    uint32_t slots = 0;
    for (int popped = 0; budget == 0 || popped < budget; ++popped) {
      const bool available = device_->HasAvailable();
      Require(available == ModelHasAvailable(), "HasAvailable differs from the flags");
      if (!available) break;
      PackedPosition next = avail_;
      const ExpectedChain expected = ExpectPackedChain(Reference(), desc_, &next.slot, &next.wrap);
      DescriptorChain chain;
      MarkIovecs();
      const RingError error = device_->Pop(&chain, iov_, setup_.max_iov);
      CheckChain(expected, error, chain);
      guest_.CheckDeviceWrites({}, "Pop wrote guest memory");
      if (error != RingError::kNone) {
        broken_ = true;
        return;
      }
      avail_ = next;
      CheckPosition();
      AddInFlight(chain);
      slots += chain.ring_slots;
      Require(slots <= 2u * setup_.size, "one poll took more than two laps of the ring");
    }
  }

  void Complete(FuzzInput& in) {
    const int count = 1 + in.U8() % 8;
    for (int i = 0; i < count; ++i) {
      const uint16_t pick = in.U16();
      const uint32_t written = in.U32();
      const std::optional<DescriptorChain> chain = TakeInFlight(pick);
      if (!chain) return;
      const uint16_t slot = used_.slot;
      const uint16_t old_flags = desc_[slot].flags;
      if ((pick & 0x8000) != 0) {
        device_->PushUsed(chain->id, chain->ring_slots, written);
      } else {
        device_->PushUsed(*chain, written);
      }
      // Used in our wrap: AVAIL and USED both equal to the wrap counter (2.8.1); WRITE when
      // something was written.
      auto flags = static_cast<uint16_t>(used_.wrap ? kAvailFlag | kUsedFlag : 0);
      if (written != 0) flags |= kWrite;
      const vring_packed_desc& d = desc_[slot];
      Require(d.id == chain->id && d.len == written, "PushUsed wrote another used descriptor");
      if (batch_count_ == 0) {
        // The batch's first: its flags wait for PublishUsed.
        Require(d.flags == old_flags, "PushUsed showed the batch's first before PublishUsed");
        batch_head_ = slot;
        batch_head_flags_ = flags;
      } else {
        Require(d.flags == flags, "PushUsed wrote other flags");
      }
      CheckWrites(DeviceWrite{kDescOffset + slot * sizeof(d) + offsetof(vring_packed_desc, len),
                              sizeof(d) - offsetof(vring_packed_desc, len)},
                  "PushUsed wrote more than its used descriptor");
      ++batch_count_;
      batch_slots_ += chain->ring_slots;
      used_.Advance(chain->ring_slots, setup_.size);
      CheckPosition();
    }
  }

  void Publish() {
    const bool interrupt = device_->PublishUsed();
    if (batch_count_ == 0) {
      Require(!interrupt, "PublishUsed with nothing pushed asked for an interrupt");
      guest_.CheckDeviceWrites({}, "PublishUsed with nothing pushed wrote guest memory");
      return;
    }
    Require(desc_[batch_head_].flags == batch_head_flags_, "PublishUsed showed other flags");
    CheckWrites(DeviceWrite{kDescOffset + batch_head_ * sizeof(vring_packed_desc) +
                                offsetof(vring_packed_desc, flags),
                            2},
                "PublishUsed wrote more than the batch's first flags");
    CheckInterrupt(interrupt);
    published_ = used_;
    batch_count_ = 0;
    batch_slots_ = 0;
    CheckPosition();
  }

  void EnableNotifications() {
    const bool idle = device_->EnableNotifications();
    CheckDeviceEvent(VRING_PACKED_EVENT_FLAG_ENABLE);
    Require(idle == !ModelHasAvailable(), "EnableNotifications missed a chain");
  }

  void DisableNotifications() {
    device_->DisableNotifications();
    CheckDeviceEvent(VRING_PACKED_EVENT_FLAG_DISABLE);
  }

  void KeepNotificationsOff() {
    device_->KeepNotificationsOff();
    guest_.CheckDeviceWrites({}, "KeepNotificationsOff wrote guest memory");
  }

  void ReadChain(FuzzInput& in) { in.U16(); }  // inflight resubmission is split-only

  void Restart() { StartDevice(device_->position()); }

  void SetBase(FuzzInput& in) {
    const uint16_t avail = in.U16();
    const uint16_t used = in.U16();
    StartDevice(RingPosition{avail, used});
  }

 private:
  void StartDevice(RingPosition position) {
    device_.emplace(
        desc_, driver_event_, device_event_,
        DeviceRingConfig{setup_.size, setup_.event_idx, setup_.indirect, &guest_.memory()},
        position);
    guest_.CheckDeviceWrites({}, "the constructor wrote guest memory");
    avail_ = PackedPosition::From(position.last_avail_idx, setup_.size);
    used_ = PackedPosition::From(position.last_used_idx, setup_.size);
    published_ = used_;
    batch_count_ = 0;
    batch_slots_ = 0;
    signalled_valid_ = false;
    CheckPosition();
  }

  // Available in our wrap: AVAIL equal to the wrap counter, USED not (2.8.1).
  bool ModelHasAvailable() const {
    const uint16_t flags = desc_[avail_.slot].flags;
    const bool avail = (flags & kAvailFlag) != 0;
    const bool used = (flags & kUsedFlag) != 0;
    return avail == avail_.wrap && used != avail_.wrap;
  }

  // PublishUsed's answer (2.8.10): the driver's flags decide, and with EVENT_IDX and DESC the
  // descriptor it named must be among the slots just used. That rule is checked as a walk over
  // the positions of the batch, where the device computes it modulo the index space; only
  // where both are meaningful: a named slot inside the ring and a batch of at most one lap.
  void CheckInterrupt(bool interrupt) {
    const uint16_t event_flags = driver_event_->flags;
    const bool first = !signalled_valid_;
    signalled_valid_ = true;
    if (!setup_.event_idx || event_flags != VRING_PACKED_EVENT_FLAG_DESC) {
      Require(interrupt == (event_flags != VRING_PACKED_EVENT_FLAG_DISABLE),
              "PublishUsed's interrupt decision (flags)");
      return;
    }
    if (first) {
      Require(interrupt, "PublishUsed's first interrupt decision after a start");
      return;
    }
    const PackedPosition event = PackedPosition::From(driver_event_->off_wrap, 0x8000);
    if (event.slot >= setup_.size || batch_slots_ > setup_.size) return;
    bool named = false;
    PackedPosition p = published_;
    for (uint32_t i = 0; i < batch_slots_; ++i) {
      named |= p.slot == event.slot && p.wrap == event.wrap;
      p.Advance(1, setup_.size);
    }
    Require(interrupt == named, "PublishUsed's interrupt decision (event index)");
  }

  void CheckPosition() {
    const RingPosition p = device_->position();
    Require(p.last_avail_idx == avail_.Encoded() && p.last_used_idx == published_.Encoded(),
            "position() differs from the model");
  }

  void CheckDeviceEvent(uint16_t flags) {
    Require(device_event_->flags == flags, "notification change left the device event wrong");
    CheckWrites(DeviceWrite{kDeviceAreaOffset + offsetof(vring_packed_desc_event, flags), 2},
                "a notification change wrote more than the device event flags");
  }

  void CheckWrites(DeviceWrite allowed, const char* what) {
    guest_.CheckDeviceWrites(std::span<const DeviceWrite>(&allowed, 1), what);
  }

  vring_packed_desc* desc_;
  vring_packed_desc_event* driver_event_;
  vring_packed_desc_event* device_event_;
  PackedPosition driver_;  // the driver's next slot to make available
  std::optional<PackedRingDevice> device_;
  // The model of the device.
  PackedPosition avail_;
  PackedPosition used_;       // where the next used descriptor goes
  PackedPosition published_;  // used position as the driver can see it
  uint32_t batch_count_ = 0;  // pushed since the last PublishUsed
  uint32_t batch_slots_ = 0;  // ring slots they took
  uint16_t batch_head_ = 0;
  uint16_t batch_head_flags_ = 0;
  bool signalled_valid_ = false;
};

}  // namespace

void RunPackedRing(const RingSetup& setup, FuzzGuest& guest, FuzzInput& in) {
  PackedSession session(setup, guest);
  RunOps(session, in);
}

}  // namespace pollux::fuzz
