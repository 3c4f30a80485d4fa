// Config files: syntax errors with line:column, shape errors naming the entry, replay in
// subsystem order that stops at the first failure, and save_config round trips.
#include "pollux/rpc/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rpc_test_util.h"

namespace pollux::rpc {
namespace {

Subsystem Make(std::string name, int order) {
  Subsystem s;
  s.name = std::move(name);
  s.order = order;
  return s;
}

// Three subsystems registered out of order, and methods that record their calls.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(subsystems_.Register(Make("vhost_blk", 30)).ok());
    ASSERT_TRUE(subsystems_.Register(Make("framework", 0)).ok());
    ASSERT_TRUE(subsystems_.Register(Make("bdev", 20)).ok());
    for (const char* name : {"framework_set", "bdev_malloc_create", "vhost_create"}) {
      ASSERT_TRUE(methods_
                      .Register(name,
                                [this, name](const Json& params, RpcResponder r) {
                                  calls_.push_back(std::string(name) + " " + params.dump());
                                  r.Result(true);
                                })
                      .ok());
    }
    ASSERT_TRUE(methods_
                    .Register("bdev_fail",
                              [this](const Json& params, RpcResponder r) {
                                calls_.push_back("bdev_fail " + params.dump());
                                r.Error(-17, "bdev Malloc0 already exists");
                              })
                    .ok());
    ASSERT_TRUE(methods_
                    .Register("later",
                              [this](const Json&, RpcResponder r) {
                                calls_.push_back("later");
                                pending_.push_back(std::move(r));
                              })
                    .ok());
  }

  // Replays and returns the status when it finished synchronously.
  std::optional<absl::Status> Replay(const Json& config) {
    std::optional<absl::Status> result;
    int done_calls = 0;
    ReplayConfig(config, "test.json", methods_, subsystems_, [&](absl::Status status) {
      ++done_calls;
      result = std::move(status);
    });
    EXPECT_LE(done_calls, 1);
    return result;
  }

  MethodRegistry methods_;
  SubsystemRegistry subsystems_;
  std::vector<std::string> calls_;
  std::vector<RpcResponder> pending_;
};

TEST_F(ConfigTest, SyntaxErrorReportsLineAndColumn) {
  std::string text =
      "{\n"
      "  \"subsystems\": [\n"
      "    {\"subsystem\": \"bdev\",}\n"
      "  ]\n"
      "}\n";
  absl::StatusOr<Json> config = ParseConfig(text, "etc/x.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  // The '}' after the trailing comma is line 3, column 26.
  EXPECT_EQ(config.status().message(),
            "etc/x.json:3:26: syntax error: unexpected '}'; expected string literal");
}

TEST_F(ConfigTest, SyntaxErrorAtEndOfInputAndOnFirstLine) {
  absl::StatusOr<Json> truncated = ParseConfig("{\"subsystems\": [\n", "a.json");
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().message().substr(0, 12), "a.json:2:1: ");
  absl::StatusOr<Json> empty = ParseConfig("", "b.json");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message().substr(0, 12), "b.json:1:1: ");
  absl::StatusOr<Json> literal = ParseConfig("  nul", "c.json");
  ASSERT_FALSE(literal.ok());
  EXPECT_EQ(literal.status().message().substr(0, 12), "c.json:1:6: ");
}

