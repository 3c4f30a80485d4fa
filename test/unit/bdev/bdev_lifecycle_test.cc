// Registration, lookup, descriptors, claims, hot remove, examine and the layer's RPC methods.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "bdev_test_env.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 512;

// A module that records what it examined.
class ExamineRecorder : public BdevModule {
 public:
  ExamineRecorder() : BdevModule("examine_recorder") {}
  static ExamineRecorder& Get();
  void Examine(Bdev& bdev) override {
    std::lock_guard lock(mutex);
    examined.push_back(bdev.name());
  }
  std::mutex mutex;
  std::vector<std::string> examined;
};
POLLUX_BDEV_MODULE(ExamineRecorder);

class BdevLifecycleTest : public BdevTest {
 protected:
  absl::StatusOr<Bdev*> Register(BdevProperties p) {
    return CallOn(app_thread(), [&]() -> absl::StatusOr<Bdev*> {
      return RegisterBdev(std::make_unique<TestBdev>(p));
    });
  }
};

TEST_F(BdevLifecycleTest, RegistrationValidatesProperties) {
  auto bad = [&](BdevProperties p) { return Register(p).status(); };
  EXPECT_THAT(std::string(bad({.name = "", .block_count = 8}).message()),
              ::testing::HasSubstr("needs a name"));
  EXPECT_THAT(std::string(bad({.name = "B", .block_size = 1000, .block_count = 8}).message()),
              ::testing::HasSubstr("block size 1000 is not a power of two"));
  EXPECT_FALSE(bad({.name = "B", .block_size = 256, .block_count = 8}).ok());
  EXPECT_FALSE(bad({.name = "B", .block_size = 131072, .block_count = 8}).ok());
  EXPECT_THAT(std::string(bad({.name = "B", .block_count = 0}).message()),
              ::testing::HasSubstr("block count is 0"));
  EXPECT_FALSE(bad({.name = "B", .uuid = "not-a-uuid", .block_count = 8}).ok());
  EXPECT_FALSE(bad({.name = "B", .block_count = 8, .required_alignment = 3}).ok());
  EXPECT_EQ(ListBdevs().size(), 0u);
  EXPECT_TRUE(Register({.name = "B", .block_size = 4096, .block_count = 8}).ok());
}

