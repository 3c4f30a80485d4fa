// Block devices (SPDK's spdk_bdev): the Bdev a module subclasses, and the layer's registry.
//
// Threads: registration, lookup, unregistration and descriptor opens happen on any pollux
// Thread (the RPC methods run on the app thread); the registry takes a mutex, never on the
// data path. I/O goes through a BdevDesc and a per-thread channel (bdev_desc.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/bdev/bdev_stats.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

class BdevModule;
class BdevState;

// What a module tells the layer about a device it registers.
struct BdevProperties {
  std::string name{};                // unique among names and aliases
  std::vector<std::string> aliases{};  // other names the bdev answers to
  std::string uuid{};                // empty: the layer generates one (RFC 4122 text form)
  std::string product_name{};        // "Malloc disk", "Null disk", "passthru", ...
  uint32_t block_size = 512;         // power of two, 512 to 65536
  uint64_t block_count = 0;
  uint32_t required_alignment = 1;   // bytes, power of two; the layer bounces other buffers
  bool write_cache = false;          // FLUSH means something only when on
  // Requests that cross a multiple of this many blocks are split there when
  // split_on_optimal_io_boundary is set (RAID stripes, device internal boundaries). 0: none.
  uint32_t optimal_io_boundary = 0;
  bool split_on_optimal_io_boundary = false;
  uint32_t max_transfer_blocks = 0;  // largest request the module takes; 0: no limit
  uint32_t max_segments = 0;         // most iovecs per request the module takes; 0: no limit
  // Data buffers must lie in shared I/O memory (pollux/env/shared_io_memory.h): the back-end,
  // another process, maps them (vhost-user). The layer bounces other buffers into it.
  bool requires_shared_memory = false;
  // Submit takes READs without a data buffer (BdevIo::needs_data_buffer, from callers of
  // BdevDesc::ReadWithoutBuffer) and gets one itself with BdevIo::GetDataBuffer when it needs
  // memory. Off (most modules): the layer gets the buffer before Submit, and Submit only ever
  // sees I/O with buffers.
  bool takes_reads_without_buffer = false;
};

// A block device. Modules subclass it, fill BdevProperties, and hand it to RegisterBdev,
// which takes ownership; the layer destroys it after UnregisterBdev (Destruct, then delete).
class Bdev {
 public:
  Bdev(BdevModule& module, BdevProperties properties);
  virtual ~Bdev();
  Bdev(const Bdev&) = delete;
  Bdev& operator=(const Bdev&) = delete;

  const std::string& name() const { return properties_.name; }
  const std::vector<std::string>& aliases() const { return properties_.aliases; }
  const std::string& uuid() const { return properties_.uuid; }
  const std::string& product_name() const { return properties_.product_name; }
  uint32_t block_size() const { return properties_.block_size; }
  // Changes only through NotifyBdevBlockCountChange, on the app thread, while other threads
  // read it: an atomic (a plain load on x86).
  uint64_t block_count() const { return block_count_.load(std::memory_order_relaxed); }
  uint64_t size_bytes() const { return block_count() * properties_.block_size; }
  uint32_t required_alignment() const { return properties_.required_alignment; }
  bool write_cache() const { return properties_.write_cache; }
  uint32_t optimal_io_boundary() const { return properties_.optimal_io_boundary; }
  bool split_on_optimal_io_boundary() const { return properties_.split_on_optimal_io_boundary; }
  uint32_t max_transfer_blocks() const { return properties_.max_transfer_blocks; }
  uint32_t max_segments() const { return properties_.max_segments; }
  bool requires_shared_memory() const { return properties_.requires_shared_memory; }
  const BdevProperties& properties() const { return properties_; }
  BdevModule& module() const { return *module_; }
  // Whether `name` is this bdev's name or one of its aliases.
  bool HasName(std::string_view name) const;

  // Whether callers may submit `type`: the module's own types plus what the layer emulates
  // (WRITE_ZEROES through writes; FLUSH on a device without write cache is a no-op).
  bool Supports(IoType type) const { return (supported_mask_ >> static_cast<int>(type)) & 1; }

  // The module holding the write claim, or nullptr.
  const BdevModule* claimed_by() const;
  // Open descriptors.
  size_t open_count() const;

  // Sums the statistics of every channel (live and gone) and calls done on the calling Thread.
  void GetIoStats(absl::AnyInvocable<void(const BdevIoStats&)> done);

  // ---- Implemented by modules ----