// Found by fuzz_config: nlohmann throws out_of_range, not parse_error, for such a number.
TEST_F(ConfigTest, NumberBeyondADoubleIsAnError) {
  absl::StatusOr<Json> config = ParseConfig("{\"subsystems\": [1e999999]}", "d.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "d.json: number overflow parsing '1e999999'");
}

using test_util::TempDir;

TEST_F(ConfigTest, LoadConfigFileErrorsNameTheFile) {
  TempDir dir;
  absl::StatusOr<Json> missing = LoadConfigFile(dir.path() + "/none.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), dir.path() + "/none.json: No such file or directory");

  std::string bad = dir.File("bad.json", "{\n  \"subsystems\": [,]\n}\n");
  absl::StatusOr<Json> syntax = LoadConfigFile(bad);
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().message(),
            bad + ":2:18: syntax error: unexpected ','; expected '[', '{', or a literal");

  std::string shape = dir.File("shape.json", R"({"subsystems": {}})");
  absl::StatusOr<Json> wrong = LoadConfigFile(shape);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), shape + ": \"subsystems\" must be an array");

  std::string good = dir.File("good.json", R"({"subsystems": []})");
  EXPECT_TRUE(LoadConfigFile(good).ok());
}

TEST_F(ConfigTest, ShapeErrorsNameTheEntry) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"([])", "src: the config must be an object with a \"subsystems\" array"},
      {R"({})", "src: \"subsystems\" must be an array"},
      {R"({"subsystems": [5]})", "src: subsystems[0] must be an object"},
      {R"({"subsystems": [{"config": []}]})", "src: subsystems[0]: \"subsystem\" must be a string"},
      {R"({"subsystems": [{"subsystem": "bdev", "config": {}}]})",
       "src: subsystems[0]: \"config\" must be an array"},
      {R"({"subsystems": [{"subsystem": "bdev", "config": []},
                          {"subsystem": "framework", "config": [{"method": 5}]}]})",
       "src: subsystems[1].config[0]: \"method\" must be a string"},
      {R"({"subsystems": [{"subsystem": "bdev", "config": [{"method": "a"}, 7]}]})",
       "src: subsystems[0].config[1] must be an object"},
      {R"({"subsystems": [{"subsystem": "bdev", "config": [{"method": "a", "params": [1]}]}]})",
       "src: subsystems[0].config[0]: \"params\" must be an object"},
      {R"({"subsystems": [{"subsystem": "bdev", "config": [{"method": "a", "param": {}}]}]})",
       "src: subsystems[0].config[0]: unknown key \"param\""},
      {R"({"subsystems": [{"subsystem": "bdev"}, {"subsystem": "bdev"}]})",
       "src: subsystems[1]: subsystem \"bdev\" is listed twice"},
      {R"({"subsystems": [{"subsystem": "nvmf", "config": [
           {"method": "nvmf_set_config"}, {"method": "nvmf_create_subsystem"}]}]})",
       "src: subsystems[0].config[1]: method \"nvmf_create_subsystem\" needs subsystem "
       "\"nvmf\", which pollux does not have (known: framework, bdev, vhost_blk); only a "
       "section that just sets options is skipped"},
  };
  for (const Case& c : cases) {
    absl::Status status = ValidateConfig(Json::parse(c.text), "src", subsystems_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(status.message(), c.message) << c.text;
  }
  EXPECT_TRUE(ValidateConfig(Json::parse(R"({"subsystems": [{"subsystem": "bdev",
      "config": null}, {"subsystem": "framework", "config": [{"method": "a", "params": null}]}]})"),
                             "src", subsystems_)
                  .ok());
}

TEST_F(ConfigTest, ReplayFollowsSubsystemOrder) {
  Json config = Json::parse(R"({"subsystems": [
      {"subsystem": "vhost_blk", "config": [{"method": "vhost_create", "params": {"c": 1}}]},
      {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {"b": 1}},
                                       {"method": "bdev_malloc_create", "params": {"b": 2}}]},
      {"subsystem": "framework", "config": [{"method": "framework_set"}]}]})");
  std::optional<absl::Status> status = Replay(config);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(calls_,
            (std::vector<std::string>{"framework_set null", "bdev_malloc_create {\"b\":1}",
                                      "bdev_malloc_create {\"b\":2}", "vhost_create {\"c\":1}"}));
}

