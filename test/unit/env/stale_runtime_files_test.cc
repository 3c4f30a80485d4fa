// The runtime folders of pollux processes that are gone are removed; nothing else is.
#include "stale_runtime_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pollux {
namespace {

// A pid that belonged to a process and is free now (a child that exited and was reaped).
pid_t GonePid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST(StaleRuntimeDirs, OnlyThoseOfPolluxProcessesThatAreGoneAreRemoved) {
  char tmpl[] = "/tmp/pollux-runtime-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path base = tmpl;
  const std::string gone = "pollux_" + std::to_string(GonePid());
  const std::string alive = "pollux_" + std::to_string(getpid());
  for (const std::string& name : {gone, alive, std::string("pollux_12abc"),
                                  std::string("spdk_pid1"), std::string("pollux_")}) {
    std::filesystem::create_directory(base / name);
    std::ofstream(base / name / "config") << "x";
  }
  EXPECT_EQ(RemoveStaleRuntimeDirs(base), 1);
  EXPECT_FALSE(std::filesystem::exists(base / gone));
  EXPECT_TRUE(std::filesystem::exists(base / alive));
  EXPECT_TRUE(std::filesystem::exists(base / "pollux_12abc"));
  EXPECT_TRUE(std::filesystem::exists(base / "spdk_pid1"));
  EXPECT_TRUE(std::filesystem::exists(base / "pollux_"));
  EXPECT_EQ(RemoveStaleRuntimeDirs((base / "missing").native()), 0);
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace pollux