TEST_F(BdevLifecycleTest, NamesAndAliasesAreUnique) {
  auto a = Register({.name = "A", .aliases = {"a1", "a2"}, .block_count = 8});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(FindBdev("a2"), *a);
  EXPECT_EQ(Register({.name = "A", .block_count = 8}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Register({.name = "B", .aliases = {"a1"}, .block_count = 8}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Register({.name = "C", .aliases = {"C"}, .block_count = 8}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(FindBdev("B"), nullptr);
  EXPECT_EQ((*a)->uuid().size(), 36u);  // generated
  ASSERT_TRUE(Delete("a1").ok());        // by alias
  EXPECT_EQ(FindBdev("A"), nullptr);
  EXPECT_TRUE(Register({.name = "B", .aliases = {"a1"}, .block_count = 8}).ok());
}

TEST_F(BdevLifecycleTest, GivenUuidIsKeptInLowerCase) {
  auto a = Register({.name = "U", .uuid = "0123ABCD-0000-4000-8000-00000000000F", .block_count = 8});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->uuid(), "0123abcd-0000-4000-8000-00000000000f");
}

TEST_F(BdevLifecycleTest, OpenFailsClearly) {
  auto status = CallOn(app_thread(), [] { return BdevDesc::Open("nope", false, nullptr).status(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("nope"));
}

TEST_F(BdevLifecycleTest, ClaimsAreExclusive) {
  ASSERT_TRUE(Register({.name = "Base", .block_count = 8}).ok());
  BdevModule& claimer = TestBdevModule::Get();
  CallOn(app_thread(), [&] {
    auto first = BdevDesc::Open("Base", true, nullptr);
    EXPECT_TRUE(first.ok());
    EXPECT_TRUE((*first)->Claim(claimer).ok());
    EXPECT_EQ(FindBdev("Base")->claimed_by(), &claimer);
    // A second writer or a second claim: refused, clearly.
    auto writer = BdevDesc::Open("Base", true, nullptr);
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(writer.status().message()), ::testing::HasSubstr("claimed by module test"));
    auto reader = BdevDesc::Open("Base", false, nullptr);
    EXPECT_TRUE(reader.ok());
    EXPECT_FALSE((*reader)->Claim(claimer).ok());  // read-only descriptor
    // Closing the claiming descriptor releases the claim.
    first->reset();
    EXPECT_EQ(FindBdev("Base")->claimed_by(), nullptr);
    auto again = BdevDesc::Open("Base", true, nullptr);
    EXPECT_TRUE(again.ok());
    return 0;
  });
}

TEST_F(BdevLifecycleTest, ClaimRefusedWhileAnotherWriterIsOpen) {
  ASSERT_TRUE(Register({.name = "Base", .block_count = 8}).ok());
  CallOn(app_thread(), [&] {
    auto writer = BdevDesc::Open("Base", true, nullptr);
    auto claimer = BdevDesc::Open("Base", true, nullptr);
    absl::Status s = (*claimer)->Claim(TestBdevModule::Get());
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("open for writing"));
    return 0;
  });
}

TEST_F(BdevLifecycleTest, DeleteRefusesClaimedAndForeignBdevs) {
  ASSERT_TRUE(Register({.name = "Base", .block_count = 8}).ok());
  std::unique_ptr<BdevDesc> desc;
  RunOn(app_thread(), [&] {
    desc = std::move(*BdevDesc::Open("Base", true, nullptr));
    ASSERT_TRUE(desc->Claim(TestBdevModule::Get()).ok());
  });
  absl::Status s = Delete("Base");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("claimed by module test"));
  EXPECT_NE(FindBdev("Base"), nullptr);
  EXPECT_EQ(Delete("Nope").code(), absl::StatusCode::kNotFound);
  std::atomic<bool> done{false};
  absl::Status foreign;
  RunOn(app_thread(), [&] {
    DeleteBdev("Base", &ExamineRecorder::Get(), [&](absl::Status st) {
      foreign = st;
      done = true;
    });
  });
  ASSERT_TRUE(WaitUntil([&] { return done.load(); }));
  EXPECT_EQ(foreign.code(), absl::StatusCode::kNotFound);
  RunOn(app_thread(), [&] { desc.reset(); });
  EXPECT_TRUE(Delete("Base").ok());
}

// Hot remove with I/O in flight: the descriptor gets its event, its I/O completes, it closes,
// then the bdev goes.
TEST_F(BdevLifecycleTest, HotRemoveWithIoInFlight) {
  auto registered = Register({.name = "Hot", .block_count = 64});
  ASSERT_TRUE(registered.ok());
  auto* bdev = static_cast<TestBdev*>(*registered);
  Thread* user = CreateThread("user", 1);
  auto client = std::make_unique<IoClient>(user, "Hot");
  bdev->hold = true;
  std::atomic<int> completed{0};
  std::vector<char> buf(8 * kBlock);
  RunOn(user, [&] {
    for (int i = 0; i < 8; ++i) {
      client->desc().Read(client->channel(), buf.data() + i * kBlock, i, 1,
                          [](void* arg, BdevIoStatus, int) { ++*static_cast<std::atomic<int>*>(arg); },
                          &completed);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == 8; }));
  std::atomic<bool> removed{false};
  RunOn(app_thread(), [&] { UnregisterBdev(*bdev, [&](absl::Status) { removed = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  // New opens fail while it goes away; the bdev waits for the open descriptor.
  auto reopen = CallOn(app_thread(), [] { return BdevDesc::Open("Hot", false, nullptr).status(); });
  EXPECT_EQ(reopen.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(removed.load());
  EXPECT_EQ(CallOn(user, [&] { return bdev->Release(); }), 8u);
  ASSERT_TRUE(WaitUntil([&] { return completed.load() == 8; }));
  client.reset();  // closes on its thread
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  EXPECT_EQ(FindBdev("Hot"), nullptr);
  ExitThread(user);
}

TEST_F(BdevLifecycleTest, EveryModuleExaminesNewBdevs) {
  {
    std::lock_guard lock(ExamineRecorder::Get().mutex);
    ExamineRecorder::Get().examined.clear();
  }
  ASSERT_TRUE(Register({.name = "E1", .block_count = 8}).ok());
  ASSERT_TRUE(Register({.name = "E2", .block_count = 8}).ok());
  std::lock_guard lock(ExamineRecorder::Get().mutex);
  EXPECT_EQ(ExamineRecorder::Get().examined, (std::vector<std::string>{"E1", "E2"}));
}

// The layer's shutdown closes what is still open through remove events.
TEST_F(BdevLifecycleTest, ShutdownRemovesBdevsWithOpenDescriptors) {
  ASSERT_TRUE(Register({.name = "S1", .block_count = 8}).ok());
  std::unique_ptr<BdevDesc> desc;
  RunOn(app_thread(), [&] {
    desc = std::move(*BdevDesc::Open("S1", false, [&](BdevEvent, Bdev&) { desc.reset(); }));
  });
  std::atomic<bool> done{false};
  RunOn(app_thread(), [&] { FiniBdevLayer([&] { done = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return done.load(); }));
  EXPECT_EQ(desc, nullptr);
  EXPECT_TRUE(ListBdevs().empty());
}

TEST_F(BdevLifecycleTest, GetBdevsDescribesEachBdev) {
  ASSERT_TRUE(Register({.name = "G0", .aliases = {"g"}, .block_size = 4096, .block_count = 16}).ok());
  auto all = CallRpc("bdev_get_bdevs", nullptr);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  const rpc::Json& g = (*all)[0];
  EXPECT_EQ(g["name"], "G0");
  EXPECT_EQ(g["aliases"][0], "g");
  EXPECT_EQ(g["block_size"], 4096);
  EXPECT_EQ(g["num_blocks"], 16);
  EXPECT_EQ(g["supported_io_types"]["read"], true);
  EXPECT_EQ(g["supported_io_types"]["unmap"], false);
  EXPECT_EQ(g["supported_io_types"]["write_zeroes"], true);
  EXPECT_EQ(g["claimed"], false);
  auto one = CallRpc("bdev_get_bdevs", {{"name", "g"}});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)[0]["name"], "G0");
  auto missing = CallRpc("bdev_get_bdevs", {{"name", "nope"}});
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("nope not found"));
  EXPECT_FALSE(CallRpc("bdev_get_bdevs", {{"nmae", "x"}}).ok());
}

TEST_F(BdevLifecycleTest, GetIostatSumsEveryChannel) {
  ASSERT_TRUE(Register({.name = "I0", .block_count = 64}).ok());
  Thread* other = CreateThread("other", 1);
  {
    IoClient a(app_thread(), "I0");
    IoClient b(other, "I0");
    std::vector<char> buf(4 * kBlock);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(a.Read(buf.data(), 0, 4), BdevIoStatus::kSuccess);
    ASSERT_EQ(b.Write(buf.data(), 0, 2), BdevIoStatus::kSuccess);
    ASSERT_EQ(b.Read(buf.data(), 63, 2), BdevIoStatus::kOutOfRange);
    auto stats = CallRpc("bdev_get_iostat", {{"name", "I0"}});
    ASSERT_TRUE(stats.ok()) << stats.status();
    const rpc::Json& s = (*stats)["bdevs"][0];
    EXPECT_EQ(s["num_read_ops"], 3);
    EXPECT_EQ(s["bytes_read"], 3 * 4 * kBlock);
    EXPECT_EQ(s["num_write_ops"], 1);
    EXPECT_EQ(s["bytes_written"], 2 * kBlock);
    EXPECT_EQ(s["num_failed_ops"], 1);
    EXPECT_GT((*stats)["tick_rate"].get<uint64_t>(), 0u);
    EXPECT_TRUE(s["latency_percentiles_us"].contains("p99"));
  }
  // Channels gone: their counts stay with the bdev.
  auto stats = CallRpc("bdev_get_iostat", nullptr);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)["bdevs"][0]["num_read_ops"], 3);
  EXPECT_FALSE((*stats)["bdevs"][0].contains("latency_buckets"));
  ExitThread(other);
}

// Reads, writes and the other types have a latency histogram each: percentiles per histogram,
// and with latency_buckets the buckets that hold the samples (pollux-top subtracts two).
TEST_F(BdevLifecycleTest, GetIostatHasLatenciesOfReadsWritesAndOtherTypesApart) {
  ASSERT_TRUE(Register({.name = "L0", .block_count = 64}).ok());
  IoClient client(app_thread(), "L0");
  std::vector<char> buf(4 * kBlock);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Read(buf.data(), 0, 4), BdevIoStatus::kSuccess);
  ASSERT_EQ(client.Write(buf.data(), 0, 2), BdevIoStatus::kSuccess);
  auto stats = CallRpc("bdev_get_iostat", {{"name", "L0"}, {"latency_buckets", true}});
  ASSERT_TRUE(stats.ok()) << stats.status();
  const rpc::Json& s = (*stats)["bdevs"][0];
  for (const char* name : {"read", "write", "other"}) {
    EXPECT_TRUE(s[std::string(name) + "_latency_percentiles_us"].contains("p99")) << name;
  }
  auto samples = [&](const char* histogram) {
    uint64_t count = 0;
    for (const rpc::Json& bucket : s["latency_buckets"][histogram]) {
      count += bucket[1].get<uint64_t>();
    }
    return count;
  };
  EXPECT_EQ(samples("read"), 3u) << s.dump();
  EXPECT_EQ(samples("write"), 1u) << s.dump();
  EXPECT_EQ(samples("other"), 0u) << s.dump();
  // Ascending upper bounds.
  const rpc::Json& reads = s["latency_buckets"]["read"];
  for (size_t i = 1; i < reads.size(); ++i) {
    EXPECT_LT(reads[i - 1][0].get<uint64_t>(), reads[i][0].get<uint64_t>());
  }
}

}  // namespace
}  // namespace pollux::testing
