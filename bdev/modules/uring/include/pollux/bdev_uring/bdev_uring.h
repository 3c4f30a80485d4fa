// The uring bdev module: a file or block device through io_uring (liburing), one ring per
// thread's channel. Requests queue as SQEs during a poll iteration and reach the kernel in one
// io_uring_submit at its end; completions are read from the CQ ring in user space (a syscall
// only when the kernel flags deferred completion work); an eventfd registered with the ring
// wakes a sleeping reactor in interrupt mode. A lone request runs inline (FileBdev's adaptive
// depth-1 path). See README.md.
//
// Threads: CreateUringBdev, DeleteUringBdev and ProbeUring run on the app thread (like the RPC
// methods bdev_uring_create / bdev_uring_delete in uring_rpc.cc); I/O runs on any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev_file/file_bdev.h"

namespace pollux {

class UringModule final : public BdevModule {
 public:
  UringModule() : BdevModule("uring") {}
  static UringModule& Get();
  size_t io_context_size() const override;
};

// Whether io_uring works here (a small ring is set up and torn down; io_uring can be disabled
// by the sysctl kernel.io_uring_disabled or by seccomp). The error says why not. Also settles
// which setup flags this kernel takes (UringSetupFlagNames). App thread.
absl::Status ProbeUring();

// The IORING_SETUP_* flags channels ask for, as found by the last ProbeUring (e.g.
// "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG"; "" for none). App thread.
std::string UringSetupFlagNames();

// Opens options.filename (FileTarget) and registers a uring bdev over it. Errors name the file
// and the reason; a duplicate name is the layer's AlreadyExists.
absl::StatusOr<Bdev*> CreateUringBdev(const FileBdevOptions& options);

// Unregisters the uring bdev `name`; done runs on the calling thread. Fails (NotFound,
// FailedPrecondition) when `name` is unknown, not a uring bdev, or claimed.
void DeleteUringBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
