// The registry of file engines, and what their RPC methods share.
//
// Each engine module (uring, aio, threadpool) registers itself at start-up with
// POLLUX_FILE_ENGINE; `bdev_file_create {engine: "auto"}` (file_rpc.cc) then picks the first, in
// rank order, whose Probe() succeeds on this kernel (io_uring can be disabled by sysctl
// kernel.io_uring_disabled or by seccomp; libaio by aio-max-nr or seccomp) and logs what it
// chose and why. The engines' own bdev_<engine>_create methods read their parameters with
// ReadFileBdevParams and answer with HandleFileBdevCreate, so that all of them take the same
// parameters with the same messages.
//
// Threads: registration at static-initialisation time; everything else on the app thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_file/file_bdev.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {

// One engine, as its module describes it.
struct FileEngine {
  const char* name;  // "uring", "aio", "threadpool": also the bdev_<name>_create method's stem
  int rank;          // auto's preference: lower first (uring 10, aio 20, threadpool 30)
  // Whether the engine works here: tries the kernel interface for real (sets up and tears down
  // a small ring / context). Error message: why not ("io_uring_queue_init: Operation not
  // permitted"). Called on the app thread; may be called repeatedly.
  absl::Status (*probe)();
  // Opens the FileTarget, makes the engine's FileBdev and registers it. On the app thread.
  absl::StatusOr<Bdev*> (*create)(const FileBdevOptions& options);
  // Deletes one of the engine's bdevs by name (the bdev_<name>_delete method's body).
  BdevDeleteFn destroy;
};

// Adds an engine to the registry (POLLUX_FILE_ENGINE does it at start-up).
void RegisterFileEngine(const FileEngine& engine);
// The engine called `name`, or nullptr.
const FileEngine* FindFileEngine(std::string_view name);
// Every registered engine, by rank.
std::vector<const FileEngine*> FileEngines();

// Resolves bdev_file_create's `engine`: a registered engine's name (its probe must pass), or
// "auto": the first by rank whose probe passes. Logs the choice and why the higher-ranked
// engines were passed over (kNotice: shown by default). Errors: unknown engine, or none works
// (every probe's reason in the message).
absl::StatusOr<const FileEngine*> ChooseFileEngine(std::string_view requested);

// The spec of the shared parameters {name, filename, block_size?, readonly?, direct?, uuid?}
// (SPDK's names plus `direct`; SPDK's `fallocate` is accepted and ignored, since UNMAP /
// WRITE_ZEROES support is probed), and of a bdev_<engine>_create method with them plus `extra`.
std::vector<rpc::ParamSpec> FileBdevParams();
rpc::MethodSpec FileBdevCreateSpec(std::string method, std::string component,
                                   std::string_view engine, std::vector<rpc::ParamSpec> extra = {});

// Reads the shared parameters. Errors are collected in `reader` (call reader.Finish()).
FileBdevOptions ReadFileBdevParams(rpc::ParamReader& reader);

// The whole bdev_<engine>_create method for `engine`: reads the parameters, creates, answers
// the bdev's name, or the error prefixed by `method`.
void HandleFileBdevCreate(const rpc::Json& params, rpc::RpcResponder responder, const char* method,
                          const FileEngine& engine);

// The spec of bdev_<engine>_rescan {name} (SPDK's bdev_aio_rescan and bdev_uring_rescan).
rpc::MethodSpec FileBdevRescanSpec(std::string method, std::string component,
                                   std::string_view what);

// The whole bdev_<engine>_rescan method: the file or device of bdev `name` (one of
// `module_name`'s, or of any engine when empty) is measured again and the bdev takes its size
// (NotifyBdevBlockCountChange: open descriptors get BdevEvent::kResize; a shrink is refused
// while any is open). Answers true.
void HandleFileBdevRescan(const rpc::Json& params, rpc::RpcResponder responder, const char* method,
                          std::string_view module_name);

namespace internal {
struct FileEngineRegistrar {
  explicit FileEngineRegistrar(const FileEngine& engine) { RegisterFileEngine(engine); }
};
}  // namespace internal

}  // namespace pollux

// Registers a FileEngine (an expression or braced list) at start-up; in the engine's .cc.
#define POLLUX_FILE_ENGINE(id, ...) \
  static ::pollux::internal::FileEngineRegistrar pollux_file_engine_registrar_##id(__VA_ARGS__)
