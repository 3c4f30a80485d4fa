// The module SDK, as a module author meets it: this build installed into a temporary prefix
// (once for the suite), then
//  - the installed tree checked: programs that run from there, shared libraries with their
//    SONAME, headers, the CMake package, pkg-config files, example configs and docs;
//  - test/sdk (find_package(pollux), a "zero" module linked into its own target) built and run;
//  - examples/raid0 (the RAID0 plugin) built once with find_package and once with pkg-config,
//    each loaded into the installed pollux-tgt and driven by the installed pollux-perf -w verify;
//  - the sh blocks of docs/bdev-module-guide.md's section 11 run as written, so the guide
//    cannot drift from what works.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kZeroConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_zero_create", "params": {"name": "Zero0", "num_blocks": 2048}},
  {"method": "bdev_null_create",
   "params": {"name": "Null0", "num_blocks": 2048, "block_size": 512}}]}]})";

// pollux-<component>.pc names its component with dashes (bdev_null -> bdev-null).
// (std::regex is avoided: g++ 12 warns inside it under the sanitizers.)
std::string PkgConfigName(std::string component) {
  std::replace(component.begin(), component.end(), '_', '-');
  return component;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class ModuleSdk : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // DESTDIR from the caller's environment would move the install away from the prefix.
    unsetenv("DESTDIR");
    dir_ = new TempDir;
    install_ = new RunResult(RunProgram(
        {POLLUX_CMAKE_COMMAND, "--install", POLLUX_BUILD_DIR, "--prefix", Prefix()}, seconds(120)));
  }
  static void TearDownTestSuite() {
    delete install_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_EQ(install_->exit_code, 0)
        << "cmake --install " << POLLUX_BUILD_DIR << " failed: " << Describe(*install_);
  }

  static std::string Prefix() { return dir_->File("prefix"); }
  static std::string Installed(const std::string& relative) { return Prefix() + "/" + relative; }
  static std::string LibDir() { return Installed(POLLUX_INSTALL_LIBDIR); }

  // Configures and builds the CMake project `source` against the installed SDK into `build`.
  static void BuildWithCMake(const std::string& source, const std::string& build) {
    RunResult configured = RunProgram(
        {POLLUX_CMAKE_COMMAND, "-S", source, "-B", build, "-G", POLLUX_CMAKE_GENERATOR,
         "-DCMAKE_MAKE_PROGRAM=" POLLUX_MAKE_PROGRAM, "-DCMAKE_CXX_COMPILER=" POLLUX_CXX_COMPILER,
         "-DCMAKE_CXX_FLAGS=" POLLUX_CXX_FLAGS, "-DCMAKE_BUILD_TYPE=" POLLUX_BUILD_TYPE,
         "-DCMAKE_PREFIX_PATH=" + Prefix()},
        seconds(120));
    ASSERT_EQ(configured.exit_code, 0) << "configuring " << source << ": " << Describe(configured);
    // The package found is the one just installed, not another pollux on this machine.
    EXPECT_THAT(configured.out,
                HasSubstr("pollux " POLLUX_PROJECT_VERSION " from " + Prefix() + "/"));
    RunResult built =
        RunProgram({POLLUX_CMAKE_COMMAND, "--build", build, "--parallel", "2"}, seconds(300));
    ASSERT_EQ(built.exit_code, 0) << "building " << source << ": " << Describe(built);
  }

  // Loads the RAID0 plugin at `plugin` into the installed pollux-tgt (RAID0 over two malloc
  // bdevs, examples/raid0/raid0.json), then runs the installed pollux-perf -w verify on it.
  static void LoadAndVerifyRaid0(const std::string& plugin) {
    {
      Target target({"-m", "0", "--plugin", plugin, "-c", POLLUX_RAID0_CONFIG}, "",
                    Installed("bin/pollux-tgt"));
      ASSERT_TRUE(target.running()) << "pollux-tgt --plugin " << plugin << ":\n" << target.Stderr();
      RunResult raids = target.Rpc({"bdev_raid_get_bdevs", "--category", "online"});
      ASSERT_EQ(raids.exit_code, 0) << Describe(raids);
      json list = json::parse(raids.out, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(list.is_array() && list.size() == 1) << raids.out;
      EXPECT_EQ(list[0].value("name", ""), "Raid0");
      EXPECT_EQ(list[0].value("num_base_bdevs_discovered", 0), 2);
      EXPECT_EQ(target.Signal(SIGTERM), 0) << target.Stderr();
    }
    // Request sizes across the strip (64 KiB): 4 KiB inside one, 192 KiB over four.
    for (const char* size : {"4k", "192k"}) {
      RunResult verified = RunProgram(
          {Installed("bin/pollux-perf"), "--plugin", plugin, "-c", POLLUX_RAID0_CONFIG, "-b",
           "Raid0", "-q", "8", "-o", size, "-w", "verify", "-t", "2", "-m", "0", "--json"},
          seconds(120));
      ASSERT_EQ(verified.exit_code, 0)
          << "pollux-perf -w verify -o " << size << " on Raid0: " << Describe(verified);
      json report = json::parse(verified.out, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(report.is_object()) << verified.out;
      EXPECT_GT(report["total"].value("ops", 0), 0) << verified.out;
    }
  }

  static TempDir* dir_;
  static RunResult* install_;
};

TempDir* ModuleSdk::dir_ = nullptr;
RunResult* ModuleSdk::install_ = nullptr;

TEST_F(ModuleSdk, InstalledTreeHoldsProgramsLibrariesHeadersPackagesConfigsAndDocs) {
  // From the prefix, wherever it is: the programs find the libraries beside them.
  for (const char* program : {"pollux-tgt", "pollux-perf"}) {
    RunResult version = RunProgram({Installed(std::string("bin/") + program), "--version"});
    EXPECT_EQ(version.exit_code, 0) << program << ": " << Describe(version);
    EXPECT_THAT(version.out, HasSubstr(POLLUX_PROJECT_VERSION)) << program;
  }
  RunResult help = RunProgram({Installed("bin/pollux-rpc"), "--help"});
  EXPECT_EQ(help.exit_code, 0) << "pollux-rpc: " << Describe(help);
  const std::string soversion = POLLUX_SOVERSION;
  for (const char* component : {"env", "rpc", "reactor", "scheduler", "bdev", "bdev_file",
                                "bdev_null", "bdev_malloc", "bdev_uring", "virtio", "app"}) {
    std::string library = LibDir() + "/libpollux_" + component + ".so";
    EXPECT_TRUE(Exists(library)) << library;
    EXPECT_TRUE(Exists(library + "." + soversion)) << library << "." << soversion;
    EXPECT_TRUE(Exists(LibDir() + "/pkgconfig/pollux-" + PkgConfigName(component) + ".pc"))
        << component;
  }
  for (const char* file : {"include/pollux/bdev/bdev.h", "include/pollux/bdev/bdev_module.h",
                           "include/pollux/env/version.h", "include/pollux/env/abi_stamp.h",
                           "include/pollux/reactor/thread.h", "share/pollux/etc/pollux.json",
                           "share/doc/pollux/README.md", "share/doc/pollux/bdev-module-guide.md"}) {
    EXPECT_TRUE(Exists(Installed(file))) << file;
  }
  EXPECT_TRUE(Exists(LibDir() + "/cmake/pollux/polluxConfig.cmake"));
  EXPECT_TRUE(Exists(LibDir() + "/cmake/pollux/PolluxComponent.cmake"));

  // pkg-config answers from the installed files alone.
  auto pkg_config = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "PKG_CONFIG_PATH=" + LibDir() + "/pkgconfig",
                                     "pkg-config"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv);
  };
  RunResult flags = pkg_config({"--cflags", "--libs", "pollux-bdev"});
  ASSERT_EQ(flags.exit_code, 0) << Describe(flags);
  EXPECT_THAT(flags.out, HasSubstr("-lpollux_bdev"));
  EXPECT_THAT(flags.out, HasSubstr("-lpollux_reactor"));
  EXPECT_THAT(flags.out, HasSubstr("-std=c++20"));
  RunResult includedir = pkg_config({"--variable=includedir", "pollux-bdev"});
  ASSERT_EQ(includedir.exit_code, 0) << Describe(includedir);
  std::string headers = includedir.out.substr(0, includedir.out.find('\n'));
  EXPECT_TRUE(Exists(headers + "/pollux/bdev/bdev.h")) << headers;
  RunResult modules = pkg_config({"--libs", "pollux-bdev-modules"});
  ASSERT_EQ(modules.exit_code, 0) << Describe(modules);
  EXPECT_THAT(modules.out, HasSubstr("-Wl,--no-as-needed -lpollux_bdev_file -lpollux_bdev_malloc"));
}

