// The vhost-user-blk target driven by pollux's own initiator, both in this process: the
// target serves a malloc bdev on a socket, the initiator attaches to that socket as bdev
// VirtioBlk0, and what goes through one is checked on the other (the malloc bdev read
// directly). Split and packed rings, one and two queues on two reactors, flush, discard and
// write-zeroes, the RPC methods and their errors, save_config, and a bdev removed under a
// connected controller.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/io_memory.h"
#include "pollux/rpc/subsystem.h"
#include "pollux/virtio/vhost_blk.h"

namespace pollux::testing {
namespace {

constexpr uint64_t kDiskBlocks = 16384;  // 8 MiB

class VhostBlkTargetTest : public BdevTest {
 protected:
  void SetUp() override {
    BdevTest::SetUp();
    char dir[] = "/tmp/pollux-vhost-target-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    SetVhostSocketFolder(dir_);
    absl::StatusOr<rpc::Json> made = CallRpc(
        "bdev_malloc_create", {{"name", "Malloc0"}, {"num_blocks", kDiskBlocks}, {"block_size", 512}});
    ASSERT_TRUE(made.ok()) << made.status();
  }
  void TearDown() override {
    (void)CallRpc("bdev_virtio_detach_controller", {{"name", "VirtioBlk0"}});
    WaitUntil([&] { return CallOn(app_thread(), [] { return FindBdev("VirtioBlk0"); }) == nullptr; });
    (void)CallRpc("vhost_delete_controller", {{"ctrlr", "vhost.0"}});
    BdevTest::TearDown();
    SetVhostSocketFolder("");
    std::string cmd = "rm -rf " + dir_;
    EXPECT_EQ(system(cmd.c_str()), 0);
  }

  // The queues run on the second reactor: the initiator's handshake blocks the app thread's
  // (the first) while it waits for replies that need the target's queue threads.
  absl::StatusOr<rpc::Json> CreateController(rpc::Json extra = rpc::Json::object()) {
    rpc::Json params = {{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}, {"cpumask", "0x2"}};
    params.update(extra);
    return CallRpc("vhost_create_blk_controller", params);
  }
  absl::StatusOr<rpc::Json> Attach(bool packed, uint32_t vq_count) {
    return CallRpc("bdev_virtio_attach_controller", {{"name", "VirtioBlk0"},
                                                     {"trtype", "user"},
                                                     {"traddr", dir_ + "/vhost.0"},
                                                     {"dev_type", "blk"},
                                                     {"vq_count", vq_count},
                                                     {"vq_size", 128},
                                                     {"packed_ring", packed}});
  }

  // Writes sizes from 512 B to 128 KiB through `client` (the initiator) in random pieces, and
  // checks each on the disk itself (`disk`, the malloc bdev) and read back through `client`.
  void RoundTrip(IoClient& client, IoClient& disk, uint64_t first_block, uint32_t seed) {
    absl::StatusOr<IoMemory> shared = IoMemory::AllocateShared(128 << 10, "test");
    ASSERT_TRUE(shared.ok()) << shared.status();
    std::mt19937_64 rng(seed);
    uint64_t block = first_block;
    for (size_t size : {512u, 4096u, 12288u, 65536u, 131072u}) {
      SCOPED_TRACE(::testing::Message() << size << " bytes");
      std::vector<uint8_t> data(size);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      std::memcpy(shared->data(), data.data(), size);
      std::vector<iovec> iovs = RandomIovecs(shared->data(), size, 16, 512, rng);
      ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), block, size / 512),
                BdevIoStatus::kSuccess);
      std::vector<uint8_t> on_disk(size);
      ASSERT_EQ(disk.Read(on_disk.data(), block, size / 512), BdevIoStatus::kSuccess);
      EXPECT_EQ(on_disk, data);
      std::memset(shared->data(), 0, size);
      iovs = RandomIovecs(shared->data(), size, 16, 512, rng);
      ASSERT_EQ(client.Readv(iovs.data(), static_cast<int>(iovs.size()), block, size / 512),
                BdevIoStatus::kSuccess);
      EXPECT_EQ(std::memcmp(shared->data(), data.data(), size), 0);
      block += size / 512;
    }
  }

  std::string dir_;
};

// (packed ring, queues)
class VhostBlkTargetRingTest : public VhostBlkTargetTest,
                               public ::testing::WithParamInterface<std::tuple<bool, int>> {};