  // Starts an I/O: read io.iovs(), io.offset_blocks()...; call io.Complete() exactly once,
  // now or later, on this thread. Never called with a type IoTypeSupported() denies, with a
  // range past the end, or with more blocks/segments than the properties allow.
  virtual void Submit(BdevIo& io) noexcept = 0;
  // Called once at registration, for each type; the answer must not change.
  virtual bool IoTypeSupported(IoType type) const = 0;
  // Aborts `io`, an I/O this bdev's Submit received and has not completed (SPDK's ABORT I/O
  // type, for BdevDesc::Abort). If it can: complete `io` with kAborted and call
  // done(done_arg, kSuccess, 0); if it cannot, leave `io` alone and call done with the reason
  // (kFailed and ENOENT: it does not hold it any more; kNotSupported). Exactly one call of
  // done, now or later, on this thread. A virtual bdev whose I/O is at its base passes the
  // abort down with the cb_arg it gave the base: base_desc->Abort(base_channel, &io, done,
  // done_arg). I/O it forwarded (BdevDesc::Forward) never comes here: the layer asks the bdev
  // holding it. The default cannot abort anything.
  virtual void Abort(BdevIo& io, BdevIoCallback done, void* done_arg) noexcept {
    (void)io;
    done(done_arg, BdevIoStatus::kNotSupported, 0);
  }
  // Per-thread state (a queue, a kernel ring), created on each thread that does I/O on this
  // bdev, on that thread; BdevIo::module_channel<T>() returns it. nullptr: none needed.
  virtual std::unique_ptr<ChannelContext> CreateChannel() { return nullptr; }
  // Fills bdev_get_bdevs' "driver_specific" object.
  virtual void DumpInfo(rpc::Json& driver_specific) const { (void)driver_specific; }
  // Appends the RPC call that recreates this bdev ({"method":..,"params":..}) for save_config.
  virtual void WriteConfig(rpc::Json& config) const { (void)config; }
  // Releases what the module holds (closes a base descriptor, frees memory), then calls done,
  // possibly later, on any Thread. Runs after every descriptor closed and every channel went.
  virtual void Destruct(absl::AnyInvocable<void()> done) { done(); }

 private:
  friend class BdevRegistry;
  friend class BdevDesc;
  friend class BdevChannel;
  friend class BdevState;
  friend void ForEachBdevChannel(
      Bdev& bdev,
      absl::AnyInvocable<void(IoChannel& channel, ChannelContext* module_channel,
                              absl::AnyInvocable<void(absl::Status)> next)>
          fn,
      absl::AnyInvocable<void(absl::Status)> done);

  BdevProperties properties_;  // block_count: the app thread's copy of block_count_
  std::atomic<uint64_t> block_count_;
  BdevModule* module_;
  uint32_t supported_mask_ = 0;         // what callers may submit
  uint32_t module_supported_mask_ = 0;  // what reaches the module (the rest is emulated)
  std::unique_ptr<BdevState> state_;  // the layer's bookkeeping (bdev_state.h)
};

// Runs fn on each channel of `bdev` (each thread doing I/O on it), on that channel's thread,
// one after the other (SPDK's spdk_bdev_for_each_channel): fn gets the channel (for BdevDesc
// calls), the module's channel context (what Bdev::CreateChannel made, possibly nullptr) and
// `next`, which it calls once, on that thread, now or later; a non-OK status stops the walk.
// Then done(status) runs on the calling Thread: OK, or the status that stopped the walk. The
// bdev must stay registered meanwhile (a module walking its own bdev, a caller holding a
// descriptor). Control path: it allocates. Call from a Thread.
void ForEachBdevChannel(
    Bdev& bdev,
    absl::AnyInvocable<void(IoChannel& channel, ChannelContext* module_channel,
                            absl::AnyInvocable<void(absl::Status)> next)>
        fn,
    absl::AnyInvocable<void(absl::Status)> done);

// The device changed size (SPDK's spdk_bdev_notify_blockcnt_change): the bdev's block count
// becomes `block_count`, every channel's range checks take it, and then every open descriptor
// gets a kResize event on its thread. A module calls it when its device grew or shrank (an RBD
// image resized). Shrinking while any descriptor is open fails (FailedPrecondition, SPDK's
// -EBUSY: a user may be reading the end); so does a bdev being removed. The same count again
// changes nothing and sends no event. Call on the app thread.
absl::Status NotifyBdevBlockCountChange(Bdev& bdev, uint64_t block_count);

// Whether `text` is a UUID in RFC 4122 text form (8-4-4-4-12 hexadecimal digits).
bool IsValidUuid(std::string_view text);

// ---- The registry ----

// Validates and registers a bdev (generating its UUID if empty), lets every module examine it
// (ExamineConfig, then ExamineDisk, which may finish later: WaitForBdevExamine), and returns
// it. On error the bdev is destroyed (its destructor runs, Destruct does not).
// Call on a Thread.
absl::StatusOr<Bdev*> RegisterBdev(std::unique_ptr<Bdev> bdev);

