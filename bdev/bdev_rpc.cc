// RPC methods of the bdev layer (bdev_get_bdevs, bdev_get_iostat, bdev_set_options,
// bdev_wait_for_examine) and the "bdev" subsystem:
// layer start-up and shutdown, and save_config through every module's WriteConfig.
#include <rte_cycles.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/env/log.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::RpcResponder;

Json DescribeBdev(const Bdev& bdev) {
  Json supported = Json::object();
  for (int t = 0; t < kIoTypeCount; ++t) {
    supported[IoTypeName(static_cast<IoType>(t))] = bdev.Supports(static_cast<IoType>(t));
  }
  Json driver_specific = Json::object();
  bdev.DumpInfo(driver_specific);
  const BdevModule* claimer = bdev.claimed_by();
  Json info = {{"name", bdev.name()},
               {"aliases", bdev.aliases()},
               {"product_name", bdev.product_name()},
               {"block_size", bdev.block_size()},
               {"num_blocks", bdev.block_count()},
               {"uuid", bdev.uuid()},
               {"module", bdev.module().name()},
               {"claimed", claimer != nullptr},
               {"open_descriptors", bdev.open_count()},
               {"required_alignment", bdev.required_alignment()},
               {"write_cache", bdev.write_cache()},
               {"optimal_io_boundary", bdev.optimal_io_boundary()},
               {"split_on_optimal_io_boundary", bdev.split_on_optimal_io_boundary()},
               {"max_transfer_blocks", bdev.max_transfer_blocks()},
               {"max_segments", bdev.max_segments()},
               {"supported_io_types", supported},
               {"driver_specific", driver_specific}};
  if (claimer != nullptr) info["claim_module"] = claimer->name();
  return info;
}

void BdevGetBdevs(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::optional<std::string> name = reader.OptionalString("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  Json bdevs = Json::array();
  if (name) {
    Bdev* bdev = FindBdev(*name);
    if (bdev == nullptr) {
      return responder.Error(rpc::kInvalidParams, absl::StrFormat("bdev %s not found", *name));
    }
    bdevs.push_back(DescribeBdev(*bdev));
  } else {
    for (Bdev* bdev : ListBdevs()) bdevs.push_back(DescribeBdev(*bdev));
  }
  responder.Result(std::move(bdevs));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_get_bdevs", "bdev",
               "Describes every bdev, or one: name, size, UUID, module, claims, supported I/O "
               "types and what its module adds (driver_specific).",
               {Optional("name", ParamType::kString, "the bdev to describe (an error if absent)"),
                rpc::SpdkHint("timeout_ms", ParamType::kUnsigned,
                              "SPDK's: how long to wait for the bdev to appear (bdevs here are "
                              "registered as soon as they are created)")}),
    BdevGetBdevs);

// {"p50": us, "p90": .., "p99": .., "p99.9": .., "p99.99": ..}
Json DescribePercentiles(const LatencyHistogram& histogram, uint64_t tsc_hz) {
  Json percentiles = Json::object();
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    uint64_t ticks = histogram.Percentile(p);
    percentiles[absl::StrFormat("p%g", p)] = static_cast<double>(ticks) * 1e6 / tsc_hz;
  }
  return percentiles;
}

// The buckets that hold samples, as [[upper bound in ticks, count], ...] ascending: a client
// subtracts two of these to get the percentiles of the time between them (pollux-top).
Json DescribeBuckets(const LatencyHistogram& histogram) {
  Json buckets = Json::array();
  for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
    if (uint64_t count = histogram.buckets()[i]; count != 0) {
      buckets.push_back(Json::array({LatencyHistogram::BucketUpperBound(i), count}));
    }
  }
  return buckets;
}

