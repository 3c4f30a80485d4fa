// The conformance suite of the file engines: every test runs once per engine (kEngines), through
// the engine's own RPC methods (bdev_<engine>_create / _delete) and the bdev layer, so that all
// engines behave the same: data integrity with random offsets, sizes and iovec splits against a
// reference copy, on both submission paths (a lone request runs inline, overlapping ones go to
// the engine's kernel context); flush; unmap and write-zeroes semantics; errors carried with
// their errno (a full filesystem, a file truncated under the bdev, the error module);
// every bad input of the create methods; save_config; interrupt mode end to end. Then
// `bdev_file_create` with engine auto.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "file_test_util.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev_file/file_engine.h"

namespace pollux::testing {
namespace {

// The engines every test of this file runs on. To add an engine, add its name here (helpers
// H2: "aio", H3: "threadpool"): one line, nothing else to change.
const std::vector<std::string> kEngines = {"uring", "aio", "threadpool"};

using rpc::Json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

class FileEngineTest : public BdevTest, public ::testing::WithParamInterface<std::string> {
 protected:
  const std::string& engine() const { return GetParam(); }
  std::string Method(const char* verb) const { return "bdev_" + engine() + "_" + verb; }

  absl::StatusOr<Json> Create(const Json& params) { return CallRpc(Method("create"), params); }
  absl::StatusOr<Json> DeleteFileBdev(const std::string& name) {
    return CallRpc(Method("delete"), {{"name", name}});
  }
  // Creates bdev `name` over `path` and asserts it worked.
  void CreateOk(const std::string& name, const std::string& path, Json extra = Json::object()) {
    Json params = {{"name", name}, {"filename", path}};
    params.update(extra);
    absl::StatusOr<Json> result = Create(params);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(*result, name);
  }
  // The error message of a create that must fail.
  std::string CreateError(const Json& params) {
    absl::StatusOr<Json> result = Create(params);
    EXPECT_FALSE(result.ok()) << "created: " << params.dump();
    return result.ok() ? "" : std::string(result.status().message());
  }
  Json BdevInfo(const std::string& name) {
    absl::StatusOr<Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", name}});
    EXPECT_TRUE(bdevs.ok()) << bdevs.status();
    return bdevs.ok() && !bdevs->empty() ? (*bdevs)[0] : Json();
  }
  std::optional<BdevProperties> Properties(const std::string& name) {
    return CallOn(app_thread(), [&]() -> std::optional<BdevProperties> {
      Bdev* bdev = FindBdev(name);
      if (bdev == nullptr) return std::nullopt;
      return bdev->properties();
    });
  }
  bool Supports(const std::string& name, IoType type) {
    return CallOn(app_thread(), [&] { return FindBdev(name)->Supports(type); });
  }