TEST_F(ModuleSdk, ModuleLinkedIntoItsOwnTargetBuildsAndRuns) {
  const std::string build = dir_->File("build-sdk");
  BuildWithCMake(POLLUX_SDK_PROJECT_DIR, build);
  if (HasFatalFailure()) return;
  Target target({"-m", "0-1", "-c", dir_->Write("zero.json", kZeroConfig)}, "",
                build + "/zero-tgt");
  ASSERT_TRUE(target.running()) << "zero-tgt did not start:\n" << target.Stderr();
  RunResult listed = target.Rpc({"bdev_get_bdevs"});
  ASSERT_EQ(listed.exit_code, 0) << "bdev_get_bdevs: " << Describe(listed);
  json bdevs = json::parse(listed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(bdevs.is_array()) << "bdev_get_bdevs did not return an array: " << listed.out;
  std::map<std::string, std::string> modules;  // bdev name -> module
  for (const json& bdev : bdevs) modules[bdev.value("name", "")] = bdev.value("module", "");
  // The null module comes from the installed pollux::bdev_modules: its libraries were kept on
  // the link line although zero-tgt calls none of their functions.
  EXPECT_THAT(modules, UnorderedElementsAre(Pair("Zero0", "zero"), Pair("Null0", "null")))
      << listed.out;
  EXPECT_EQ(target.Signal(SIGTERM), 0) << "zero-tgt did not shut down cleanly:\n"
                                       << target.Stderr();
}

TEST_F(ModuleSdk, Raid0PluginBuiltWithFindPackageLoadsAndVerifies) {
  const std::string build = dir_->File("build-raid0");
  BuildWithCMake(POLLUX_RAID0_PROJECT_DIR, build);
  if (HasFatalFailure()) return;
  LoadAndVerifyRaid0(build + "/pollux_raid0.so");
}

TEST_F(ModuleSdk, Raid0PluginBuiltWithPkgConfigLoadsAndVerifies) {
  const std::string out = dir_->File("make-raid0");
  ASSERT_EQ(mkdir(out.c_str(), 0755), 0);
  RunResult built = RunProgram({"/usr/bin/env", "PKG_CONFIG_PATH=" + LibDir() + "/pkgconfig",
                                "make", "-C", POLLUX_RAID0_PROJECT_DIR, "OUT=" + out,
                                "CXX=" POLLUX_CXX_COMPILER, "CXXFLAGS=-O2 -g " POLLUX_CXX_FLAGS},
                               seconds(300));
  ASSERT_EQ(built.exit_code, 0) << "make (pkg-config) in examples/raid0: " << Describe(built);
  LoadAndVerifyRaid0(out + "/pollux_raid0.so");
}

// The shell commands of the guide's section `heading` ("## 11. ..."), one per line:
// continuation lines joined, blank lines dropped.
std::vector<std::string> GuideCommands(const std::string& guide, const std::string& heading) {
  std::ifstream in(guide);
  std::vector<std::string> commands;
  bool in_section = false;
  bool in_sh = false;
  std::string pending;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line.rfind(heading, 0) == 0;
    if (!in_section) continue;
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (!in_sh) continue;
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    pending += line;
    if (pending.find_first_not_of(' ') != std::string::npos) commands.push_back(pending);
    pending.clear();
  }
  return commands;
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// What a module author copies from the guide: install, build the example both ways, load it,
// drive it. Run by sh -e in a folder holding a copy of examples/raid0 (the Makefile builds in
// place), with /opt/pollux and the RPC socket moved to temporary paths. The guide's first line
// configures and builds pollux: that is this suite's build, whose folder the install line gets.
TEST_F(ModuleSdk, GuideSection11CommandsRunAsWritten) {
  std::vector<std::string> commands =
      GuideCommands(POLLUX_SOURCE_DIR "/docs/bdev-module-guide.md", "## 11.");
  ASSERT_FALSE(commands.empty()) << "no sh block in the guide's section 11";
  const std::string work = dir_->File("guide");
  const std::string prefix = dir_->File("guide-prefix");
  ASSERT_EQ(mkdir(work.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((work + "/examples").c_str(), 0755), 0);
  RunResult copied =
      RunProgram({"/bin/cp", "-r", POLLUX_RAID0_PROJECT_DIR, work + "/examples/raid0"});
  ASSERT_EQ(copied.exit_code, 0) << Describe(copied);

  std::string script = "set -ex\ncd '" + work + "'\n";
  int builds_of_pollux = 0;
  bool installs = false;
  for (std::string command : commands) {
    if (command.rfind("cmake -S pollux ", 0) == 0) {
      ++builds_of_pollux;
      continue;
    }
    if (command.rfind("cmake --install build ", 0) == 0) {
      installs = true;
      command = ReplaceAll(command, "cmake --install build ",
                           std::string("cmake --install ") + POLLUX_BUILD_DIR + " ");
    }
    command = ReplaceAll(command, "/opt/pollux", prefix);
    command = ReplaceAll(command, "/var/tmp/raid0.sock", work + "/raid0.sock");
    script += command + "\n";
  }
  EXPECT_EQ(builds_of_pollux, 1) << "the guide no longer builds pollux the way this test expects";
  EXPECT_TRUE(installs) << "the guide no longer installs with cmake --install build";
  for (const char* step : {"cmake -S examples/raid0", "make -C examples/raid0", "--plugin",
                           "pollux-rpc", "-w verify"}) {
    EXPECT_THAT(script, HasSubstr(step)) << "the guide's commands lost a step";
  }
  RunResult ran = RunProgram({"/bin/sh", "-c", script}, seconds(540));
  ASSERT_EQ(ran.exit_code, 0) << "the guide's section 11, run as:\n" << script << Describe(ran);
  // bdev_raid_get_bdevs printed the RAID, and pollux-perf verified it with no failure.
  EXPECT_THAT(ran.out, HasSubstr("\"name\": \"Raid0\"")) << ran.out;
  EXPECT_THAT(ran.out,
              ::testing::ContainsRegex("\nRaid0 +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\\.00 "))
      << ran.out;
}

}  // namespace
}  // namespace pollux::testing