Json DescribeStats(const Bdev& bdev, const BdevIoStats& stats, uint64_t tsc_hz, bool with_buckets) {
  Json out = {{"name", bdev.name()}};
  // SPDK's field names for the types it reports, the same pattern for the others.
  struct Names {
    IoType type;
    const char* bytes;
    const char* ops;
    const char* prefix;
  };
  static constexpr Names kNames[] = {
      {IoType::kRead, "bytes_read", "num_read_ops", "read"},
      {IoType::kWrite, "bytes_written", "num_write_ops", "write"},
      {IoType::kUnmap, "bytes_unmapped", "num_unmap_ops", "unmap"},
      {IoType::kWriteZeroes, "bytes_zeroed", "num_write_zeroes_ops", "write_zeroes"},
      {IoType::kFlush, "bytes_flushed", "num_flush_ops", "flush"},
      {IoType::kReset, "bytes_reset", "num_reset_ops", "reset"},
  };
  for (const Names& n : kNames) {
    const IoTypeStats& s = stats.of(n.type);
    if (n.type != IoType::kReset) out[n.bytes] = s.bytes;
    out[n.ops] = s.ops;
    out[absl::StrFormat("%s_latency_ticks", n.prefix)] = s.latency_ticks;
    out[absl::StrFormat("max_%s_latency_ticks", n.prefix)] = s.max_latency_ticks;
    out[absl::StrFormat("min_%s_latency_ticks", n.prefix)] = s.ops != 0 ? s.min_latency_ticks : 0;
  }
  out["num_failed_ops"] = stats.failed_ops;
  out["latency_percentiles_us"] = DescribePercentiles(stats.AllLatencies(), tsc_hz);
  Json buckets = Json::object();
  for (LatencyClass c : {LatencyClass::kRead, LatencyClass::kWrite, LatencyClass::kOther}) {
    out[absl::StrFormat("%s_latency_percentiles_us", LatencyClassName(c))] =
        DescribePercentiles(stats.latency(c), tsc_hz);
    if (with_buckets) buckets[LatencyClassName(c)] = DescribeBuckets(stats.latency(c));
  }
  if (with_buckets) out["latency_buckets"] = std::move(buckets);
  return out;
}

// Collects the statistics of each bdev in turn (each is a walk over its channels).
struct IoStatWalk {
  std::vector<Bdev*> bdevs;
  size_t next = 0;
  Json results = Json::array();
  RpcResponder responder;
  uint64_t tsc_hz = rte_get_tsc_hz();
  bool with_buckets = false;
};

void IoStatStep(std::shared_ptr<IoStatWalk> walk) {
  if (walk->next == walk->bdevs.size()) {
    walk->responder.Result({{"tick_rate", walk->tsc_hz},
                            {"ticks", rte_rdtsc()},
                            {"bdevs", std::move(walk->results)}});
    return;
  }
  Bdev* bdev = walk->bdevs[walk->next++];
  bdev->GetIoStats([walk, bdev](const BdevIoStats& stats) {
    walk->results.push_back(DescribeStats(*bdev, stats, walk->tsc_hz, walk->with_buckets));
    IoStatStep(walk);
  });
}

void BdevGetIostat(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::optional<std::string> name = reader.OptionalString("name");
  std::optional<bool> with_buckets = reader.OptionalBool("latency_buckets");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  auto walk = std::make_shared<IoStatWalk>();
  walk->with_buckets = *with_buckets;
  if (name) {
    Bdev* bdev = FindBdev(*name);
    if (bdev == nullptr) {
      return responder.Error(rpc::kInvalidParams, absl::StrFormat("bdev %s not found", *name));
    }
    walk->bdevs.push_back(bdev);
  } else {
    walk->bdevs = ListBdevs();
  }
  walk->responder = std::move(responder);
  IoStatStep(std::move(walk));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_get_iostat", "bdev",
               "I/O statistics of every bdev, or one, since it was created: operations and bytes "
               "per type, latency percentiles per type (read, write, other) in microseconds.",
               {Optional("name", ParamType::kString, "the bdev (an error if absent)"),
                Optional("latency_buckets", ParamType::kBoolean,
                         "also the latency histograms' buckets, so that a monitor can compute "
                         "percentiles over an interval (pollux-top does)",
                         "false")}),
    BdevGetIostat);

