// What the file engines' RPC methods share, and the engine-choosing methods:
//   bdev_file_create {name, filename, engine?: "auto"|"uring"|"aio"|"threadpool", block_size?,
//                     readonly?, direct?, uuid?}  -> the bdev's name
//   bdev_file_delete {name}                       -> true (any engine's file bdev)
// A bdev made by bdev_file_create is saved as its engine's bdev_<engine>_create (the choice is
// replayed as made).
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_file/file_bdev.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {

using rpc::Json;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::ReplyTrueOrError;
using rpc::Required;
using rpc::RpcResponder;

std::vector<rpc::ParamSpec> FileBdevParams() {
  return {
      Required("name", ParamType::kString, "name of the new bdev"),
      Required("filename", ParamType::kString, "the file or block device"),
      Optional("block_size", ParamType::kUnsigned,
               "bytes per block; 0 or absent: the device's logical block size, or 512 for a file"),
      Optional("readonly", ParamType::kBoolean, "open it read-only: only READ and FLUSH", "false"),
      Optional("direct", ParamType::kBoolean,
               "O_DIRECT; absent: on where the file system allows it (else buffered, with a "
               "warning), true: on or an error, false: buffered"),
      Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)"),
      rpc::SpdkHint("fallocate", ParamType::kBoolean,
                    "SPDK's switch for UNMAP and WRITE_ZEROES; here they follow what the file "
                    "system supports"),
  };
}

rpc::MethodSpec FileBdevCreateSpec(std::string method, std::string component,
                                   std::string_view engine, std::vector<rpc::ParamSpec> extra) {
  std::vector<rpc::ParamSpec> params = FileBdevParams();
  for (rpc::ParamSpec& param : extra) params.push_back(std::move(param));
  return rpc::MethodSpec(
      std::move(method), std::move(component),
      absl::StrFormat("Creates a bdev over a file or block device, with %s doing the I/O. "
                      "Answers the bdev's name.",
                      engine),
      std::move(params));
}

FileBdevOptions ReadFileBdevParams(ParamReader& reader) {
  FileBdevOptions options;
  options.name = reader.String("name");
  options.filename = reader.String("filename");
  std::optional<uint64_t> block_size = reader.OptionalUint("block_size");
  options.readonly = reader.Bool("readonly");
  options.direct = reader.OptionalBool("direct");
  options.uuid = reader.OptionalString("uuid").value_or("");
  // 0 is SPDK's "detect"; anything past 32 bits is refused by FileTarget's range check.
  uint64_t size = block_size.value_or(0);
  options.block_size = size > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(size);
  return options;
}

namespace {

// Bdev `name` if it is a file bdev: of engine module `module_name`, or of any when empty.
absl::StatusOr<FileBdev*> FindFileBdev(std::string_view name, std::string_view module_name) {
  Bdev* bdev = FindBdev(name);
  auto* file_bdev = dynamic_cast<FileBdev*>(bdev);
  if (file_bdev == nullptr || (!module_name.empty() && file_bdev->module().name() != module_name)) {
    return absl::NotFoundError(
        bdev == nullptr ? absl::StrFormat("no bdev \"%s\"", std::string(name))
                        : absl::StrFormat("bdev \"%s\" is not a %s bdev", std::string(name),
                                          module_name.empty() ? "file" : module_name));
  }
  return file_bdev;
}

// The end of reading a create request: the reader's errors, then an empty name.
absl::Status FinishFileBdevParams(ParamReader& reader, const FileBdevOptions& options) {
  if (absl::Status s = reader.Finish(); !s.ok()) return s;
  if (options.name.empty()) return absl::InvalidArgumentError("the bdev name must not be empty");
  return absl::OkStatus();
}

// Creates the bdev of `options` with `engine` and answers with its name.
void CreateAndReply(RpcResponder& responder, const char* method, const FileBdevOptions& options,
                    const FileEngine& engine) {
  absl::StatusOr<Bdev*> bdev = engine.create(options);
  if (!bdev.ok()) return ReplyError(responder, method, bdev.status());
  responder.Result((*bdev)->name());
}

}  // namespace

void HandleFileBdevCreate(const Json& params, RpcResponder responder, const char* method,
                          const FileEngine& engine) {
  ParamReader reader(params);
  FileBdevOptions options = ReadFileBdevParams(reader);
  if (absl::Status s = FinishFileBdevParams(reader, options); !s.ok()) {
    return ReplyError(responder, method, s);
  }
  CreateAndReply(responder, method, options, engine);
}

rpc::MethodSpec FileBdevRescanSpec(std::string method, std::string component,
                                   std::string_view what) {
  return rpc::MethodSpec(
      std::move(method), std::move(component),
      absl::StrFormat("Measures the file or block device of a %s again and gives the bdev its "
                      "size (a grown file, a resized volume): its users see the new size. "
                      "Answers true.",
                      what),
      {Required("name", ParamType::kString, "the bdev")});
}

void HandleFileBdevRescan(const Json& params, RpcResponder responder, const char* method,
                          std::string_view module_name) {
  ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, method, s);
  absl::StatusOr<FileBdev*> found = FindFileBdev(name, module_name);
  if (!found.ok()) return ReplyError(responder, method, found.status());
  FileBdev* file_bdev = *found;
  absl::StatusOr<uint64_t> blocks = file_bdev->target().CurrentBlockCount();
  if (!blocks.ok()) return ReplyError(responder, method, blocks.status());
  if (*blocks == 0) {
    return ReplyError(responder, method,
                      absl::FailedPreconditionError(absl::StrFormat(
                          "\"%s\" is now shorter than one block", file_bdev->target().filename())));
  }
  ReplyTrueOrError(responder, method, NotifyBdevBlockCountChange(*file_bdev, *blocks));
}

namespace {

void BdevFileCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_file_create";
  ParamReader reader(params);
  FileBdevOptions options = ReadFileBdevParams(reader);
  std::string engine_name = reader.String("engine");
  if (absl::Status s = FinishFileBdevParams(reader, options); !s.ok()) {
    return ReplyError(responder, kMethod, s);
  }
  absl::StatusOr<const FileEngine*> engine = ChooseFileEngine(engine_name);
  if (!engine.ok()) return ReplyError(responder, kMethod, engine.status());
  CreateAndReply(responder, kMethod, options, **engine);
}
POLLUX_RPC_METHOD(
    FileBdevCreateSpec("bdev_file_create", "bdev_file", "the chosen engine",
                       {Optional("engine", ParamType::kString,
                                 "uring, aio, threadpool, or auto: the best whose probe passes "
                                 "(save_config writes the engine's own create method)",
                                 "\"auto\"")}),
    BdevFileCreate);

// Deletes a file bdev of any engine (the one bdev_file_create chose).
void DeleteAnyFileBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  absl::StatusOr<FileBdev*> file_bdev = FindFileBdev(name, "");
  if (!file_bdev.ok()) return done(file_bdev.status());
  DeleteBdev(name, &(*file_bdev)->module(), std::move(done));
}

void BdevFileDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_file_delete", &DeleteAnyFileBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_file_delete", "bdev_file", "file bdev of any engine"),
                  BdevFileDelete);

void BdevFileRescan(const Json& params, RpcResponder responder) {
  HandleFileBdevRescan(params, std::move(responder), "bdev_file_rescan", "");
}
POLLUX_RPC_METHOD(FileBdevRescanSpec("bdev_file_rescan", "bdev_file", "file bdev of any engine"),
                  BdevFileRescan);

}  // namespace
}  // namespace pollux
