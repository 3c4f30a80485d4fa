// The aio bdev module (SPDK's bdev_aio): a bdev over a file or a block device, driven by Linux
// AIO (libaio). Each thread's channel owns its own AIO context: reads and writes queued during
// a poll iteration go to the kernel in one io_submit, completions are reaped from the context's
// user-space ring without a syscall, and an eventfd on every request lets a reactor in
// interrupt mode sleep while I/O is in flight. FLUSH, UNMAP and WRITE_ZEROES, which libaio
// cannot do asynchronously everywhere, go to the shared worker pool (bdev_file/worker_pool.h).
// A lone request on an idle thread runs inline instead (bdev_file/adaptive_submit.h).
//
// Threads: every function here runs on the app thread (like bdev_aio_create / bdev_aio_delete
// in aio_rpc.cc, and bdev_file_create with engine "aio"); I/O runs on any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev_file/file_bdev.h"

namespace pollux {

class AioModule final : public BdevModule {
 public:
  AioModule() : BdevModule("aio") {}
  static AioModule& Get();

  // Each BdevIo carries its iocb and its worker-pool request (no allocation per I/O).
  size_t io_context_size() const override;
};

// Whether Linux AIO works here: sets up and destroys a small context. The error says why not
// ("io_setup(1): Function not implemented (the kernel has no AIO support, or a seccomp filter
// refuses it)"). The engine registry's probe for `bdev_file_create {engine: "auto"}`.
absl::Status ProbeAio();

// Opens options.filename (FileTarget: O_DIRECT by default, size, block size) and registers an
// aio bdev over it. Errors name the file and the reason; nothing is left behind on error.
absl::StatusOr<Bdev*> CreateAioBdev(const FileBdevOptions& options);

// Unregisters the aio bdev `name` (once its users closed it), closes the file; done runs on the
// calling thread. Fails (NotFound, FailedPrecondition) when `name` is unknown, not an aio bdev,
// or claimed.
void DeleteAioBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
