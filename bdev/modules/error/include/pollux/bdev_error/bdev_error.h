// The error bdev module (SPDK's vbdev_error): a virtual bdev "EE_<base>" over a base bdev that
// forwards I/O like passthru and, on command, fails, holds, corrupts or refuses (no memory)
// chosen I/Os: by type, for a count of them or always. It exists to test error paths: of the
// bdev layer, of pollux-perf, of a guest behind vhost.
//
// Threads: every function here runs on the app thread (like the RPC methods in error_rpc.cc);
// I/O runs on any thread. An injection is per bdev and shared by every thread: the count is an
// atomic that I/O threads decrement, so the submission path takes no lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev/virtual_bdev_configs.h"

namespace pollux {

// What happens to an I/O an injection hits (SPDK's error_type names in the comments).
enum class ErrorInjectionType : uint8_t {
  kNone = 0,
  kFailure,      // "failure": completes with kFailed, never reaches the base
  kPending,      // "pending": held until the injections are cleared (then submitted to the
                 //   base) or the bdev is reset or removed (then completed with kAborted)
  kCorruptData,  // "corrupt_data": submitted; a write's data is corrupted before it goes to the
                 //   base, a read's after it comes back (one byte XORed)
  kNoMemory,     // "nomem": completes with kNoMemory, which the layer queues and retries
};

struct ErrorInjection {
  ErrorInjectionType type = ErrorInjectionType::kFailure;
  uint32_t count = 1;           // how many I/Os to hit (SPDK's "num"); 0 disarms
  bool always = false;          // hit every I/O until cleared; `count` is ignored
  uint64_t queue_depth = 0;     // hit only while at least this many I/Os of the submitting thread
                                // are at the base (SPDK's "queue_depth")
  uint64_t corrupt_offset = 0;  // kCorruptData: the byte of the request's data to corrupt...
  uint8_t corrupt_value = 0;    // ... XORed with this, which must not be 0
};

// One error bdev as configured: what bdev_error_create takes.
struct ErrorBdevOptions {
  std::string base_name;  // the bdev to sit on; it may not exist yet
  std::string uuid;       // empty: the layer generates one
};

class ErrorModule final : public BdevModule {
 public:
  ErrorModule();
  static ErrorModule& Get();

  // Attaches the configured error bdevs whose base just registered.
  void ExamineConfig(Bdev& bdev) override { configs_.Examine(bdev); }
  // One bdev_error_create per configured bdev (injections are not configuration, as in SPDK).
  void WriteConfig(rpc::Json& config) const override;
  int config_order() const override { return 1; }
  void Fini() override { configs_.Clear(); }
  size_t io_context_size() const override;

 private:
  friend absl::StatusOr<Bdev*> CreateErrorBdev(const ErrorBdevOptions& options);
  friend void DeleteErrorBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

  // Every error bdev asked for, attached or waiting for its base (named EE_<base>).
  VirtualBdevConfigs<ErrorBdevOptions> configs_;
};

// The name of the error bdev over `base_name`: "EE_<base_name>".
std::string ErrorBdevName(std::string_view base_name);

// Records the error bdev over options.base_name and creates it now if the base exists (then
// returns it) or when the base registers (then returns nullptr). On any error nothing is left
// behind.
absl::StatusOr<Bdev*> CreateErrorBdev(const ErrorBdevOptions& options);

// Unregisters the error bdev `name` (its held I/Os complete with kAborted) and forgets its
// configuration; one still waiting for its base is just forgotten. done runs on the calling
// thread.
void DeleteErrorBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

// Arms `injection` for I/Os of `io_type` on error bdev `name`, replacing what was armed for that
// type. std::nullopt arms every type but RESET (SPDK's "all").
absl::Status InjectError(std::string_view name, std::optional<IoType> io_type,
                         const ErrorInjection& injection);

// Disarms every injection of `name` ("clear") and submits the I/Os held by kPending to the base;
// done runs on the calling thread once every thread has let its held I/Os go.
void ClearErrors(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

// Disarms only the kPending injections and lets the held I/Os go (SPDK's
// bdev_error_resume_pending).
void ResumePendingErrors(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