// SPDK's bdev_set_options, with its parameter names, so that SPDK's configs (whose save_config
// writes it first) load here. The data buffer pools of reads without buffer take SPDK's
// per-thread iobuf cache sizes, and their counts under the names SPDK's bdev_set_options had
// before its iobuf library (small_buf_pool_size, large_buf_pool_size).
void BdevSetOptions(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  BdevLayerOptions options = GetBdevLayerOptions();
  std::optional<uint64_t> pool_size = reader.OptionalUint("bdev_io_pool_size");
  std::optional<uint64_t> cache_size = reader.OptionalUint("bdev_io_cache_size");
  std::optional<uint64_t> small_pool = reader.OptionalUint("small_buf_pool_size");
  std::optional<uint64_t> large_pool = reader.OptionalUint("large_buf_pool_size");
  std::optional<uint64_t> small_cache = reader.OptionalUint("iobuf_small_cache_size");
  std::optional<uint64_t> large_cache = reader.OptionalUint("iobuf_large_cache_size");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  for (auto [name, value] : {
           std::pair{"bdev_io_pool_size", pool_size},
           std::pair{"bdev_io_cache_size", cache_size},
           std::pair{"small_buf_pool_size", small_pool},
           std::pair{"large_buf_pool_size", large_pool},
           std::pair{"iobuf_small_cache_size", small_cache},
           std::pair{"iobuf_large_cache_size", large_cache},
       }) {
    if (value && *value > UINT32_MAX) {
      return responder.Error(rpc::kInvalidParams,
                             absl::StrFormat("parameter \"%s\" must be at most %u", name,
                                             UINT32_MAX));
    }
  }
  if (pool_size) options.bdev_io_pool_size = static_cast<uint32_t>(*pool_size);
  if (cache_size) options.bdev_io_cache_size = static_cast<uint32_t>(*cache_size);
  if (small_pool) options.small_buf_pool_size = static_cast<uint32_t>(*small_pool);
  if (large_pool) options.large_buf_pool_size = static_cast<uint32_t>(*large_pool);
  if (small_cache) options.iobuf_small_cache_size = static_cast<uint32_t>(*small_cache);
  if (large_cache) options.iobuf_large_cache_size = static_cast<uint32_t>(*large_cache);
  if (absl::Status s = SetBdevLayerOptions(options); !s.ok()) return responder.Reply(s);
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec(
        "bdev_set_options", "bdev",
        "Sets the bdev layer's pools and per-thread caches; only before the first bdev exists "
        "(a config sets it first). An absent parameter keeps its current value.",
        {Optional("bdev_io_pool_size", ParamType::kUnsigned,
                  "requests (BdevIo) in the layer's pool, shared by all threads"),
         Optional("bdev_io_cache_size", ParamType::kUnsigned,
                  "requests each thread keeps for itself, taken from the pool"),
         rpc::SpdkOnlyAtDefault("bdev_auto_examine", ParamType::kBoolean, "true",
                                "turning automatic examine off (every module examines every new "
                                "bdev)"),
         Optional("small_buf_pool_size", ParamType::kUnsigned,
                  "small data buffers (8 KiB) for reads submitted without a buffer"),
         Optional("large_buf_pool_size", ParamType::kUnsigned,
                  "large data buffers (132 KiB) for reads submitted without a buffer"),
         Optional("iobuf_small_cache_size", ParamType::kUnsigned,
                  "small data buffers each thread keeps for itself"),
         Optional("iobuf_large_cache_size", ParamType::kUnsigned,
                  "large data buffers each thread keeps for itself")}),
    BdevSetOptions);

// Answers once every registered bdev has been examined by every module (some examine by
// reading the disk, asynchronously). SPDK's method, which its save_config writes last in the
// bdev section so that a replay waits for examine before the next subsystem: configs from SPDK
// replay here too. pollux's save_config leaves it out (unchanged output; its modules examine
// without I/O), and a config may add it where it needs the wait.
void BdevWaitForExamine(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  WaitForBdevExamine([responder = std::move(responder)]() mutable { responder.Result(true); });
}
POLLUX_RPC_METHOD(MethodSpec("bdev_wait_for_examine", "bdev",
                             "Answers true once every bdev has been examined by every module "
                             "(SPDK's save_config writes it last in the bdev section).",
                             {}),
                  BdevWaitForExamine);

