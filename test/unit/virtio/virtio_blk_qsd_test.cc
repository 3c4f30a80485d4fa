// The vhost-user initiator against qemu-storage-daemon (split rings; QEMU's libvhost-user has
// no packed rings): data through 1 and 2 queues at 512 B to 128 KiB, discard and write-zeroes
// read back, RPC and config, a lost back-end, and bad parameters.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/io_memory.h"
#include "qsd_process.h"

namespace pollux::testing {
namespace {

constexpr uint64_t kImageBytes = 64ull << 20;
constexpr uint32_t kBlock = 512;

class VirtioBlkQsdTest : public BdevTest {
 protected:
  void SetUp() override {
    BdevTest::SetUp();
    if (HasFatalFailure()) return;
    char dir[] = "/dev/shm/pollux-virtio-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    image_ = dir_ + "/disk.img";
    socket_ = dir_ + "/vhost.sock";
    ASSERT_EQ(truncate(image_.c_str(), 0), -1);  // not there yet
    FILE* f = fopen(image_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
    ASSERT_EQ(truncate(image_.c_str(), kImageBytes), 0);
  }
  void TearDown() override {
    BdevTest::TearDown();
    qsd_.reset();
    if (!dir_.empty()) {
      unlink(image_.c_str());
      unlink(socket_.c_str());
      rmdir(dir_.c_str());
    }
  }

  void StartQsd(int queues) {
    qsd_ = std::make_unique<QsdProcess>(socket_, image_, queues);
    ASSERT_TRUE(qsd_->ready()) << qsd_->error();
  }

  absl::StatusOr<rpc::Json> Attach(uint32_t vq_count, uint32_t vq_size = 128,
                                   const std::string& name = "VirtioBlk0") {
    return CallRpc("bdev_virtio_attach_controller", {{"name", name},
                                                     {"trtype", "user"},
                                                     {"traddr", socket_},
                                                     {"dev_type", "blk"},
                                                     {"vq_count", vq_count},
                                                     {"vq_size", vq_size}});
  }

  // The image file's bytes (what qemu-storage-daemon wrote).
  std::vector<uint8_t> ReadImage(uint64_t offset, size_t len) {
    std::vector<uint8_t> data(len);
    FILE* f = fopen(image_.c_str(), "r");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return data;
    fseek(f, static_cast<long>(offset), SEEK_SET);
    EXPECT_EQ(fread(data.data(), 1, len, f), len);
    fclose(f);
    return data;
  }

  rpc::Json QueueCounters(const std::string& name = "VirtioBlk0") {
    absl::StatusOr<rpc::Json> info = CallRpc("bdev_virtio_get_controllers", {{"name", name}});
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? (*info)[0]["virtio"]["queues"] : rpc::Json();
  }

  std::string dir_, image_, socket_;
  std::unique_ptr<QsdProcess> qsd_;
};

std::vector<uint8_t> Pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> data(len);
  std::mt19937 rng(seed);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  return data;
}

TEST_F(VirtioBlkQsdTest, DataRoundTripsAtEverySize) {
  StartQsd(1);
  absl::StatusOr<rpc::Json> names = Attach(1);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, rpc::Json::array({"VirtioBlk0"}));
  Bdev* bdev = FindBdev("VirtioBlk0");
  ASSERT_NE(bdev, nullptr);
  EXPECT_EQ(bdev->block_size(), kBlock);
  EXPECT_EQ(bdev->size_bytes(), kImageBytes);
  EXPECT_TRUE(bdev->requires_shared_memory());

  IoClient client(app_thread(), "VirtioBlk0");
  ASSERT_TRUE(client.ok());
  absl::StatusOr<IoMemory> shared = IoMemory::AllocateShared(256 << 10, "test");
  ASSERT_TRUE(shared.ok()) << shared.status();
  std::mt19937_64 rng(7);
  uint64_t offset = 0;
  uint32_t seed = 1;
  for (size_t size : {512u, 4096u, 8192u, 65536u, 131072u}) {
    for (bool use_shared : {true, false}) {
      SCOPED_TRACE(::testing::Message() << size << " bytes, " << (use_shared ? "shared" : "private"));
      std::vector<uint8_t> data = Pattern(size, seed++);
      std::vector<uint8_t> private_buffer(size);
      uint8_t* buffer = use_shared ? shared->data() : private_buffer.data();
      std::memcpy(buffer, data.data(), size);
      // Private memory goes through the layer's bounce buffer; shared memory straight to the
      // back-end, in up to 8 pieces.
      std::vector<iovec> iovs = RandomIovecs(buffer, size, 8, kBlock, rng);
      ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), offset / kBlock,
                              size / kBlock),
                BdevIoStatus::kSuccess);
      EXPECT_EQ(ReadImage(offset, size), data);
      std::memset(buffer, 0, size);
      ASSERT_EQ(client.Read(buffer, offset / kBlock, size / kBlock), BdevIoStatus::kSuccess);
      EXPECT_EQ(std::memcmp(buffer, data.data(), size), 0);
      offset += size + kBlock;
    }
  }
  rpc::Json queues = QueueCounters();
  EXPECT_GE(queues[0]["requests"].get<uint64_t>(), 20u);
  EXPECT_EQ(queues[0]["requests"], queues[0]["completions"]);
}