TEST_P(VhostBlkTargetRingTest, DataFlushDiscardAndWriteZeroes) {
  const auto [packed, queues] = GetParam();
  ASSERT_TRUE(CreateController({{"packed_ring", packed}}).ok());
  absl::StatusOr<rpc::Json> attached = Attach(packed, static_cast<uint32_t>(queues));
  ASSERT_TRUE(attached.ok()) << attached.status();
  Bdev* bdev = CallOn(app_thread(), [] { return FindBdev("VirtioBlk0"); });
  ASSERT_NE(bdev, nullptr);
  EXPECT_EQ(bdev->block_count(), kDiskBlocks);
  Thread* second = CreateThread("second", 1);
  {
    IoClient disk(app_thread(), "Malloc0");
    IoClient a(app_thread(), "VirtioBlk0");
    ASSERT_TRUE(disk.ok() && a.ok());
    RoundTrip(a, disk, 0, 1);
    if (queues == 2) {
      IoClient b(second, "VirtioBlk0");
      ASSERT_TRUE(b.ok());
      RoundTrip(b, disk, 1024, 2);
    }
    EXPECT_EQ(a.Flush(0, kDiskBlocks), BdevIoStatus::kSuccess);
    // Write-zeroes and discard on ranges that end mid-way: the neighbours stay.
    std::vector<uint8_t> ones(kDiskBlocks * 512 / 8, 0x11);
    ASSERT_EQ(disk.Write(ones.data(), 4096, ones.size() / 512), BdevIoStatus::kSuccess);
    EXPECT_EQ(a.WriteZeroes(4097, 13), BdevIoStatus::kSuccess);
    std::vector<uint8_t> back(16 * 512);
    ASSERT_EQ(disk.Read(back.data(), 4096, 16), BdevIoStatus::kSuccess);
    EXPECT_EQ(back[511], 0x11);
    EXPECT_EQ(back[512], 0);
    EXPECT_EQ(back[14 * 512 - 1], 0);
    EXPECT_EQ(back[14 * 512], 0x11);
    EXPECT_EQ(a.Unmap(4200, 64), BdevIoStatus::kSuccess);
  }
  ExitThread(second);
  absl::StatusOr<rpc::Json> info = CallRpc("vhost_get_controllers", {{"name", "vhost.0"}});
  ASSERT_TRUE(info.ok()) << info.status();
  const rpc::Json& c = (*info)[0];
  EXPECT_EQ(c["ctrlr"], "vhost.0");
  EXPECT_EQ(c["backend_specific"]["block"]["bdev"], "Malloc0");
  EXPECT_EQ(c["backend_specific"]["block"]["packed_ring"], packed);
  ASSERT_EQ(c["sessions"].size(), 1u);
  ASSERT_GE(c["queues"].size(), static_cast<size_t>(queues));
  for (int q = 0; q < queues; ++q) {
    EXPECT_GT(c["queues"][q]["requests"].get<uint64_t>(), 0u) << "queue " << q;
    EXPECT_EQ(c["queues"][q]["errors"].get<uint64_t>(), 0u) << "queue " << q;
  }
}

INSTANTIATE_TEST_SUITE_P(Rings, VhostBlkTargetRingTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1, 2)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Packed" : "Split") +
                                  std::to_string(std::get<1>(info.param)) + "Queues";
                         });

TEST_F(VhostBlkTargetTest, ReadOnlyControllerRefusesWrites) {
  ASSERT_TRUE(CreateController({{"readonly", true}}).ok());
  ASSERT_TRUE(Attach(false, 1).ok());
  IoClient client(app_thread(), "VirtioBlk0");
  std::vector<uint8_t> data(4096);
  EXPECT_EQ(client.Read(data.data(), 0, 8), BdevIoStatus::kSuccess);
  EXPECT_NE(client.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);
}

