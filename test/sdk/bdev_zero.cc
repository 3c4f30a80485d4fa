// The zero bdev, an out-of-tree module: reads return zeros, writes are dropped. One RPC method,
// bdev_zero_create {name, num_blocks} (512-byte blocks), which config replay calls too.
#include <pollux/bdev/bdev.h>
#include <pollux/bdev/bdev_module.h>
#include <pollux/rpc/method_registry.h>
#include <sys/uio.h>

#include <cstring>
#include <memory>
#include <utility>

namespace zero {

using pollux::Bdev;
using pollux::BdevIo;
using pollux::BdevIoStatus;
using pollux::BdevModule;
using pollux::BdevProperties;
using pollux::IoType;
namespace rpc = pollux::rpc;

class ZeroModule final : public BdevModule {
 public:
  ZeroModule() : BdevModule("zero") {}
  static ZeroModule& Get();
};
POLLUX_BDEV_MODULE(ZeroModule);

class ZeroBdev final : public Bdev {
 public:
  explicit ZeroBdev(BdevProperties properties) : Bdev(ZeroModule::Get(), std::move(properties)) {}

  void Submit(BdevIo& io) noexcept override {
    if (io.type() == IoType::kRead) {
      for (int i = 0; i < io.iovcnt(); ++i) {
        std::memset(io.iovs()[i].iov_base, 0, io.iovs()[i].iov_len);
      }
    }
    io.Complete(BdevIoStatus::kSuccess);
  }
  bool IoTypeSupported(IoType type) const override {
    return type == IoType::kRead || type == IoType::kWrite;
  }
  void WriteConfig(rpc::Json& config) const override {
    config.push_back({{"method", "bdev_zero_create"},
                      {"params", {{"name", name()}, {"num_blocks", block_count()}}}});
  }
};

void BdevZeroCreate(const rpc::Json& params, rpc::RpcResponder responder) {
  rpc::ParamReader reader(params);
  BdevProperties properties;
  properties.name = reader.String("name");
  properties.product_name = "Zero disk";
  properties.block_size = 512;
  properties.block_count = reader.Uint("num_blocks");
  if (absl::Status s = reader.Finish(); !s.ok()) {
    return rpc::ReplyError(responder, "bdev_zero_create", s);
  }
  // RegisterBdev checks the name and the block count, and says what is wrong.
  absl::StatusOr<Bdev*> bdev =
      pollux::RegisterBdev(std::make_unique<ZeroBdev>(std::move(properties)));
  if (!bdev.ok()) return rpc::ReplyError(responder, "bdev_zero_create", bdev.status());
  responder.Result((*bdev)->name());
}
POLLUX_RPC_METHOD(
    rpc::MethodSpec("bdev_zero_create", "bdev_zero",
                    "Creates a zero bdev of 512-byte blocks: reads return zeros, writes are "
                    "dropped. Answers the bdev's name.",
                    {rpc::Required("name", rpc::ParamType::kString, "name of the new bdev"),
                     rpc::Required("num_blocks", rpc::ParamType::kUnsigned,
                                   "size in 512-byte blocks")}),
    BdevZeroCreate);

}  // namespace zero