  TempDir dir_;
};

std::string EngineName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// ---- Data integrity ----

struct Range {
  uint64_t offset;
  uint64_t num;
};

bool Overlaps(const std::vector<Range>& taken, uint64_t offset, uint64_t num) {
  for (const Range& r : taken) {
    if (offset < r.offset + r.num && r.offset < offset + num) return true;
  }
  return false;
}

// Batches of 1 to 16 requests (reads, writes, write-zeroes, unmaps) on disjoint random ranges,
// with random iovec cuts (block-aligned ones reach the kernel as they are, byte-aligned ones
// are bounced by the layer), checked against a reference copy after every batch and whole at
// the end, through the bdev and through the file itself.
TEST_P(FileEngineTest, RandomBatchesMatchAReferenceCopy) {
  constexpr uint32_t kBs = 512;
  constexpr uint64_t kFileSize = 8 * kMiB;
  constexpr uint64_t kBlocks = kFileSize / kBs;
  constexpr uint64_t kMaxBlocks = 128 * kKiB / kBs;
  std::string path = dir_.File("disk.img");
  std::vector<uint8_t> shadow = MakeFile(path, kFileSize, 0x5eed);
  CreateOk("F0", path);
  bool unmap = Supports("F0", IoType::kUnmap);
  bool write_zeroes = Supports("F0", IoType::kWriteZeroes);
  std::mt19937_64 rng(0xf11e);
  {
    IoClient client(app_thread(), "F0");
    ASSERT_TRUE(client.ok());
    std::vector<AlignedBuffer> buffers;
    for (int i = 0; i < 16; ++i) buffers.emplace_back(kMaxBlocks * kBs);
    for (int round = 0; round < 60; ++round) {
      SCOPED_TRACE(round);
      int count = round % 4 == 0 ? 1 : std::uniform_int_distribution<int>(2, 16)(rng);
      std::vector<BatchOp> ops;
      std::vector<Range> taken;
      while (static_cast<int>(ops.size()) < count) {
        uint64_t num = std::uniform_int_distribution<uint64_t>(1, kMaxBlocks)(rng);
        uint64_t offset = std::uniform_int_distribution<uint64_t>(0, kBlocks - num)(rng);
        if (Overlaps(taken, offset, num)) continue;
        taken.push_back({offset, num});
        BatchOp op;
        op.offset_blocks = offset;
        op.num_blocks = num;
        int kind = std::uniform_int_distribution<int>(0, 9)(rng);
        uint8_t* buf = buffers[ops.size()].data();
        size_t bytes = num * kBs;
        size_t granularity = rng() % 2 == 0 ? kBs : 1;
        if (kind < 4) {
          op.type = IoType::kWrite;
          for (size_t b = 0; b < bytes; ++b) buf[b] = static_cast<uint8_t>(rng());
          op.iovs = RandomIovecs(buf, bytes, 8, granularity, rng);
        } else if (kind < 8 || (kind == 8 && !write_zeroes) || (kind == 9 && !unmap)) {
          op.type = IoType::kRead;
          std::memset(buf, 0xa5, bytes);
          op.iovs = RandomIovecs(buf, bytes, 8, granularity, rng);
        } else {
          op.type = kind == 8 ? IoType::kWriteZeroes : IoType::kUnmap;
        }
        ops.push_back(std::move(op));
      }
      ASSERT_TRUE(RunBatch(client, ops)) << "a batch of " << count << " did not complete";
      for (size_t i = 0; i < ops.size(); ++i) {
        const BatchOp& op = ops[i];
        ASSERT_EQ(op.status, BdevIoStatus::kSuccess)
            << IoTypeName(op.type) << " of " << op.num_blocks << " at " << op.offset_blocks
            << ": errno " << op.error_number;
        uint8_t* disk = shadow.data() + op.offset_blocks * kBs;
        size_t bytes = op.num_blocks * kBs;
        if (op.type == IoType::kRead) {
          ASSERT_EQ(std::memcmp(buffers[i].data(), disk, bytes), 0)
              << "read of " << op.num_blocks << " blocks at " << op.offset_blocks << " in "
              << op.iovs.size() << " iovecs";
        } else if (op.type == IoType::kWrite) {
          std::memcpy(disk, buffers[i].data(), bytes);
        } else {
          std::memset(disk, 0, bytes);  // unmap punches a hole: reads as zeroes
        }
      }
    }
    AlignedBuffer whole(kFileSize);
    ASSERT_EQ(client.Read(whole.data(), 0, kBlocks), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(whole.data(), shadow.data(), kFileSize), 0);
    EXPECT_EQ(client.Flush(0, kBlocks), BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(ReadWholeFile(path) == shadow) << "the file differs from the reference copy";
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// The same, with 4 KiB blocks and the I/O from a second reactor's thread.
TEST_P(FileEngineTest, FourKiBBlocksFromAnotherReactor) {
  constexpr uint32_t kBs = 4096;
  constexpr uint64_t kFileSize = 4 * kMiB;
  std::string path = dir_.File("disk4k.img");
  std::vector<uint8_t> shadow = MakeFile(path, kFileSize, 0x4444);
  CreateOk("F4", path, {{"block_size", kBs}});
  EXPECT_EQ(Properties("F4")->block_size, kBs);
  Thread* io_thread = CreateThread("io", 1);
  std::mt19937_64 rng(4);
  {
    IoClient client(io_thread, "F4");
    ASSERT_TRUE(client.ok());
    std::vector<AlignedBuffer> buffers;
    for (int i = 0; i < 32; ++i) buffers.emplace_back(64 * kKiB);
    for (int round = 0; round < 10; ++round) {
      // 32 writes of 16 blocks, then 32 reads of them, each batch overlapping.
      std::vector<BatchOp> writes(32), reads(32);
      uint64_t base = (round % 2) * 512;
      for (int i = 0; i < 32; ++i) {
        uint8_t* buf = buffers[i].data();
        for (size_t b = 0; b < 64 * kKiB; ++b) buf[b] = static_cast<uint8_t>(rng());
        writes[i] = {IoType::kWrite, base + i * 16, 16, RandomIovecs(buf, 64 * kKiB, 4, kBs, rng)};
        std::memcpy(shadow.data() + (base + i * 16) * kBs, buf, 64 * kKiB);
      }
      ASSERT_TRUE(RunBatch(client, writes));
      for (const BatchOp& op : writes) ASSERT_EQ(op.status, BdevIoStatus::kSuccess);
      for (int i = 0; i < 32; ++i) {
        std::memset(buffers[i].data(), 0, 64 * kKiB);
        reads[i] = {IoType::kRead, base + i * 16, 16, {{buffers[i].data(), 64 * kKiB}}};
      }
      ASSERT_TRUE(RunBatch(client, reads));
      for (int i = 0; i < 32; ++i) {
        ASSERT_EQ(reads[i].status, BdevIoStatus::kSuccess);
        ASSERT_EQ(std::memcmp(buffers[i].data(), shadow.data() + (base + i * 16) * kBs, 64 * kKiB),
                  0);
      }
    }
  }
  ExitThread(io_thread);
  EXPECT_TRUE(ReadWholeFile(path) == shadow);
  EXPECT_TRUE(DeleteFileBdev("F4").ok());
}

// Reads without a buffer (BdevDesc::ReadWithoutBuffer): the engine does nothing for them, the
// layer lends each a buffer before its Submit; a lone read (inline) and a batch of 16
// overlapping ones (the engine's kernel context) see the file's bytes.
TEST_P(FileEngineTest, ReadsWithoutBufferSeeTheFile) {
  std::string path = dir_.File("lent.img");
  std::vector<uint8_t> data = MakeFile(path, 4 * kMiB, 21);
  CreateOk("F0", path);
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "F0");
    ASSERT_TRUE(client.ok());
    struct Lent {
      std::atomic<bool> done{false};
      BdevIoStatus status = BdevIoStatus::kFailed;
      std::vector<uint8_t> bytes;
      static void Callback(void* arg, BdevIoStatus status, int, const iovec* iovs, int iovcnt) {
        auto* lent = static_cast<Lent*>(arg);
        lent->status = status;
        for (int i = 0; i < iovcnt; ++i) {
          const auto* p = static_cast<const uint8_t*>(iovs[i].iov_base);
          lent->bytes.insert(lent->bytes.end(), p, p + iovs[i].iov_len);
        }
        lent->done.store(true, std::memory_order_release);
      }
    };
    for (int batch : {1, 16}) {
      std::vector<Lent> reads(batch);
      RunOn(io_thread, [&] {
        for (int i = 0; i < batch; ++i) {
          // 4 KiB and 64 KiB reads at odd offsets: both pools.
          uint64_t blocks = i % 2 == 0 ? 8 : 128;
          client.desc().ReadWithoutBuffer(client.channel(), 1 + i * 200, blocks, &Lent::Callback,
                                          &reads[i]);
        }
      });
      for (int i = 0; i < batch; ++i) {
        ASSERT_TRUE(WaitUntil([&] { return reads[i].done.load(std::memory_order_acquire); }));
        ASSERT_EQ(reads[i].status, BdevIoStatus::kSuccess) << batch << " " << i;
        uint64_t offset = (1 + i * 200) * 512;
        EXPECT_TRUE(std::equal(reads[i].bytes.begin(), reads[i].bytes.end(), data.begin() + offset))
            << batch << " " << i;
        EXPECT_EQ(reads[i].bytes.size(), (i % 2 == 0 ? 8u : 128u) * 512);
      }
    }
  }
  ExitThread(io_thread);
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// ---- Flush, unmap, write zeroes ----

TEST_P(FileEngineTest, FlushReachesTheEngineAndSucceeds) {
  std::string path = dir_.File("flush.img");
  MakeFile(path, 1 * kMiB, 7);
  CreateOk("F0", path);
  EXPECT_TRUE(Properties("F0")->write_cache) << "FLUSH would be a no-op in the layer";
  {
    IoClient client(app_thread(), "F0");
    AlignedBuffer buf(4096);
    std::memset(buf.data(), 0x33, 4096);
    ASSERT_EQ(client.Write(buf.data(), 8, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Flush(0, 2048), BdevIoStatus::kSuccess);  // inline
    std::vector<BatchOp> ops(4);
    for (BatchOp& op : ops) op = {IoType::kFlush, 0, 2048, {}};
    ASSERT_TRUE(RunBatch(client, ops));  // overlapping: the engine's asynchronous flush
    for (const BatchOp& op : ops) EXPECT_EQ(op.status, BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

TEST_P(FileEngineTest, UnmapAndWriteZeroesZeroOnlyTheirRange) {
  constexpr uint32_t kBs = 4096;
  std::string path = dir_.File("zero.img");
  std::vector<uint8_t> shadow = MakeFile(path, 1 * kMiB, 9);
  CreateOk("F0", path, {{"block_size", kBs}});
  // ext4 (where the tests run) punches holes and zeroes ranges: both must be on.
  ASSERT_TRUE(Supports("F0", IoType::kUnmap));
  ASSERT_TRUE(Supports("F0", IoType::kWriteZeroes));
  Json info = BdevInfo("F0")["driver_specific"][engine()];
  EXPECT_EQ(info["unmap"], true);
  EXPECT_EQ(info["write_zeroes"], true);
  {
    IoClient client(app_thread(), "F0");
    EXPECT_EQ(client.Unmap(4, 3), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.WriteZeroes(20, 5), BdevIoStatus::kSuccess);
    std::fill(shadow.begin() + 4 * kBs, shadow.begin() + 7 * kBs, 0);
    std::fill(shadow.begin() + 20 * kBs, shadow.begin() + 25 * kBs, 0);
    std::vector<BatchOp> ops = {{IoType::kUnmap, 40, 2, {}},
                                {IoType::kWriteZeroes, 50, 1, {}},
                                {IoType::kUnmap, 60, 10, {}},
                                {IoType::kWriteZeroes, 100, 28, {}}};
    ASSERT_TRUE(RunBatch(client, ops));
    for (const BatchOp& op : ops) {
      EXPECT_EQ(op.status, BdevIoStatus::kSuccess) << IoTypeName(op.type);
      std::fill(shadow.begin() + op.offset_blocks * kBs,
                shadow.begin() + (op.offset_blocks + op.num_blocks) * kBs, 0);
    }
    AlignedBuffer whole(1 * kMiB);
    ASSERT_EQ(client.Read(whole.data(), 0, 256), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(whole.data(), shadow.data(), 1 * kMiB), 0);
  }
  EXPECT_EQ(ReadWholeFile(path).size(), 1 * kMiB) << "KEEP_SIZE: the file keeps its size";
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// ---- Errors on the data path ----

// A file truncated while the bdev has it open: I/O past the new end fails with EIO (inline
// and asynchronous), I/O before it still works.
TEST_P(FileEngineTest, ReadPastATruncatedEndFails) {
  std::string path = dir_.File("shrink.img");
  std::vector<uint8_t> data = MakeFile(path, 2 * kMiB, 11);
  CreateOk("F0", path);
  ASSERT_EQ(truncate(path.c_str(), 1 * kMiB), 0);
  {
    IoClient client(app_thread(), "F0");
    AlignedBuffer buf(64 * kKiB);
    EXPECT_EQ(client.Read(buf.data(), 3000, 8), BdevIoStatus::kFailed);
    EXPECT_EQ(client.last_error_number(), EIO);
    std::vector<BatchOp> ops;
    std::vector<AlignedBuffer> bufs;
    for (int i = 0; i < 8; ++i) bufs.emplace_back(4096);
    for (int i = 0; i < 8; ++i) {
      // Even ones past the end, odd ones before it; one straddles the end.
      uint64_t offset = i % 2 == 0 ? 2048 + i * 64 : i * 64;
      if (i == 2) offset = 2048 - 4;
      ops.push_back({IoType::kRead, offset, 8, {{bufs[i].data(), 4096}}});
    }
    ASSERT_TRUE(RunBatch(client, ops));
    for (int i = 0; i < 8; ++i) {
      if (i % 2 == 0) {
        EXPECT_EQ(ops[i].status, BdevIoStatus::kFailed) << i;
        EXPECT_EQ(ops[i].error_number, EIO) << i;
      } else {
        EXPECT_EQ(ops[i].status, BdevIoStatus::kSuccess) << i;
        EXPECT_EQ(std::memcmp(bufs[i].data(), data.data() + ops[i].offset_blocks * 512, 4096), 0);
      }
    }
  }
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// A tiny filesystem: a 1 MiB tmpfs mounted in a child's private mount namespace, reached
// through /proc/<child>/root (the test process has threads, so it cannot unshare itself).
// Needs CAP_SYS_ADMIN; ok() says whether it worked.
class TinyFilesystem {
 public:
  TinyFilesystem(const std::string& dir) {
    int ready[2], done[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(done, O_CLOEXEC) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
      // The child: async-signal-safe calls only (the parent has threads). It closes its
      // copies of the parent's pipe ends, so that the parent closing `done` ends its read.
      close(ready[0]);
      close(done[1]);
      char ok = 0;
      if (unshare(CLONE_NEWNS) == 0 &&
          mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
          mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m") == 0) {
        ok = 1;
      }
      (void)!write(ready[1], &ok, 1);
      char byte;
      (void)!read(done[0], &byte, 1);  // until the parent closes its end
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    done_fd_ = done[1];
    pid_ = pid;
    char ok = 0;
    if (pid > 0 && read(ready[0], &ok, 1) == 1 && ok == 1) {
      root_ = "/proc/" + std::to_string(pid) + "/root" + dir;
    }
    close(ready[0]);
  }
  ~TinyFilesystem() {
    if (done_fd_ >= 0) close(done_fd_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return !root_.empty(); }
  // The mount's directory as this process reaches it.
  const std::string& root() const { return root_; }

 private:
  pid_t pid_ = -1;
  int done_fd_ = -1;
  std::string root_;
};

// Writes into a full filesystem fail with ENOSPC carried to the caller (inline and
// asynchronous); the bdev and the other I/O carry on. Without the rights to mount, a file
// size limit (RLIMIT_FSIZE) makes the same point with EFBIG.
// bdev_<engine>_rescan: a grown file gives the bdev its new size, reads past the old end then
// see the file, and an open descriptor hears of it; a shrink under an open descriptor and bad
// names are refused.
TEST_P(FileEngineTest, RescanGivesTheBdevTheFilesNewSize) {
  std::string path = dir_.File("grow.img");
  MakeFile(path, 1 * kMiB, 5);
  CreateOk("F0", path);
  std::atomic<int> resizes{0};
  auto desc = CallOn(app_thread(), [&] {
    return BdevDesc::Open("F0", /*writable=*/false, [&](BdevEvent event, Bdev&) {
      if (event == BdevEvent::kResize) resizes.fetch_add(1);
    });
  });
  ASSERT_TRUE(desc.ok()) << desc.status();
  const uint64_t blocks = BdevInfo("F0")["num_blocks"];
  std::vector<uint8_t> tail = MakeFile(dir_.File("tail"), 1 * kMiB, 6);
  {
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, tail.data(), tail.size()), static_cast<ssize_t>(tail.size()));
    close(fd);
  }
  EXPECT_EQ(BdevInfo("F0")["num_blocks"], blocks) << "not before the rescan";
  absl::StatusOr<Json> rescan = CallRpc(Method("rescan"), {{"name", "F0"}});
  ASSERT_TRUE(rescan.ok()) << rescan.status();
  EXPECT_EQ(*rescan, true);
  EXPECT_EQ(BdevInfo("F0")["num_blocks"], 2 * blocks);
  ASSERT_TRUE(WaitUntil([&] { return resizes.load() == 1; }));
  {
    IoClient client(app_thread(), "F0");
    AlignedBuffer buf(4096);
    ASSERT_EQ(client.Read(buf.data(), blocks, 4096 / 512), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(buf.data(), tail.data(), 4096), 0);
  }
  // The same size again changes nothing; a shrink is refused while the descriptor is open.
  ASSERT_TRUE(CallRpc(Method("rescan"), {{"name", "F0"}}).ok());
  EXPECT_EQ(resizes.load(), 1);
  ASSERT_EQ(truncate(path.c_str(), 1 * kMiB), 0);
  absl::StatusOr<Json> shrink = CallRpc(Method("rescan"), {{"name", "F0"}});
  ASSERT_FALSE(shrink.ok());
  EXPECT_THAT(std::string(shrink.status().message()), HasSubstr(Method("rescan")));
  EXPECT_EQ(BdevInfo("F0")["num_blocks"], 2 * blocks);
  RunOn(app_thread(), [&] { desc->reset(); });
  // With nobody holding it open, the shrink goes through.
  ASSERT_TRUE(CallRpc(Method("rescan"), {{"name", "F0"}}).ok());
  EXPECT_EQ(BdevInfo("F0")["num_blocks"], blocks);
  absl::StatusOr<Json> missing = CallRpc(Method("rescan"), {{"name", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), Method("rescan") + ": no bdev \"nope\"");
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "N0"}, {"num_blocks", 8}, {"block_size", 512}}).ok());
  absl::StatusOr<Json> other = CallRpc(Method("rescan"), {{"name", "N0"}});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().message(),
            Method("rescan") + ": bdev \"N0\" is not a " + engine() + " bdev");
  EXPECT_TRUE(CallRpc("bdev_file_rescan", {{"name", "F0"}}).ok());
  EXPECT_TRUE(CallRpc("bdev_null_delete", {{"name", "N0"}}).ok());
}

TEST_P(FileEngineTest, FullFilesystemFailsWritesWithTheirErrno) {
  std::string mount_dir = dir_.File("tiny");
  ASSERT_EQ(mkdir(mount_dir.c_str(), 0755), 0);
  TinyFilesystem tiny(mount_dir);
  std::string path;
  int expected_errno = ENOSPC;
  rlimit old_limit{};
  if (tiny.ok()) {
    path = tiny.root() + "/disk.img";
  } else {
    // The limit applies to the whole process: the reactors' writes meet it.
    path = dir_.File("limited.img");
    expected_errno = EFBIG;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_limit);
    rlimit limit = old_limit;
    limit.rlim_cur = 1 * kMiB;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  RecordProperty("filesystem", tiny.ok() ? "tmpfs size=1m" : "RLIMIT_FSIZE 1 MiB");
  MakeFile(path, 4 * kMiB, 0);  // sparse: larger than the room behind it
  CreateOk("F0", path);
  {
    IoClient client(app_thread(), "F0");
    AlignedBuffer buf(256 * kKiB);
    std::memset(buf.data(), 0x77, buf.size());
    if (!tiny.ok()) {
      // With a size limit, writes past it fail wherever they are.
      EXPECT_EQ(client.Write(buf.data(), 6144, 512), BdevIoStatus::kFailed);
      EXPECT_EQ(client.last_error_number(), expected_errno);
    }
    // Fill the filesystem block by block from the start: some write must fail.
    int failures = 0;
    for (uint64_t offset = 0; offset < 8192 && failures == 0; offset += 512) {
      BdevIoStatus status = client.Write(buf.data(), offset, 512);
      if (status != BdevIoStatus::kSuccess) {
        EXPECT_EQ(status, BdevIoStatus::kFailed);
        EXPECT_EQ(client.last_error_number(), expected_errno);
        ++failures;
      }
    }
    EXPECT_EQ(failures, 1) << "the filesystem never filled up";
    // Overlapping writes into the rest: each fails alone, with the errno.
    std::vector<BatchOp> ops;
    for (int i = 0; i < 4; ++i) {
      ops.push_back(
          {IoType::kWrite, 6144 + static_cast<uint64_t>(i) * 512, 512, {{buf.data(), buf.size()}}});
    }
    ASSERT_TRUE(RunBatch(client, ops));
    for (const BatchOp& op : ops) {
      EXPECT_EQ(op.status, BdevIoStatus::kFailed);
      EXPECT_EQ(op.error_number, expected_errno);
    }
    // The bdev still reads.
    EXPECT_EQ(client.Read(buf.data(), 0, 512), BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
  if (!tiny.ok()) setrlimit(RLIMIT_FSIZE, &old_limit);
}

// The error module over a file bdev: an injected failure fails that I/O only.
TEST_P(FileEngineTest, ErrorModuleFailuresStayWithTheirIo) {
  std::string path = dir_.File("err.img");
  std::vector<uint8_t> data = MakeFile(path, 1 * kMiB, 13);
  CreateOk("F0", path);
  ASSERT_TRUE(CallRpc("bdev_error_create", {{"base_name", "F0"}}).ok());
  ASSERT_TRUE(
      CallRpc("bdev_error_inject_error",
              {{"name", "EE_F0"}, {"io_type", "read"}, {"error_type", "failure"}, {"num", 1}})
          .ok());
  {
    IoClient client(app_thread(), "EE_F0");
    AlignedBuffer buf(4096);
    EXPECT_EQ(client.Read(buf.data(), 0, 8), BdevIoStatus::kFailed);
    EXPECT_EQ(client.Read(buf.data(), 0, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(buf.data(), data.data(), 4096), 0);
  }
  EXPECT_TRUE(CallRpc("bdev_error_delete", {{"name", "EE_F0"}}).ok());
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// ---- Properties, readonly, config ----

TEST_P(FileEngineTest, PropertiesInfoAndSaveConfig) {
  std::string path = dir_.File("props.img");
  MakeFile(path, 1 * kMiB + 100, 0);  // not a multiple of the block size: rounded down
  CreateOk("F0", path, {{"uuid", "12345678-1234-1234-1234-123456789abc"}});
  std::optional<BdevProperties> p = Properties("F0");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->block_size, 512u);
  EXPECT_EQ(p->block_count, 2048u);
  EXPECT_TRUE(p->write_cache);
  EXPECT_GE(p->required_alignment, 512u) << "O_DIRECT buffers";
  Json info = BdevInfo("F0");
  Json specific = info["driver_specific"][engine()];
  EXPECT_EQ(specific["filename"], path);
  EXPECT_EQ(specific["block_size"], 512);
  EXPECT_EQ(specific["readonly"], false);
  EXPECT_EQ(specific["direct"], true);
  EXPECT_EQ(specific["engine"], engine());

  Json config = CallOn(app_thread(), [] {
    Json config = Json::array();
    FindBdev("F0")->WriteConfig(config);
    return config;
  });
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0]["method"], Method("create"));
  EXPECT_EQ(config[0]["params"]["filename"], path);
  EXPECT_EQ(config[0]["params"]["uuid"], "12345678-1234-1234-1234-123456789abc");
  ASSERT_TRUE(DeleteFileBdev("F0").ok());
  absl::StatusOr<Json> replay = CallRpc(config[0]["method"], config[0]["params"]);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(Properties("F0")->block_count, 2048u);
  EXPECT_EQ(Properties("F0")->uuid, "12345678-1234-1234-1234-123456789abc");
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
  EXPECT_FALSE(DeleteFileBdev("F0").ok()) << "deleted twice";
}

TEST_P(FileEngineTest, ReadonlyTakesReadsOnly) {
  std::string path = dir_.File("ro.img");
  std::vector<uint8_t> data = MakeFile(path, 64 * kKiB, 17);
  ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  CreateOk("F0", path, {{"readonly", true}});
  EXPECT_FALSE(Supports("F0", IoType::kUnmap));
  EXPECT_FALSE(Supports("F0", IoType::kWriteZeroes));
  {
    IoClient client(app_thread(), "F0", /*writable=*/false);
    AlignedBuffer buf(4096);
    EXPECT_EQ(client.Read(buf.data(), 8, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(buf.data(), data.data() + 4096, 4096), 0);
  }
  {
    IoClient client(app_thread(), "F0", /*writable=*/true);
    AlignedBuffer buf(4096);
    EXPECT_NE(client.Write(buf.data(), 0, 8), BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(ReadWholeFile(path) == data);
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

// ---- Bad input ----

TEST_P(FileEngineTest, BadInputIsRefusedWithTheFileAndTheReason) {
  const std::string create = Method("create");
  std::string missing = dir_.File("missing.img");
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", missing}}),
            create + ": open \"" + missing + "\": No such file or directory");
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", dir_.path()}}),
            create + ": \"" + dir_.path() + "\": is a directory, not a file or block device");
  std::string tiny = dir_.File("tiny.img");
  MakeFile(tiny, 100, 1);
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", tiny}}),
            create + ": \"" + tiny + "\": 100 bytes is shorter than one block of 512 bytes");
  std::string small = dir_.File("small.img");
  MakeFile(small, 4096, 1);
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", small}, {"block_size", 8192}}),
            create + ": \"" + small + "\": 4096 bytes is shorter than one block of 8192 bytes");
  EXPECT_EQ(
      CreateError({{"name", "F0"}, {"filename", small}, {"block_size", 1000}}),
      create + ": \"" + small + "\": block_size 1000 is not a power of two from 512 to 65536");
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", "/dev/null"}}),
            create + ": \"/dev/null\": not a regular file or block device");
  EXPECT_EQ(CreateError({{"name", ""}, {"filename", small}}),
            create + ": the bdev name must not be empty");
  EXPECT_EQ(CreateError({{"name", "F0"}, {"filename", ""}}),
            create + ": filename must not be empty");
  EXPECT_THAT(CreateError({{"name", "F0"}}), HasSubstr("filename"));
  EXPECT_THAT(CreateError({{"name", "F0"}, {"filename", small}, {"bogus", 1}}), HasSubstr("bogus"));
  CreateOk("F0", small);
  EXPECT_THAT(CreateError({{"name", "F0"}, {"filename", small}}), StartsWith(create + ": "));
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
  EXPECT_EQ(CallOn(app_thread(), [] { return ListBdevs().size(); }), 0u)
      << "a failed create leaked";
}

// No permission: as root, an immutable file (chattr +i) refuses to be opened for writing; as
// another user, a file without write permission does.
TEST_P(FileEngineTest, NoPermissionIsRefused) {
  std::string path = dir_.File("locked.img");
  MakeFile(path, 64 * kKiB, 3);
  bool immutable = false;
  if (geteuid() == 0) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_IMMUTABLE_FL;
      immutable = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    close(fd);
    if (!immutable) GTEST_SKIP() << "root, and the filesystem has no immutable flag";
  } else {
    ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  }
  std::string message = CreateError({{"name", "F0"}, {"filename", path}});
  EXPECT_THAT(message, StartsWith(Method("create") + ": open \"" + path + "\": "));
  EXPECT_THAT(message, ::testing::AnyOf(HasSubstr("Operation not permitted"),
                                        HasSubstr("Permission denied")));
  // Read-only still works.
  CreateOk("F0", path, {{"readonly", true}});
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
  if (immutable) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int flags = 0;
    ioctl(fd, FS_IOC_GETFLAGS, &flags);
    flags &= ~FS_IMMUTABLE_FL;
    ioctl(fd, FS_IOC_SETFLAGS, &flags);
    close(fd);
  }
}

// direct: false is buffered I/O, which takes any buffer (no alignment needed).
TEST_P(FileEngineTest, BufferedWhenDirectIsOff) {
  std::string path = dir_.File("buffered.img");
  std::vector<uint8_t> data = MakeFile(path, 256 * kKiB, 5);
  CreateOk("F0", path, {{"direct", false}});
  EXPECT_EQ(Properties("F0")->required_alignment, 1u);
  EXPECT_EQ(BdevInfo("F0")["driver_specific"][engine()]["direct"], false);
  {
    IoClient client(app_thread(), "F0");
    std::vector<uint8_t> buf(4096 + 1);
    EXPECT_EQ(client.Read(buf.data() + 1, 8, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(buf.data() + 1, data.data() + 4096, 4096), 0);
  }
  Json config = CallOn(app_thread(), [] {
    Json config = Json::array();
    FindBdev("F0")->WriteConfig(config);
    return config;
  });
  EXPECT_EQ(config[0]["params"]["direct"], false) << "an explicit choice is saved";
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, FileEngineTest, ::testing::ValuesIn(kEngines), EngineName);

// ---- Interrupt mode ----

// The reactors sleep when idle (10 us spin window). The I/O thread's reactor has I/O in flight
// on the engine's kernel context and nothing else to do: it must be able to sleep (the engine's
// poller names a wake fd and arms) and be woken by the kernel's completion (the eventfd), or
// these batches would never complete.
class FileEngineInterruptTest : public FileEngineTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

TEST_P(FileEngineInterruptTest, SleepingReactorIsWokenByCompletions) {
  std::string path = dir_.File("irq.img");
  std::vector<uint8_t> data = MakeFile(path, 8 * kMiB, 21);
  CreateOk("F0", path);
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "F0");
    ASSERT_TRUE(client.ok());
    AlignedBuffer first(4096);
    ASSERT_EQ(client.Read(first.data(), 0, 8), BdevIoStatus::kSuccess);  // makes the channel
    EXPECT_THAT(CallOn(io_thread, [&] { return io_thread->PollersHoldingReactorAwake(); }),
                ::testing::IsEmpty())
        << "the engine's poller keeps the reactor awake";
    uint64_t sleeps_before = Info(1).sleeps;
    std::vector<AlignedBuffer> bufs;
    for (int i = 0; i < 8; ++i) bufs.emplace_back(1 * kMiB);
    for (int round = 0; round < 20; ++round) {
      // 1 MiB reads: long enough that the reactor goes to sleep with them in flight.
      std::vector<BatchOp> ops;
      for (int i = 0; i < 8; ++i) {
        ops.push_back(
            {IoType::kRead, static_cast<uint64_t>(i) * 2048, 2048, {{bufs[i].data(), 1 * kMiB}}});
      }
      ASSERT_TRUE(RunBatch(client, ops)) << "round " << round << " never completed";
      for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(ops[i].status, BdevIoStatus::kSuccess);
        ASSERT_EQ(std::memcmp(bufs[i].data(), data.data() + i * kMiB, kMiB), 0);
      }
    }
    EXPECT_GT(Info(1).sleeps, sleeps_before) << "the I/O reactor never slept";
  }
  ExitThread(io_thread);
  EXPECT_TRUE(DeleteFileBdev("F0").ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, FileEngineInterruptTest, ::testing::ValuesIn(kEngines),
                         EngineName);

// ---- bdev_file_create ----

using FileCreateTest = BdevTest;

TEST_F(FileCreateTest, EngineAutoChoosesAWorkingEngine) {
  TempDir dir;
  std::string path = dir.File("auto.img");
  std::vector<uint8_t> data = MakeFile(path, 1 * kMiB, 23);
  absl::StatusOr<Json> result =
      CallRpc("bdev_file_create", {{"name", "A0"}, {"filename", path}, {"engine", "auto"}});
  ASSERT_TRUE(result.ok()) << result.status();
  absl::StatusOr<Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "A0"}});
  ASSERT_TRUE(bdevs.ok());
  Json specific = (*bdevs)[0]["driver_specific"];
  ASSERT_EQ(specific.size(), 1u);
  std::string chosen = specific.begin().key();
  // The first engine by preference whose probe passes.
  std::string expected = CallOn(app_thread(), [] {
    for (const FileEngine* engine : FileEngines()) {
      if (engine->probe().ok()) return std::string(engine->name);
    }
    return std::string();
  });
  EXPECT_EQ(chosen, expected);
  {
    IoClient client(app_thread(), "A0");
    AlignedBuffer buf(4096);
    EXPECT_EQ(client.Read(buf.data(), 16, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(buf.data(), data.data() + 8192, 4096), 0);
  }
  EXPECT_TRUE(CallRpc("bdev_file_delete", {{"name", "A0"}}).ok());

  // Each engine by name, and the default (auto).
  for (const std::string& engine : kEngines) {
    ASSERT_TRUE(
        CallRpc("bdev_file_create", {{"name", "E0"}, {"filename", path}, {"engine", engine}}).ok())
        << engine;
    EXPECT_TRUE(
        CallRpc("bdev_get_bdevs", {{"name", "E0"}}).value()[0]["driver_specific"].contains(engine));
    EXPECT_TRUE(CallRpc("bdev_file_delete", {{"name", "E0"}}).ok());
  }
  ASSERT_TRUE(CallRpc("bdev_file_create", {{"name", "D0"}, {"filename", path}}).ok());
  EXPECT_TRUE(CallRpc("bdev_file_delete", {{"name", "D0"}}).ok());
}

TEST_F(FileCreateTest, UnknownEngineAndNonFileBdevsAreRefused) {
  TempDir dir;
  std::string path = dir.File("x.img");
  MakeFile(path, 64 * kKiB, 0);
  absl::StatusOr<Json> result =
      CallRpc("bdev_file_create", {{"name", "X0"}, {"filename", path}, {"engine", "nope"}});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              StartsWith("bdev_file_create: engine \"nope\" is unknown (known: auto, "));
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "N0"}, {"num_blocks", 8}, {"block_size", 512}}).ok());
  absl::StatusOr<Json> del = CallRpc("bdev_file_delete", {{"name", "N0"}});
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.status().message(), "bdev_file_delete: bdev \"N0\" is not a file bdev");
  EXPECT_TRUE(CallRpc("bdev_null_delete", {{"name", "N0"}}).ok());
}

}  // namespace
}  // namespace pollux::testing