// Removes a bdev: new opens fail, every module's OnBdevRemoved runs (on the app thread), then
// every open descriptor gets a remove event on its thread;
// once all are closed and every channel is gone, the module's Destruct runs, the bdev is
// deleted, and done(OK) runs on the calling Thread. Call on a Thread.
void UnregisterBdev(Bdev& bdev, absl::AnyInvocable<void(absl::Status)> done);

// Removes every bdev, one at a time, those nothing is built on first (a virtual bdev before its
// base), then calls done on the calling Thread. What shutdown does before the modules end;
// tests and fuzz targets use it to start again from nothing. Call on a Thread.
void UnregisterAllBdevs(absl::AnyInvocable<void()> done);

// The RPC-facing delete: fails without side effects when `name` is unknown, belongs to another
// module (`module` non-null), or is claimed by a virtual bdev; otherwise UnregisterBdev.
void DeleteBdev(std::string_view name, const BdevModule* module,
                absl::AnyInvocable<void(absl::Status)> done);

// A registered bdev by name or alias, or nullptr. The pointer stays valid until the bdev is
// unregistered: use it on the calling Thread right away, or open a descriptor.
Bdev* FindBdev(std::string_view name);
// Every registered bdev, in registration order (same validity as FindBdev).
std::vector<Bdev*> ListBdevs();

// Calls done on the calling Thread once every registered bdev has been examined by every module
// (ExamineConfig returned and every ExamineDisk called its done): at once when nothing is under
// way. What bdev_wait_for_examine waits for (SPDK's spdk_bdev_wait_for_examine). Any Thread.
void WaitForBdevExamine(absl::AnyInvocable<void()> done);

// ---- The layer ----

struct BdevLayerOptions {
  uint32_t bdev_io_pool_size = 65535;  // BdevIo objects in the shared mempool
  uint32_t bdev_io_cache_size = 256;   // per-thread cache of those
  // Data buffers the layer lends to reads submitted without one (BdevDesc::ReadWithoutBuffer,
  // BdevIo::GetDataBuffer): 8 KiB ones for requests up to 8 KiB, 132 KiB ones up to 132 KiB
  // (alignment included), allocated when the layer starts (25 MiB by default; the same again
  // in the shared I/O arena once a bdev that requires shared memory needs one). SPDK's names.
  uint32_t small_buf_pool_size = 1024;
  uint32_t large_buf_pool_size = 128;
  // Per-thread caches of those (at most an eighth of the pool; 0 is taken as 1).
  uint32_t iobuf_small_cache_size = 128;
  uint32_t iobuf_large_cache_size = 16;

  bool operator==(const BdevLayerOptions&) const = default;
};

// One data buffer pool's figures (GetBdevBufferPoolStats).
struct BdevBufferPoolStats {
  const char* name;      // "small", "large", "shared_small", "shared_large"
  uint32_t buffer_size;  // bytes
  uint32_t count;        // buffers; 0 for a shared pool not made yet
  uint32_t free;         // in the pool or a thread's cache; count - free are lent to I/O
  uint64_t waits;        // requests that found none free and waited
};

// The data buffer pools as they are now (exact when no I/O runs: the caches are read without
// stopping their threads). Empty before InitBdevLayer. Any thread.
std::vector<BdevBufferPoolStats> GetBdevBufferPoolStats();

// Creates the BdevIo pool and initialises every module, one after the other, each maybe
// asynchronously (BdevModule::InitAsync), then calls done on the calling Thread: OK, or the
// first module's error prefixed by its name, after undoing what the modules before it did. The
// bdev subsystem's start-up. Call on a Thread (it becomes the layer's app thread, where module
// hooks run), once, before any bdev is registered.
void InitBdevLayer(const BdevLayerOptions& options, absl::AnyInvocable<void(absl::Status)> done);
// Runs every module's FiniStart, unregisters every bdev (virtual ones first), runs every
// module's FiniAsync in reverse order, frees the pool, then calls done on the calling Thread.
// Call on the app thread, after InitBdevLayer's done.
void FiniBdevLayer(absl::AnyInvocable<void()> done);
bool BdevLayerInitialized();
const BdevLayerOptions& GetBdevLayerOptions();
// Changes the options (bdev_set_options). Before InitBdevLayer they are what it will use; once
// the layer runs, the pool is replaced, which only works before any bdev exists or any I/O ran
// (FailedPrecondition otherwise). The same options again are always fine. On the app thread.
absl::Status SetBdevLayerOptions(const BdevLayerOptions& options);

}  // namespace pollux
