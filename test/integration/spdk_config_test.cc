// A config written by SPDK's save_config (data/spdk_save_config.json: SPDK's exact output for a
// target with malloc, null, passthru, error, delay, aio and uring bdevs and a vhost-blk
// controller, every subsystem SPDK writes by default) starts pollux-tgt unchanged; what pollux
// cannot do is refused by name before anything is created.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The committed config, with its two backing files moved into `dir` (created, 64 MiB each).
std::string SpdkConfig(const TempDir& dir) {
  std::string text = ReadFile(std::string(POLLUX_TEST_DATA_DIR) + "/spdk_save_config.json");
  EXPECT_FALSE(text.empty());
  for (const char* file : {"aio0.img", "uring0.img"}) {
    int fd = ::open(dir.File(file).c_str(), O_CREAT | O_RDWR, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, 64 << 20), 0);
    ::close(fd);
    ReplaceAll(text, std::string("/var/tmp/") + file, dir.File(file));
  }
  return text;
}

RunResult StartWith(const TempDir& dir, const std::string& text) {
  return RunProgram({TgtPath(), "--cpus", "0", "-r", dir.File("refused.sock"), "-S", dir.path(),
                     "-c", dir.Write("refused.json", text)});
}

TEST(SpdkConfig, WrittenBySpdkStartsTheTargetUnchanged) {
  TempDir dir;
  Target target({"--cpus", "0", "-S", dir.path(), "-c", dir.Write("spdk.json", SpdkConfig(dir))});
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult r = target.Rpc({"bdev_get_bdevs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> names;
  json uuids;
  for (const json& bdev : json::parse(r.out)) {
    names.insert(bdev["name"].get<std::string>());
    uuids[bdev["name"].get<std::string>()] = bdev["uuid"];
  }
  // The virtual bdevs come before their bases in SPDK's order: they appear with them.
  EXPECT_THAT(names,
              IsSupersetOf({"Malloc0", "Null0", "PT0", "EE_Null0", "Delay0", "AIO0", "Uring0"}));
  EXPECT_EQ(uuids["Malloc0"], "6f2d1c9e-2a55-4f3b-9c1e-0d1a2b3c4d01");
  EXPECT_EQ(uuids["PT0"], "6f2d1c9e-2a55-4f3b-9c1e-0d1a2b3c4d03");
  r = target.Rpc({"vhost_get_controllers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)[0]["ctrlr"], "vhost.0");

  // One warning line for each thing skipped or ignored; nothing silently.
  std::string log = target.Stderr();
  for (const char* subsystem : {"keyring", "iobuf", "sock", "vmd", "accel", "scsi", "vhost_scsi",
                                "ublk", "nvmf", "iscsi"}) {
    EXPECT_THAT(log, HasSubstr(std::string("skipping subsystem \"") + subsystem + "\""));
  }
  EXPECT_THAT(log, HasSubstr("skipping method \"bdev_nvme_set_options\""));
  EXPECT_THAT(log, HasSubstr("bdev_null_create: ignoring SPDK's parameters that pollux does not "
                             "use: dif_is_head_of_md"));
  EXPECT_THAT(log, HasSubstr("optimal_write_size"));
  EXPECT_THAT(log, HasSubstr("bdev_malloc_create: ignoring SPDK's parameters"));
}

TEST(SpdkConfig, WhatWouldChangeTheDataOrCannotBeDoneIsRefusedByName) {
  TempDir dir;
  const json config = json::parse(SpdkConfig(dir));
  auto bdev_section = [](json& c) -> json& {
    for (json& subsystem : c["subsystems"]) {
      if (subsystem["subsystem"] == "bdev") return subsystem["config"];
    }
    return c;
  };

  json metadata = config;
  for (json& entry : bdev_section(metadata)) {
    if (entry["method"] == "bdev_malloc_create") entry["params"]["md_size"] = 8;
  }
  RunResult r = StartWith(dir, metadata.dump(2));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("bdev_malloc_create"));
  EXPECT_THAT(r.err, HasSubstr("parameter \"md_size\" is 8, which pollux does not support"));

  json nvme = config;
  bdev_section(nvme).insert(
      bdev_section(nvme).begin() + 1,
      json{{"method", "bdev_nvme_attach_controller"},
           {"params", {{"name", "Nvme0"}, {"trtype", "PCIe"}, {"traddr", "0000:00:04.0"}}}});
  r = StartWith(dir, nvme.dump(2));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("method \"bdev_nvme_attach_controller\": unknown method"));
  // Refused before the replay ran anything: no bdev was created, so none was logged.
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("will be created when it appears")));
}

}  // namespace
}  // namespace pollux::testing