TEST_F(VirtioBlkQsdTest, DiscardAndWriteZeroesReadBack) {
  StartQsd(1);
  ASSERT_TRUE(Attach(1).ok());
  Bdev* bdev = FindBdev("VirtioBlk0");
  ASSERT_NE(bdev, nullptr);
  ASSERT_TRUE(bdev->Supports(IoType::kUnmap));
  ASSERT_TRUE(bdev->Supports(IoType::kWriteZeroes));
  IoClient client(app_thread(), "VirtioBlk0");
  ASSERT_TRUE(client.ok());
  // 40 MiB of data, then zero an odd range inside it (larger than qemu-storage-daemon's
  // 16 MiB per request, so the initiator cuts it) and discard another.
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> ones(kChunk, 0x5a);
  for (uint64_t mib = 0; mib < 40; ++mib) {
    ASSERT_EQ(client.Write(ones.data(), mib * kChunk / kBlock, kChunk / kBlock),
              BdevIoStatus::kSuccess);
  }
  const uint64_t zero_start = 3 * kChunk + 7 * kBlock;
  const uint64_t zero_len = 20 * kChunk + 3 * kBlock;
  ASSERT_EQ(client.WriteZeroes(zero_start / kBlock, zero_len / kBlock), BdevIoStatus::kSuccess);
  std::vector<uint8_t> image = ReadImage(0, 40 * kChunk);
  for (uint64_t i = 0; i < image.size(); i += kBlock) {
    const bool zeroed = i >= zero_start && i < zero_start + zero_len;
    ASSERT_EQ(image[i], zeroed ? 0 : 0x5a) << "block " << i / kBlock;
    ASSERT_EQ(image[i + kBlock - 1], zeroed ? 0 : 0x5a) << "block " << i / kBlock;
  }
  const uint64_t discard_start = 30 * kChunk + kBlock;
  const uint64_t discard_len = 2 * kChunk + 5 * kBlock;
  ASSERT_EQ(client.Unmap(discard_start / kBlock, discard_len / kBlock), BdevIoStatus::kSuccess);
  // Discarded blocks of a file read as zeroes (punched); the blocks around them keep data.
  std::vector<uint8_t> after(discard_len + 2 * kBlock);
  ASSERT_EQ(client.Read(after.data(), discard_start / kBlock - 1, after.size() / kBlock),
            BdevIoStatus::kSuccess);
  EXPECT_EQ(after.front(), 0x5a);
  EXPECT_EQ(after.back(), 0x5a);
  EXPECT_EQ(client.Flush(0, bdev->block_count()), BdevIoStatus::kSuccess);
}

