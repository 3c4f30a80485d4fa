// The module life cycle: asynchronous init and fini (the layer and the bdev subsystem wait for
// every module's done; an init error stops start-up with its message), examine in two steps
// (ExamineConfig, then ExamineDisk reading the disk for a label) with bdev_wait_for_examine
// waiting for it, OnBdevRemoved before the descriptors' remove events, and done called twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_malloc/bdev_malloc.h"
#include "pollux/bdev_passthru/bdev_passthru.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace pollux::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What the test modules did, in order, across threads.
class EventLog {
 public:
  void Add(std::string event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> Take() {
    std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};
EventLog module_events;

// How StartupModule answers InitAsync, FiniStart and FiniAsync; set before the step runs.
enum class Answer { kAtOnce, kHold, kFail, kTwice };
struct StartupKnobs {
  std::atomic<Answer> init{Answer::kAtOnce};
  std::atomic<Answer> fini_start{Answer::kAtOnce};
  std::atomic<Answer> fini{Answer::kAtOnce};
};
StartupKnobs knobs;

// A module that waits for a device: its init, fini start and fini finish when the test says.
class StartupModule : public BdevModule {
 public:
  StartupModule() : BdevModule("startup_probe") {}
  static StartupModule& Get();

  void InitAsync(InitDone done) override {
    module_events.Add("init startup_probe");
    switch (knobs.init.load()) {
      case Answer::kAtOnce:
        return done(absl::OkStatus());
      case Answer::kHold:
        held_init = std::move(done);
        return;
      case Answer::kFail:
        return done(absl::UnavailableError("device /dev/fake0 did not answer"));
      case Answer::kTwice:
        done(absl::OkStatus());
        return done(absl::InternalError("second call"));
    }
  }
  void FiniStart(Done done) override { Finish("fini_start", knobs.fini_start, std::move(done)); }
  void FiniAsync(Done done) override { Finish("fini", knobs.fini, std::move(done)); }

  InitDone held_init;  // app thread
  Done held_fini;      // app thread

 private:
  void Finish(const std::string& step, Answer answer, Done done) {
    module_events.Add(step + " startup_probe, bdevs: " + std::to_string(ListBdevs().size()));
    if (answer == Answer::kHold) {
      held_fini = std::move(done);
      return;
    }
    done();
  }
};
POLLUX_BDEV_MODULE(StartupModule);

// Registered after StartupModule (same file): its init must wait for StartupModule's done.
class LaterModule : public BdevModule {
 public:
  LaterModule() : BdevModule("startup_later") {}
  static LaterModule& Get();
  absl::Status Init() override {
    module_events.Add("init startup_later");
    return absl::OkStatus();
  }
  void Fini() override { module_events.Add("fini startup_later"); }
};
POLLUX_BDEV_MODULE(LaterModule);

// A module that finds its disks by a label in their first block (as lvol or raid find their
// superblocks): ExamineDisk opens the bdev, reads block 0, and claims the bdev if the label is
// there. App thread only.
constexpr char kLabel[] = "POLLUX-TEST-LABEL";

class LabelModule : public BdevModule {
 public:
  LabelModule() : BdevModule("label_probe") {}
  static LabelModule& Get();

  void ExamineDisk(Bdev& bdev, Done done) override {
    module_events.Add("examine_disk " + bdev.name());
    if (hold_examine.load()) {
      held_examine.push_back(std::move(done));
      return;
    }
    if (call_done_twice.load()) {
      done();
      return done();
    }
    auto desc = BdevDesc::Open(bdev.name(), /*writable=*/false, [](BdevEvent, Bdev&) {});
    if (!desc.ok()) return done();
    auto* probe = new Probe{
        std::move(*desc), {}, std::vector<char>(bdev.block_size()), bdev.name(), std::move(done)};
    probe->channel = probe->desc->GetIoChannel();
    probe->desc->Read(*probe->channel, probe->block.data(), 0, 1, &LabelModule::ReadDone, probe);
  }

  // SPDK's rule: a claim held without a bdev of ours on top goes before the bdevs do.
  void FiniStart(Done done) override {
    claimed.clear();
    done();
  }

  std::atomic<bool> hold_examine{false};
  std::atomic<bool> call_done_twice{false};
  std::vector<Done> held_examine;                            // app thread
  std::map<std::string, std::unique_ptr<BdevDesc>> claimed;  // app thread

 private:
  struct Probe {
    std::unique_ptr<BdevDesc> desc;
    IoChannelRef channel;
    std::vector<char> block;
    std::string name;
    Done done;
  };

  static void ReadDone(void* arg, BdevIoStatus status, int /*error_number*/) {
    std::unique_ptr<Probe> probe(static_cast<Probe*>(arg));
    bool labelled = status == BdevIoStatus::kSuccess &&
                    std::memcmp(probe->block.data(), kLabel, sizeof(kLabel)) == 0;
    probe->channel.reset();
    probe->desc.reset();  // the examine descriptor; a claim needs a writable one
    if (labelled) {
      std::string name = probe->name;
      auto claim = BdevDesc::OpenAndClaim(name, Get(), [name](BdevEvent, Bdev&) {
        Get().claimed.erase(name);  // the bdev goes: let it
      });
      if (claim.ok()) {
        Get().claimed[name] = std::move(*claim);
        module_events.Add("claimed " + name);
      }
    }
    probe->done();
  }
};
POLLUX_BDEV_MODULE(LabelModule);

// Records what a module sees of a bdev being unregistered.
class RemovalWatchModule : public BdevModule {
 public:
  RemovalWatchModule() : BdevModule("removal_watch") {}
  static RemovalWatchModule& Get();

  void OnBdevRemoved(Bdev& bdev) override {
    Seen seen;
    seen.name = bdev.name();
    seen.thread_id = Thread::Current()->id();
    seen.open_count = bdev.open_count();
    seen.findable = FindBdev(bdev.name()) == &bdev;
    seen.open = BdevDesc::Open(bdev.name(), false, nullptr).status();
    std::lock_guard lock(mutex);
    this->seen.push_back(std::move(seen));
  }

  struct Seen {
    std::string name;
    uint64_t thread_id = 0;
    size_t open_count = 0;
    bool findable = false;
    absl::Status open;
  };
  std::mutex mutex;
  std::vector<Seen> seen;
};
POLLUX_BDEV_MODULE(RemovalWatchModule);

void ResetModules() {
  knobs.init = Answer::kAtOnce;
  knobs.fini_start = Answer::kAtOnce;
  knobs.fini = Answer::kAtOnce;
  LabelModule::Get().hold_examine = false;
  LabelModule::Get().call_done_twice = false;
  std::lock_guard lock(RemovalWatchModule::Get().mutex);
  RemovalWatchModule::Get().seen.clear();
}

// ---- init and fini: the layer started and stopped by hand ----

// The outcome of an asynchronous call, set on a reactor thread, read by the test.
struct Outcome {
  std::atomic<bool> done{false};
  absl::Status status;
};

class ModuleInitTest : public ReactorTest {
 protected:
  void SetUp() override {
    ReactorTest::SetUp();
    if (HasFatalFailure()) return;
    ResetModules();
    module_events.Take();
    app_thread_ = CreateThread("bdev_test_app", 0);
    ASSERT_NE(app_thread_, nullptr);
  }
  void TearDown() override {
    knobs.fini_start = Answer::kAtOnce;
    knobs.fini = Answer::kAtOnce;
    if (BdevLayerInitialized()) {
      Outcome* fini = StartFini();
      EXPECT_TRUE(WaitUntil([&] { return fini->done.load(); }));
    }
    ExitThread(app_thread_);
    ReactorTest::TearDown();
  }

  // Starts InitBdevLayer on the app thread; the outcome lives as long as the fixture.
  Outcome* StartInit() {
    RunOn(app_thread_, [this] {
      InitBdevLayer({}, [this](absl::Status status) {
        init_.status = std::move(status);
        init_.done = true;
      });
    });
    return &init_;
  }
  Outcome* StartFini() {
    fini_.done = false;
    RunOn(app_thread_, [this] { FiniBdevLayer([this] { fini_.done = true; }); });
    return &fini_;
  }
  // Proves the app thread went on polling, so that something that did not happen would have.
  void LetAppThreadRun() { WaitForIterations(app_thread_, 100); }

  Thread* app_thread_ = nullptr;
  Outcome init_;
  Outcome fini_;
};

TEST_F(ModuleInitTest, StartUpWaitsForAnAsynchronousInit) {
  knobs.init = Answer::kHold;
  Outcome* init = StartInit();
  LetAppThreadRun();
  EXPECT_FALSE(init->done.load());
  // The next module has not started: modules start one after the other.
  EXPECT_THAT(module_events.Take(), ElementsAre("init startup_probe"));
  // done may come from any thread (here: another reactor's).
  Thread* device = CreateThread("device", 1);
  auto held =
      CallOn(app_thread_, [] { return std::exchange(StartupModule::Get().held_init, nullptr); });
  RunOn(device, [&held] { held(absl::OkStatus()); });
  ASSERT_TRUE(WaitUntil([&] { return init->done.load(); }));
  EXPECT_TRUE(init->status.ok()) << init->status;
  EXPECT_THAT(module_events.Take(), ElementsAre("init startup_later"));
  ExitThread(device);
}

TEST_F(ModuleInitTest, AFailedInitFailsStartUpWithItsMessage) {
  knobs.init = Answer::kFail;
  Outcome* init = StartInit();
  ASSERT_TRUE(WaitUntil([&] { return init->done.load(); }));
  EXPECT_EQ(init->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(init->status.message(), "bdev module startup_probe: device /dev/fake0 did not answer");
  EXPECT_FALSE(BdevLayerInitialized());
  // The modules after it never started; it, never initialised, is not finished.
  EXPECT_THAT(module_events.Take(), ElementsAre("init startup_probe"));
  // And the layer starts again once the device answers.
  knobs.init = Answer::kAtOnce;
  init->done = false;
  StartInit();
  ASSERT_TRUE(WaitUntil([&] { return init->done.load(); }));
  EXPECT_TRUE(init->status.ok()) << init->status;
}

TEST_F(ModuleInitTest, InitDoneTwiceIsLoggedAndIgnored) {
  knobs.init = Answer::kTwice;
  ::testing::internal::CaptureStderr();
  Outcome* init = StartInit();
  ASSERT_TRUE(WaitUntil([&] { return init->done.load(); }));
  LetAppThreadRun();
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(init->status.ok()) << init->status;  // the first call counted
  EXPECT_THAT(log, HasSubstr("bdev module startup_probe: init done called more than once"));
  // The sequence went on once: one init of the next module.
  EXPECT_THAT(module_events.Take(), ElementsAre("init startup_probe", "init startup_later"));
}

TEST_F(ModuleInitTest, FiniStartRunsBeforeBdevsGoAndFiniAfterInReverse) {
  Outcome* init = StartInit();
  ASSERT_TRUE(WaitUntil([&] { return init->done.load(); }));
  auto created = CallOn(app_thread_, [] {
    MallocBdevOptions options;
    options.name = "M0";
    options.num_blocks = 64;
    return CreateMallocBdev(options).status();
  });
  ASSERT_TRUE(created.ok()) << created;
  module_events.Take();
  knobs.fini_start = Answer::kHold;
  knobs.fini = Answer::kHold;
  Outcome* fini = StartFini();
  LetAppThreadRun();
  // Held in fini_start: the bdev is still there.
  EXPECT_FALSE(fini->done.load());
  EXPECT_NE(FindBdev("M0"), nullptr);
  RunOn(app_thread_, [] { std::exchange(StartupModule::Get().held_fini, nullptr)(); });
  // Then the bdevs go, then fini runs in reverse order: startup_later before startup_probe,
  // which holds the shutdown until its done.
  ASSERT_TRUE(WaitUntil([&] {
    return CallOn(app_thread_, [] { return StartupModule::Get().held_fini != nullptr; });
  }));
  LetAppThreadRun();
  EXPECT_FALSE(fini->done.load());
  EXPECT_THAT(module_events.Take(),
              ElementsAre("fini_start startup_probe, bdevs: 1", "fini startup_later",
                          "fini startup_probe, bdevs: 0"));
  RunOn(app_thread_, [] { std::exchange(StartupModule::Get().held_fini, nullptr)(); });
  ASSERT_TRUE(WaitUntil([&] { return fini->done.load(); }));
  EXPECT_FALSE(BdevLayerInitialized());
}

// The bdev subsystem (what pollux-tgt starts before replaying its config) answers only once
// every module is up, and with the module's error.
TEST_F(ModuleInitTest, BdevSubsystemWaitsForEveryModule) {
  rpc::Subsystem* bdev = rpc::SubsystemRegistry::Global().Find("bdev");
  ASSERT_NE(bdev, nullptr);
  knobs.init = Answer::kHold;
  RunOn(app_thread_, [&] {
    bdev->init([this](absl::Status status) {
      init_.status = std::move(status);
      init_.done = true;
    });
  });
  LetAppThreadRun();
  EXPECT_FALSE(init_.done.load());
  RunOn(app_thread_, [] {
    std::exchange(StartupModule::Get().held_init, nullptr)(absl::AbortedError("no link"));
  });
  ASSERT_TRUE(WaitUntil([&] { return init_.done.load(); }));
  EXPECT_EQ(init_.status.message(), "bdev module startup_probe: no link");
  EXPECT_FALSE(BdevLayerInitialized());
}

// ---- examine and removal: the layer running (BdevTest) ----

class ModuleExamineTest : public BdevTest {
 protected:
  void SetUp() override {
    ResetModules();
    BdevTest::SetUp();
    module_events.Take();
  }

  absl::Status CreateMalloc(const std::string& name) {
    return CallOn(app_thread(), [&] {
      MallocBdevOptions options;
      options.name = name;
      options.num_blocks = 64;
      return CreateMallocBdev(options).status();
    });
  }
  void WriteLabel(const std::string& name) {
    IoClient client(app_thread(), name);
    std::vector<char> block(512);
    std::memcpy(block.data(), kLabel, sizeof(kLabel));
    ASSERT_EQ(client.Write(block.data(), 0, 1), BdevIoStatus::kSuccess);
  }
  const BdevModule* ClaimerOf(const std::string& name) {
    return CallOn(app_thread(), [&] { return FindBdev(name)->claimed_by(); });
  }
  void LetAppThreadRun() { WaitForIterations(app_thread(), 100); }
  // Starts bdev_wait_for_examine; the outcome lives as long as the fixture.
  Outcome* StartWaitForExamine() {
    RunOn(app_thread(), [this] {
      rpc::MethodRegistry::Global().Call("bdev_wait_for_examine", nullptr,
                                         [this](rpc::RpcReply reply) {
                                           if (!reply.ok) wait_.status = absl::UnknownError("");
                                           wait_.done = true;
                                         });
    });
    return &wait_;
  }

  Outcome wait_;
};

TEST_F(ModuleExamineTest, ExamineDiskClaimsOnlyALabelledDisk) {
  // A fresh malloc bdev is zeroed: examined (its first block read), not claimed.
  ASSERT_TRUE(CreateMalloc("M0").ok());
  ASSERT_TRUE(CallRpc("bdev_wait_for_examine", nullptr).ok());
  EXPECT_THAT(module_events.Take(), ElementsAre("examine_disk M0"));
  EXPECT_EQ(ClaimerOf("M0"), nullptr);
  // The same blocks seen through a new bdev once they carry the label: claimed.
  WriteLabel("M0");
  ASSERT_TRUE(CallRpc("bdev_passthru_create", {{"base_bdev_name", "M0"}, {"name", "PT0"}}).ok());
  ASSERT_TRUE(CallRpc("bdev_wait_for_examine", nullptr).ok());
  EXPECT_THAT(module_events.Take(), ElementsAre("examine_disk PT0", "claimed PT0"));
  EXPECT_EQ(ClaimerOf("PT0"), &LabelModule::Get());
  // The claim holds until the module lets go (here at the layer's shutdown, in FiniStart).
  EXPECT_THAT(std::string(Delete("PT0").message()), HasSubstr("claimed by module label_probe"));
}

// SPDK's rule: a bdev claimed in ExamineConfig is examined on disk by its claimer only.
TEST_F(ModuleExamineTest, ABdevClaimedByExamineConfigGoesOnlyToItsClaimer) {
  // A passthru over a base that does not exist yet: its ExamineConfig claims the base.
  ASSERT_TRUE(CallRpc("bdev_passthru_create", {{"base_bdev_name", "M1"}, {"name", "PT1"}}).ok());
  ASSERT_TRUE(CreateMalloc("M1").ok());
  ASSERT_TRUE(CallRpc("bdev_wait_for_examine", nullptr).ok());
  EXPECT_EQ(ClaimerOf("M1"), &PassthruModule::Get());
  // PT1 (registered inside M1's examine) is examined; M1 is not offered to label_probe.
  EXPECT_THAT(module_events.Take(), ElementsAre("examine_disk PT1"));
}

TEST_F(ModuleExamineTest, WaitForExamineWaitsForEveryExamineDisk) {
  LabelModule::Get().hold_examine = true;
  ASSERT_TRUE(CreateMalloc("M2").ok());
  ASSERT_TRUE(CreateMalloc("M3").ok());
  Outcome* wait = StartWaitForExamine();
  LetAppThreadRun();
  EXPECT_FALSE(wait->done.load());
  std::vector<BdevModule::Done> held =
      CallOn(app_thread(), [] { return std::exchange(LabelModule::Get().held_examine, {}); });
  ASSERT_EQ(held.size(), 2u);
  RunOn(app_thread(), [&] { held[0](); });
  LetAppThreadRun();
  EXPECT_FALSE(wait->done.load());  // M3's examination is still under way
  // The last done, from another thread.
  Thread* other = CreateThread("other", 1);
  RunOn(other, [&] { held[1](); });
  ASSERT_TRUE(WaitUntil([&] { return wait->done.load(); }));
  EXPECT_TRUE(wait->status.ok());
  ExitThread(other);
}

TEST_F(ModuleExamineTest, ExamineDoneTwiceIsLoggedAndIgnored) {
  LabelModule::Get().call_done_twice = true;
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(CreateMalloc("M4").ok());
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("bdev module label_probe: examine done of M4 called more than once"));
  // The extra call did not end someone else's examination.
  LabelModule::Get().call_done_twice = false;
  LabelModule::Get().hold_examine = true;
  ASSERT_TRUE(CreateMalloc("M5").ok());
  Outcome* wait = StartWaitForExamine();
  LetAppThreadRun();
  EXPECT_FALSE(wait->done.load());
  RunOn(app_thread(), [] { std::exchange(LabelModule::Get().held_examine, {})[0](); });
  ASSERT_TRUE(WaitUntil([&] { return wait->done.load(); }));
}

TEST_F(ModuleExamineTest, WaitForExamineRefusesParameters) {
  auto reply = CallRpc("bdev_wait_for_examine", {{"timeout", 1}});
  EXPECT_FALSE(reply.ok());
}

// Modules hear of a removal on the app thread, before any descriptor's remove event, with the
// bdev still findable and refusing opens; then the removal goes on as before.
TEST_F(ModuleExamineTest, ModulesHearOfARemovalBeforeItsDescriptors) {
  ASSERT_TRUE(CreateMalloc("M6").ok());
  ASSERT_TRUE(CallRpc("bdev_wait_for_examine", nullptr).ok());  // label_probe's read done
  Thread* user = CreateThread("user", 1);
  auto client = std::make_unique<IoClient>(user, "M6");
  std::atomic<bool> removed{false};
  // Unregistered from a thread other than the app thread: the hook still runs on the app thread.
  RunOn(user, [&] { UnregisterBdev(*FindBdev("M6"), [&](absl::Status) { removed = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  {
    std::lock_guard lock(RemovalWatchModule::Get().mutex);
    const auto& seen = RemovalWatchModule::Get().seen;
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].name, "M6");
    EXPECT_EQ(seen[0].thread_id, app_thread()->id());
    EXPECT_EQ(seen[0].open_count, 1u);  // the client's, not yet told
    EXPECT_TRUE(seen[0].findable);
    EXPECT_EQ(seen[0].open.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_FALSE(removed.load());  // waits for the client's descriptor, as before
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  EXPECT_EQ(FindBdev("M6"), nullptr);
  ExitThread(user);
}

TEST_F(ModuleExamineTest, ShutdownTellsModulesOfEveryBdev) {
  ASSERT_TRUE(CreateMalloc("M7").ok());
  ASSERT_TRUE(CreateMalloc("M8").ok());
  std::atomic<bool> done{false};
  RunOn(app_thread(), [&] { FiniBdevLayer([&] { done = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return done.load(); }));
  std::lock_guard lock(RemovalWatchModule::Get().mutex);
  std::vector<std::string> names;
  for (const auto& seen : RemovalWatchModule::Get().seen) names.push_back(seen.name);
  EXPECT_THAT(names, ElementsAre("M8", "M7"));
}

}  // namespace
}  // namespace pollux::testing