TEST_F(ConfigTest, ReplayStopsAtFirstFailure) {
  Json config = Json::parse(R"({"subsystems": [
      {"subsystem": "vhost_blk", "config": [{"method": "vhost_create"}]},
      {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {"b": 1}},
                                       {"method": "bdev_malloc_create", "params": {"b": 2}},
                                       {"method": "bdev_fail", "params": {"b": 3}},
                                       {"method": "bdev_malloc_create", "params": {"b": 4}}]}]})");
  std::optional<absl::Status> status = Replay(config);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(status->message(),
            "test.json: subsystem \"bdev\", entry 2, method \"bdev_fail\": bdev Malloc0 already "
            "exists (code -17)");
  EXPECT_EQ(calls_,
            (std::vector<std::string>{"bdev_malloc_create {\"b\":1}",
                                      "bdev_malloc_create {\"b\":2}", "bdev_fail {\"b\":3}"}));
}

TEST_F(ConfigTest, ReplayReportsUnknownMethod) {
  Json config = Json::parse(
      R"({"subsystems": [{"subsystem": "framework", "config": [{"method": "nope"}]}]})");
  std::optional<absl::Status> status = Replay(config);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status->message(),
            "test.json: subsystem \"framework\", entry 0, method \"nope\": unknown method "
            "\"nope\" (code -32601)");
}

// SPDK's save_config writes sections for subsystems pollux lacks and option methods of modules
// pollux lacks: those that only set options are skipped, one warning line each.
TEST_F(ConfigTest, ReplaySkipsWhatOnlySetsOptionsOfPartsPolluxLacks) {
  Json config = Json::parse(R"({"subsystems": [
      {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options",
                                         "params": {"small_pool_count": 8192}}]},
      {"subsystem": "sock", "config": [{"method": "sock_set_default_impl",
                                        "params": {"impl_name": "posix"}},
                                       {"method": "sock_impl_set_options",
                                        "params": {"impl_name": "posix"}}]},
      {"subsystem": "vmd", "config": []},
      {"subsystem": "scsi", "config": null},
      {"subsystem": "bdev", "config": [{"method": "bdev_nvme_set_options",
                                        "params": {"action_on_timeout": "none"}},
                                       {"method": "bdev_nvme_set_hotplug",
                                        "params": {"enable": false}},
                                       {"method": "bdev_malloc_create", "params": {"b": 1}}]}],
      "spdk_version": "SPDK v26.01"})");
  ::testing::internal::CaptureStderr();
  std::optional<absl::Status> status = Replay(config);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(calls_, (std::vector<std::string>{"bdev_malloc_create {\"b\":1}"}));
  for (const char* line : {
           "test.json: ignoring unknown top-level key \"spdk_version\"",
           "test.json: skipping subsystem \"iobuf\": pollux does not have it, and its section "
           "only sets options (iobuf_set_options)",
           "test.json: skipping subsystem \"sock\": pollux does not have it, and its section "
           "only sets options (sock_set_default_impl, sock_impl_set_options)",
           "test.json: skipping subsystem \"vmd\": pollux does not have it, and its section is "
           "empty",
           "test.json: skipping subsystem \"scsi\"",
           "test.json: skipping method \"bdev_nvme_set_options\" of subsystem \"bdev\": it "
           "sets options of a component pollux does not have",
           "test.json: skipping method \"bdev_nvme_set_hotplug\"",
       }) {
    EXPECT_NE(log.find(line), std::string::npos) << line << "\nin:\n" << log;
  }
}

TEST_F(ConfigTest, ReplayRefusesAnUnknownMethodBeforeRunningAnything) {
  // An NVMe controller in SPDK's bdev section: pollux cannot attach one, and nothing of the
  // config runs (the target does not start half configured).
  Json config = Json::parse(R"({"subsystems": [
      {"subsystem": "framework", "config": [{"method": "framework_set"}]},
      {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {"b": 1}},
                                       {"method": "bdev_nvme_attach_controller",
                                        "params": {"name": "Nvme0"}}]}]})");
  std::optional<absl::Status> status = Replay(config);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status->message(),
            "test.json: subsystem \"bdev\", entry 1, method \"bdev_nvme_attach_controller\": "
            "unknown method \"bdev_nvme_attach_controller\" (code -32601)");
  EXPECT_TRUE(calls_.empty());
}