TEST_F(VirtioBlkQsdTest, TwoQueuesOnTwoThreadsAndAThirdThreadFails) {
  StartQsd(2);
  ASSERT_TRUE(Attach(2).ok());
  Thread* second = CreateThread("second", 1);
  Thread* third = CreateThread("third", 1);
  {
    IoClient a(app_thread(), "VirtioBlk0");
    IoClient b(second, "VirtioBlk0");
    ASSERT_TRUE(a.ok() && b.ok());
    std::vector<uint8_t> data = Pattern(4096, 3);
    ASSERT_EQ(a.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);
    std::vector<uint8_t> back(4096);
    ASSERT_EQ(b.Read(back.data(), 0, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(back, data);
    rpc::Json queues = QueueCounters();
    ASSERT_EQ(queues.size(), 2u);
    EXPECT_GE(queues[0]["requests"].get<uint64_t>(), 1u);
    EXPECT_GE(queues[1]["requests"].get<uint64_t>(), 1u);
    // Both queues are held: a third thread's I/O fails clearly instead of sharing a ring.
    IoClient c(third, "VirtioBlk0");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.Read(back.data(), 0, 8), BdevIoStatus::kFailed);
    EXPECT_EQ(c.last_error_number(), EBUSY);
  }
  {
    // Released queues are claimed again.
    IoClient d(third, "VirtioBlk0");
    std::vector<uint8_t> back(4096);
    EXPECT_EQ(d.Read(back.data(), 0, 8), BdevIoStatus::kSuccess);
  }
  ExitThread(second);
  ExitThread(third);
}

TEST_F(VirtioBlkQsdTest, ConfigAndInfo) {
  StartQsd(1);
  ASSERT_TRUE(Attach(1, 64).ok());
  absl::StatusOr<rpc::Json> config = CallRpc("save_config", rpc::Json::object());
  if (!config.ok()) {
    // save_config lives in the app component; the bdev layer's own writer is what counts.
    rpc::Json calls = rpc::Json::array();
    CallOn(app_thread(), [&] {
      FindBdev("VirtioBlk0")->WriteConfig(calls);
      return 0;
    });
    config = calls;
  }
  std::string text = config->dump();
  EXPECT_NE(text.find("bdev_virtio_attach_controller"), std::string::npos) << text;
  EXPECT_NE(text.find("\"vq_size\":64"), std::string::npos) << text;
  EXPECT_NE(text.find(socket_), std::string::npos) << text;
  absl::StatusOr<rpc::Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "VirtioBlk0"}});
  ASSERT_TRUE(bdevs.ok()) << bdevs.status();
  const rpc::Json& info = (*bdevs)[0]["driver_specific"]["virtio_blk"];
  EXPECT_EQ(info["socket"], socket_);
  EXPECT_EQ(info["packed_ring"], false);
  absl::StatusOr<rpc::Json> all = CallRpc("bdev_virtio_get_controllers", nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  EXPECT_TRUE(CallRpc("bdev_virtio_detach_controller", {{"name", "VirtioBlk0"}}).ok());
  EXPECT_EQ(FindBdev("VirtioBlk0"), nullptr);
  // The socket is free again: attach once more.
  EXPECT_TRUE(Attach(1).ok());
}

TEST_F(VirtioBlkQsdTest, LostBackEndFailsInFlightIoAndHotRemoves) {
  StartQsd(1);
  ASSERT_TRUE(Attach(1).ok());
  {
    IoClient client(app_thread(), "VirtioBlk0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> data(4096, 1);
    ASSERT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);
    qsd_->Kill();
    // The descriptor is told the bdev goes away; its I/O fails from now on.
    EXPECT_TRUE(WaitUntil([&] { return client.remove_events() == 1; }));
    EXPECT_NE(client.Read(data.data(), 0, 8), BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(WaitUntil([&] { return CallOn(app_thread(), [] { return FindBdev("VirtioBlk0"); }) == nullptr; }));
  // A new back-end on the same socket: attach again.
  StartQsd(1);
  absl::StatusOr<rpc::Json> again = Attach(1);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(VirtioBlkQsdTest, BadParametersGetClearErrors) {
  StartQsd(1);
  auto error = [&](rpc::Json params) {
    absl::StatusOr<rpc::Json> r = CallRpc("bdev_virtio_attach_controller", params);
    EXPECT_FALSE(r.ok());
    return std::string(r.status().message());
  };
  rpc::Json base = {{"name", "V"}, {"trtype", "user"}, {"traddr", socket_}, {"dev_type", "blk"}};
  auto with = [&](const char* key, rpc::Json value) {
    rpc::Json p = base;
    p[key] = std::move(value);
    return p;
  };
  EXPECT_NE(error(with("traddr", dir_ + "/missing.sock")).find("No such file"), std::string::npos);
  EXPECT_NE(error(with("trtype", "pci")).find("only \"user\""), std::string::npos);
  EXPECT_NE(error(with("dev_type", "scsi")).find("only \"blk\""), std::string::npos);
  EXPECT_NE(error(with("vq_count", 4)).find("has 1 queue"), std::string::npos);
  EXPECT_NE(error(with("vq_size", 100)).find("power of two"), std::string::npos);
  EXPECT_NE(error(with("vq_count", 0)).find("vq_count 0"), std::string::npos);
  EXPECT_NE(error(with("packed_ring", true)).find("VIRTIO_F_RING_PACKED"), std::string::npos);
  EXPECT_NE(error(with("bogus", 1)).find("bogus"), std::string::npos);
  // None of those left anything behind; a good attach works and a second one of the same
  // name is refused.
  EXPECT_TRUE(CallRpc("bdev_virtio_attach_controller", base).ok());
  EXPECT_NE(error(base).find("exists already"), std::string::npos);
  absl::StatusOr<rpc::Json> missing = CallRpc("bdev_virtio_detach_controller", {{"name", "nope"}});
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace pollux::testing