rpc::Subsystem MakeBdevSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "bdev";
  subsystem.order = 10;  // after "framework"
  // Asynchronous: config replay starts once every module's InitAsync called its done.
  subsystem.init = [](rpc::StatusCallback done) {
    InitBdevLayer(GetBdevLayerOptions(), std::move(done));
  };
  subsystem.fini = [](absl::AnyInvocable<void()> done) { FiniBdevLayer(std::move(done)); };
  subsystem.write_config = [](Json& config) {
    // First: replayed, it replaces the pool, which works only before any bdev exists.
    const BdevLayerOptions& options = GetBdevLayerOptions();
    config.push_back({{"method", "bdev_set_options"},
                      {"params",
                       {{"bdev_io_pool_size", options.bdev_io_pool_size},
                        {"bdev_io_cache_size", options.bdev_io_cache_size},
                        {"small_buf_pool_size", options.small_buf_pool_size},
                        {"large_buf_pool_size", options.large_buf_pool_size},
                        {"iobuf_small_cache_size", options.iobuf_small_cache_size},
                        {"iobuf_large_cache_size", options.iobuf_large_cache_size}}}});
    std::vector<BdevModule*> modules = BdevModules();
    std::stable_sort(modules.begin(), modules.end(), [](BdevModule* a, BdevModule* b) {
      return a->config_order() < b->config_order();
    });
    for (BdevModule* module : modules) module->WriteConfig(config);
  };
  return subsystem;
}
POLLUX_SUBSYSTEM(bdev, MakeBdevSubsystem);

}  // namespace

std::vector<rpc::ParamSpec> SpdkMetadataParams() {
  return {
      rpc::SpdkOnlyAtDefault("md_size", ParamType::kUnsigned, "0",
                             "per-block metadata: its size in bytes"),
      rpc::SpdkOnlyAtDefault("dif_type", ParamType::kInteger, "0",
                             "protection information: its type, 0 for none"),
      rpc::SpdkOnlyAtDefault("dif_is_head_of_md", ParamType::kBoolean, "false",
                             "protection information at the head of the metadata"),
      rpc::SpdkOnlyAtDefault("dif_pi_format", ParamType::kUnsigned, "0",
                             "protection information: its format"),
  };
}

rpc::ParamSpec PhysicalBlockSizeParam() {
  return Optional("physical_block_size", ParamType::kUnsigned,
                  "SPDK's physical block size in bytes: 0 or the block size (pollux's "
                  "physical blocks are its blocks)",
                  "0");
}

absl::Status ReadPhysicalBlockSize(rpc::ParamReader& reader, uint64_t block_size) {
  uint64_t physical_block_size = reader.Uint("physical_block_size");
  if (physical_block_size != 0 && physical_block_size != block_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("physical_block_size %u differs from block_size %u, which is not supported",
                        physical_block_size, block_size));
  }
  return absl::OkStatus();
}

rpc::MethodSpec BdevDeleteSpec(std::string method, std::string component, std::string_view what) {
  return rpc::MethodSpec(std::move(method), std::move(component),
                         absl::StrFormat("Deletes a %s; answers true once it is gone (its open "
                                         "descriptors were told to close).",
                                         what),
                         {rpc::Required("name", ParamType::kString, "the bdev to delete")});
}

void HandleBdevDelete(const rpc::Json& params, rpc::RpcResponder responder, const char* method,
                      BdevDeleteFn delete_fn) {
  rpc::ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return rpc::ReplyError(responder, method, s);
  delete_fn(name, [responder = std::move(responder), method](absl::Status status) mutable {
    if (!status.ok()) return rpc::ReplyError(responder, method, status);
    responder.Result(true);
  });
}

}  // namespace pollux