TEST_F(VhostBlkTargetTest, DeletingAConnectedControllerIsRefused) {
  ASSERT_TRUE(CreateController().ok());
  ASSERT_TRUE(Attach(false, 1).ok());
  absl::StatusOr<rpc::Json> refused = CallRpc("vhost_delete_controller", {{"ctrlr", "vhost.0"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("connected"), std::string::npos) << refused.status();
  ASSERT_TRUE(CallRpc("bdev_virtio_detach_controller", {{"name", "VirtioBlk0"}}).ok());
  ASSERT_TRUE(WaitUntil([&] {
    absl::StatusOr<rpc::Json> info = CallRpc("vhost_get_controllers", {{"name", "vhost.0"}});
    return info.ok() && (*info)[0]["sessions"].empty();
  }));
  ASSERT_TRUE(CallRpc("vhost_delete_controller", {{"ctrlr", "vhost.0"}}).ok());
  struct stat st;
  EXPECT_NE(stat((dir_ + "/vhost.0").c_str(), &st), 0) << "the socket file stays";
  // The name is free again.
  EXPECT_TRUE(CreateController().ok());
}

TEST_F(VhostBlkTargetTest, RemovedBdevFailsGuestIoCleanly) {
  ASSERT_TRUE(CreateController().ok());
  ASSERT_TRUE(Attach(false, 1).ok());
  {
    IoClient client(app_thread(), "VirtioBlk0");
    std::vector<uint8_t> data(4096, 3);
    ASSERT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);
    ASSERT_TRUE(Delete("Malloc0").ok());
    EXPECT_EQ(client.Read(data.data(), 0, 8), BdevIoStatus::kFailed);
    EXPECT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kFailed);
  }
  absl::StatusOr<rpc::Json> info = CallRpc("vhost_get_controllers", {{"name", "vhost.0"}});
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE((*info)[0]["backend_specific"]["block"]["bdev"].is_null());
}

TEST_F(VhostBlkTargetTest, SaveConfigRoundTripsEveryParameter) {
  ASSERT_TRUE(CreateController({{"packed_ring", true},
                                {"readonly", true},
                                {"cpumask", "0x2"},
                                {"socket_mode", "0660"}})
                  .ok());
  ASSERT_TRUE(CallRpc("vhost_controller_set_coalescing",
                      {{"ctrlr", "vhost.0"}, {"delay_base_us", 20}, {"iops_threshold", 60000}})
                  .ok());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/vhost.0").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  rpc::Json config = rpc::Json::array();
  RunOn(app_thread(), [&] {
    rpc::Subsystem* s = rpc::SubsystemRegistry::Global().Find("vhost_blk");
    ASSERT_NE(s, nullptr);
    s->write_config(config);
  });
  ASSERT_EQ(config.size(), 2u) << config.dump();
  EXPECT_EQ(config[0]["method"], "vhost_create_blk_controller");
  EXPECT_EQ(config[0]["params"],
            (rpc::Json{{"ctrlr", "vhost.0"},
                       {"dev_name", "Malloc0"},
                       {"readonly", true},
                       {"packed_ring", true},
                       {"cpumask", "0x2"},
                       {"socket_mode", "0660"}}));
  EXPECT_EQ(config[1]["method"], "vhost_controller_set_coalescing");
  EXPECT_EQ(config[1]["params"]["delay_base_us"], 20);
  EXPECT_EQ(config[1]["params"]["iops_threshold"], 60000);
  // Replayed after a delete, the calls make the same controller.
  ASSERT_TRUE(CallRpc("vhost_delete_controller", {{"ctrlr", "vhost.0"}}).ok());
  for (const rpc::Json& call : config) {
    ASSERT_TRUE(CallRpc(call["method"].get<std::string>(), call["params"]).ok()) << call.dump();
  }
}

TEST_F(VhostBlkTargetTest, BadParametersGetClearErrors) {
  auto error = [&](rpc::Json params, const char* expected) {
    absl::StatusOr<rpc::Json> r = CallRpc("vhost_create_blk_controller", params);
    ASSERT_FALSE(r.ok()) << params.dump();
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << params.dump() << ": " << r.status();
  };
  error({{"ctrlr", "vhost.0"}}, "dev_name");
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Nope"}}, "Nope");
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}, {"cpumask", "0x100"}}, "core 8");
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}, {"cpumask", "zz"}}, "cpumask");
  error({{"ctrlr", "a/b"}, {"dev_name", "Malloc0"}}, "not a path");
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}, {"socket_mode", "0999"}}, "octal");
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}, {"bogus", 1}}, "bogus");
  // A regular file where the socket would go is not replaced.
  std::ofstream(dir_ + "/vhost.1") << "data";
  error({{"ctrlr", "vhost.1"}, {"dev_name", "Malloc0"}}, "not a socket");
  // A second controller of the same name.
  ASSERT_TRUE(CreateController().ok());
  error({{"ctrlr", "vhost.0"}, {"dev_name", "Malloc0"}}, "already exists");
  absl::StatusOr<rpc::Json> missing = CallRpc("vhost_delete_controller", {{"ctrlr", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  EXPECT_FALSE(CallRpc("vhost_get_controllers", {{"name", "nope"}}).ok());
  EXPECT_FALSE(CallRpc("vhost_controller_set_coalescing",
                       {{"ctrlr", "vhost.0"}, {"delay_base_us", 2000000}, {"iops_threshold", 1}})
                   .ok());
}

}  // namespace
}  // namespace pollux::testing