TEST_F(ConfigTest, ReplayWaitsForLateAnswers) {
  Json config = Json::parse(R"({"subsystems": [
      {"subsystem": "bdev", "config": [{"method": "later"}, {"method": "later"},
                                       {"method": "bdev_malloc_create"}]}]})");
  std::optional<absl::Status> result;
  ReplayConfig(config, "test.json", methods_, subsystems_,
               [&](absl::Status status) { result = std::move(status); });
  EXPECT_FALSE(result.has_value());
  ASSERT_EQ(pending_.size(), 1u);
  pending_[0].Result(true);
  EXPECT_FALSE(result.has_value());
  ASSERT_EQ(pending_.size(), 2u);
  pending_[1].Result(true);
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok());
  EXPECT_EQ(calls_, (std::vector<std::string>{"later", "later", "bdev_malloc_create null"}));
}

TEST_F(ConfigTest, ReplayOfALongConfigDoesNotRecurse) {
  // Methods that answer at once: each call must start from the same stack depth (the replay
  // loops), not one level deeper per call (recursion would overflow on long configs).
  std::vector<uintptr_t> frames;
  ASSERT_TRUE(methods_
                  .Register("frame",
                            [&frames](const Json&, RpcResponder r) {
                              frames.push_back(
                                  reinterpret_cast<uintptr_t>(__builtin_frame_address(0)));
                              r.Result(true);
                            })
                  .ok());
  Json entries = Json::array();
  for (int i = 0; i < 2000; ++i) entries.push_back({{"method", "frame"}});
  Json config = {{"subsystems", {{{"subsystem", "framework"}, {"config", entries}}}}};
  std::optional<absl::Status> status = Replay(config);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok());
  ASSERT_EQ(frames.size(), 2000u);
  auto [lowest, highest] = std::minmax_element(frames.begin(), frames.end());
  EXPECT_LT(*highest - *lowest, 4096u) << "the stack grows with each call";
}

TEST_F(ConfigTest, ReplayRefusesAnInvalidConfig) {
  std::optional<absl::Status> status = Replay(Json::parse(R"({"subsystems": 1})"));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->message(), "test.json: \"subsystems\" must be an array");
  EXPECT_TRUE(calls_.empty());
}

TEST_F(ConfigTest, SaveConfigListsEverySubsystemAndReplays) {
  // bdev knows how to rebuild its state; the others have nothing to say.
  std::vector<int> malloc_bdevs = {1, 2};
  subsystems_.Find("bdev")->write_config = [&](Json& config) {
    for (int b : malloc_bdevs) {
      config.push_back({{"method", "bdev_malloc_create"}, {"params", {{"b", b}}}});
    }
  };
  Json saved = SaveConfig(subsystems_);
  EXPECT_EQ(saved, Json::parse(R"({"subsystems": [
      {"subsystem": "framework", "config": []},
      {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {"b": 1}},
                                       {"method": "bdev_malloc_create", "params": {"b": 2}}]},
      {"subsystem": "vhost_blk", "config": []}]})"));
  EXPECT_TRUE(ValidateConfig(saved, "saved", subsystems_).ok());
  // Through text, as save_config's output is written to a file and loaded back.
  absl::StatusOr<Json> reparsed = ParseConfig(saved.dump(2), "saved");
  ASSERT_TRUE(reparsed.ok());
  std::optional<absl::Status> status = Replay(*reparsed);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok());
  EXPECT_EQ(calls_, (std::vector<std::string>{"bdev_malloc_create {\"b\":1}",
                                              "bdev_malloc_create {\"b\":2}"}));
}

}  // namespace
}  // namespace pollux::rpc
