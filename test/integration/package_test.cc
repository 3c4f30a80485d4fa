// The Debian packages of scripts/package.sh (built by the PackageBuild test, this suite's
// fixture, into POLLUX_PACKAGE_DIR), checked as a user and a module author meet them:
//  - what each package holds (dpkg-deb -c) and nothing outside /usr;
//  - the control fields: names, version, the dependencies dpkg-shlibdeps found, shlibs and the
//    ldconfig trigger of the library package;
//  - the programs and libraries: stripped, no RPATH, hardened (BIND_NOW);
//  - lintian: no error, and only the warnings named below;
//  - unpacked (dpkg-deb -x, no install on this machine): the programs run from the packages,
//    and the RAID0 example builds against libpollux-dev with pkg-config and loads as a plugin.
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kVersion[] = POLLUX_PROJECT_VERSION;
constexpr char kSoversion[] = POLLUX_SOVERSION;
constexpr char kLibDir[] = "usr/lib/" POLLUX_MULTIARCH;

std::string LibraryPackage() { return std::string("libpollux") + kSoversion; }

// The path of package `name`'s .deb in POLLUX_PACKAGE_DIR ("" when there is none).
std::string DebOf(const std::string& name) {
  std::string path = std::string(POLLUX_PACKAGE_DIR) + "/" + name + "_" + kVersion + "_" +
                     POLLUX_DEB_ARCH + ".deb";
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? path : "";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The components pollux installs, from CMake (comma-separated).
std::vector<std::string> Components() {
  std::vector<std::string> names;
  std::istringstream in(POLLUX_COMPONENTS);
  for (std::string name; std::getline(in, name, ',');) names.push_back(name);
  return names;
}

// Bad arguments stop the script before it installs or builds anything.
TEST(PackageScript, BadArgumentsAreRefusedWithTheUsage) {
  const std::string script = std::string(POLLUX_SOURCE_DIR) + "/scripts/package.sh";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--bogus"}, {"--out"}, {"--build-dir"}, {"--out", ""}, {"--build-dir", "x", "y"}}) {
    std::vector<std::string> argv{script};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult run = RunProgram(argv, seconds(30));
    EXPECT_EQ(run.exit_code, 2) << args[0] << ": " << Describe(run);
    EXPECT_THAT(run.err, HasSubstr("see the usage")) << args[0];
  }
}

class DebianPackages : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new TempDir;
    for (const std::string& name :
         {LibraryPackage(), std::string("pollux"), std::string("libpollux-dev")}) {
      std::string deb = DebOf(name);
      if (deb.empty()) continue;
      RunResult unpacked = RunProgram({"/usr/bin/dpkg-deb", "-x", deb, root_->path()});
      if (unpacked.exit_code != 0) unpack_errors_ += name + ": " + Describe(unpacked) + "\n";
    }
  }
  static void TearDownTestSuite() { delete root_; }
  void SetUp() override {
    for (const char* name : {"pollux", "libpollux-dev"}) {
      ASSERT_FALSE(DebOf(name).empty())
          << "no " << name << " package in " << POLLUX_PACKAGE_DIR
          << ": the PackageBuild test (scripts/package.sh) makes them";
    }
    ASSERT_FALSE(DebOf(LibraryPackage()).empty()) << "no " << LibraryPackage() << " package";
    ASSERT_THAT(unpack_errors_, IsEmpty());
  }

  // The files (not folders) package `name` holds, as absolute paths.
  static std::set<std::string> FilesOf(const std::string& name) {
    std::set<std::string> files;
    RunResult tar = RunProgram(
        {"/usr/bin/env", "sh", "-c", "dpkg-deb --fsys-tarfile \"$0\" | tar -t", DebOf(name)});
    EXPECT_EQ(tar.exit_code, 0) << Describe(tar);
    for (const std::string& line : Lines(tar.out)) {
      if (line.empty() || line.back() == '/') continue;
      files.insert(line.substr(line.find('/')));  // "./usr/..." -> "/usr/..."
    }
    return files;
  }
  static std::string Field(const std::string& name, const std::string& field) {
    RunResult shown = RunProgram({"/usr/bin/dpkg-deb", "-f", DebOf(name), field});
    EXPECT_EQ(shown.exit_code, 0) << Describe(shown);
    return shown.out.empty() ? "" : shown.out.substr(0, shown.out.find_last_not_of('\n') + 1);
  }
  static std::string Unpacked(const std::string& relative) {
    return root_->path() + "/" + relative;
  }
  // Runs a program from the unpacked packages, which finds its libraries there.
  static RunResult RunUnpacked(std::vector<std::string> argv, seconds timeout = seconds(60)) {
    argv.insert(argv.begin(), {"/usr/bin/env", "LD_LIBRARY_PATH=" + Unpacked(kLibDir)});
    return RunProgram(argv, timeout);
  }

  static TempDir* root_;
  static std::string unpack_errors_;
};

TempDir* DebianPackages::root_ = nullptr;
std::string DebianPackages::unpack_errors_;

TEST_F(DebianPackages, EachPackageHoldsItsPartAndNothingOutsideUsr) {
  std::set<std::string> libs = FilesOf(LibraryPackage());
  std::set<std::string> runtime = FilesOf("pollux");
  std::set<std::string> dev = FilesOf("libpollux-dev");
  const std::string lib_dir = std::string("/") + kLibDir;
  for (const std::string& component : Components()) {
    const std::string library = lib_dir + "/libpollux_" + component + ".so";
    EXPECT_TRUE(libs.count(library + "." + kSoversion)) << library << "." << kSoversion;
    EXPECT_TRUE(libs.count(library + "." + kVersion)) << library << "." << kVersion;
    EXPECT_TRUE(dev.count(library)) << "namelink " << library;
    EXPECT_FALSE(libs.count(library)) << "namelink " << library << " in the library package";
    std::string pc_name = component;
    std::replace(pc_name.begin(), pc_name.end(), '_', '-');
    EXPECT_TRUE(dev.count(lib_dir + "/pkgconfig/pollux-" + pc_name + ".pc")) << component;
  }
  for (const char* program : {"pollux-tgt", "pollux-rpc", "pollux-perf", "pollux-top"}) {
    EXPECT_TRUE(runtime.count(std::string("/usr/bin/") + program)) << program;
    EXPECT_TRUE(runtime.count(std::string("/usr/share/man/man1/") + program + ".1.gz"))
        << program << "'s manual page";
  }
  for (const char* file :
       {"/usr/share/pollux/etc/bdev-malloc.json", "/usr/share/pollux/etc/vhost-blk.json",
        "/usr/share/doc/pollux/README.md", "/usr/share/doc/pollux/bdev-module-guide.md"}) {
    EXPECT_TRUE(runtime.count(file)) << file;
  }
  for (const std::string& file : std::vector<std::string>{
           "/usr/include/pollux/bdev/bdev_module.h", "/usr/include/pollux/env/version.h",
           lib_dir + "/cmake/pollux/polluxConfig.cmake",
           lib_dir + "/cmake/pollux/polluxConfigVersion.cmake",
           lib_dir + "/cmake/pollux/PolluxComponent.cmake",
           lib_dir + "/pkgconfig/pollux-bdev-modules.pc"}) {
    EXPECT_TRUE(dev.count(file)) << file;
  }
  // Debian's copyright file and changelog in every package's own doc folder.
  for (const auto& [name, files] : std::map<std::string, const std::set<std::string>*>{
           {LibraryPackage(), &libs}, {"pollux", &runtime}, {"libpollux-dev", &dev}}) {
    EXPECT_TRUE(files->count("/usr/share/doc/" + name + "/copyright")) << name;
    EXPECT_TRUE(files->count("/usr/share/doc/" + name + "/changelog.gz")) << name;
    for (const std::string& file : *files) {
      EXPECT_EQ(file.rfind("/usr/", 0), 0u) << name << " installs " << file;
      // Nothing of the build machine leaks in (a build folder, a test's temporary prefix).
      EXPECT_THAT(file, Not(HasSubstr(POLLUX_BUILD_DIR))) << name;
    }
  }
  // Headers and the SDK only in -dev; the programs only in pollux.
  for (const std::string& file : libs) {
    EXPECT_EQ(file.rfind("/usr/include/", 0), std::string::npos) << file;
    EXPECT_EQ(file.rfind("/usr/bin/", 0), std::string::npos) << file;
  }
}

TEST_F(DebianPackages, ControlFieldsNameTheDependencies) {
  EXPECT_EQ(Field("pollux", "Version"), kVersion);
  EXPECT_EQ(Field("pollux", "Architecture"), POLLUX_DEB_ARCH);
  EXPECT_EQ(Field(LibraryPackage(), "Section"), "libs");
  EXPECT_EQ(Field("libpollux-dev", "Section"), "libdevel");
  const std::string exact = LibraryPackage() + " (= " + kVersion + ")";
  EXPECT_THAT(Field("pollux", "Depends"), HasSubstr(exact));
  // From dpkg-shlibdeps: the Debian libraries pollux's libraries link.
  const std::string lib_depends = Field(LibraryPackage(), "Depends");
  for (const char* package : {"libc6", "libstdc++6", "librte-eal", "librte-ring", "librte-vhost",
                              "libabsl", "liburing2", "libaio1"}) {
    EXPECT_THAT(lib_depends, HasSubstr(package)) << LibraryPackage() << " Depends";
  }
  const std::string dev_depends = Field("libpollux-dev", "Depends");
  for (const std::string& package :
       {exact, std::string("libdpdk-dev"), std::string("libabsl-dev"),
        std::string("nlohmann-json3-dev"), std::string("liburing-dev")}) {
    EXPECT_THAT(dev_depends, HasSubstr(package)) << "libpollux-dev Depends";
  }
  // The library package tells dpkg-shlibdeps of packages built on it what to depend on, and
  // refreshes the linker cache through libc's trigger.
  RunResult shlibs = RunProgram({"/usr/bin/dpkg-deb", "-I", DebOf(LibraryPackage()), "shlibs"});
  ASSERT_EQ(shlibs.exit_code, 0) << Describe(shlibs);
  EXPECT_THAT(shlibs.out, HasSubstr(std::string("libpollux_bdev ") + kSoversion + " " +
                                    LibraryPackage() + " (>= " + kVersion + ")"));
  RunResult triggers = RunProgram({"/usr/bin/dpkg-deb", "-I", DebOf(LibraryPackage()), "triggers"});
  ASSERT_EQ(triggers.exit_code, 0) << Describe(triggers);
  EXPECT_THAT(triggers.out, HasSubstr("activate-noawait ldconfig"));
}

TEST_F(DebianPackages, ProgramsAndLibrariesAreStrippedHardenedAndWithoutRpath) {
  std::vector<std::string> elves;
  for (const char* program : {"pollux-tgt", "pollux-rpc", "pollux-perf", "pollux-top"}) {
    elves.push_back(Unpacked(std::string("usr/bin/") + program));
  }
  for (const std::string& component : Components()) {
    elves.push_back(Unpacked(kLibDir) + "/libpollux_" + component + ".so." + kVersion);
  }
  for (const std::string& elf : elves) {
    RunResult dynamic = RunProgram({"/usr/bin/readelf", "--dynamic", "--wide", elf});
    ASSERT_EQ(dynamic.exit_code, 0) << Describe(dynamic);
    // A system install needs no search path; one into /usr would be a lintian error.
    EXPECT_THAT(dynamic.out, Not(HasSubstr("RPATH"))) << elf;
    EXPECT_THAT(dynamic.out, Not(HasSubstr("RUNPATH"))) << elf;
    EXPECT_THAT(dynamic.out, HasSubstr("BIND_NOW")) << elf;
    RunResult sections = RunProgram({"/usr/bin/readelf", "--sections", "--wide", elf});
    ASSERT_EQ(sections.exit_code, 0) << Describe(sections);
    EXPECT_THAT(sections.out, Not(HasSubstr(".debug_info"))) << elf;
    EXPECT_THAT(sections.out, Not(HasSubstr(".symtab"))) << elf;
  }
}

// What lintian says, tag by tag. Accepted warnings, each for a reason:
//  - package-name-doesnt-match-sonames: one package holds all of pollux's libraries, which share
//    one version and SONAME and always move together (a package per library would be 16);
//  - maintscript-calls-ldconfig: CPack writes postinst/postrm scripts calling ldconfig for any
//    library under /usr/lib; the package also carries the ldconfig trigger Debian asks for.
TEST_F(DebianPackages, LintianFindsNoErrorAndOnlyTheAcceptedWarnings) {
  RunResult lint = RunProgram({"/usr/bin/lintian", "--tag-display-limit", "0",
                               DebOf(LibraryPackage()), DebOf("pollux"), DebOf("libpollux-dev")},
                              seconds(300));
  const std::set<std::string> accepted = {"package-name-doesnt-match-sonames",
                                          "maintscript-calls-ldconfig"};
  // A tag line: "<severity>: <package>[ <type>]: <tag> [<details>]".
  for (const std::string& line : Lines(lint.out)) {
    if (line.size() < 4 || line[1] != ':' || line[2] != ' ' ||
        std::string("EWIXOP").find(line[0]) == std::string::npos) {
      continue;
    }
    const size_t tag_at = line.find(": ", 3);
    if (tag_at == std::string::npos) continue;
    const std::string tag = line.substr(tag_at + 2, line.find(' ', tag_at + 2) - (tag_at + 2));
    EXPECT_NE(line[0], 'E') << line;
    if (line[0] == 'W') {
      EXPECT_TRUE(accepted.count(tag)) << "unexpected warning: " << line;
    }
  }
  // 0: ran and found no error (1: lintian itself failed, 2: errors found).
  EXPECT_EQ(lint.exit_code, 0) << Describe(lint);
}

TEST_F(DebianPackages, UnpackedProgramsRunAndServeTheShippedConfig) {
  for (const char* program : {"pollux-tgt", "pollux-rpc", "pollux-perf", "pollux-top"}) {
    RunResult version = RunUnpacked({Unpacked(std::string("usr/bin/") + program), "--version"});
    EXPECT_EQ(version.exit_code, 0) << program << ": " << Describe(version);
    EXPECT_EQ(version.out, std::string(program) + " " + kVersion + "\n");
  }
  // pollux-tgt from the package on the example config the package ships.
  Target target({"LD_LIBRARY_PATH=" + Unpacked(kLibDir), Unpacked("usr/bin/pollux-tgt"), "-m", "0",
                 "-c", Unpacked("usr/share/pollux/etc/bdev-malloc.json")},
                "", "/usr/bin/env");
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult bdevs =
      RunUnpacked({Unpacked("usr/bin/pollux-rpc"), "-s", target.socket(), "bdev_get_bdevs"});
  ASSERT_EQ(bdevs.exit_code, 0) << Describe(bdevs);
  json list = json::parse(bdevs.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(list.is_array()) << bdevs.out;
  EXPECT_FALSE(list.empty()) << bdevs.out;
  EXPECT_EQ(target.Signal(SIGTERM), 0) << target.Stderr();
}

TEST_F(DebianPackages, Raid0ExampleBuildsAgainstTheDevPackageAndLoads) {
  TempDir out;
  // pkg-config's files find their prefix from where they lie: the unpacked /usr here.
  RunResult built =
      RunProgram({"/usr/bin/env", "PKG_CONFIG_PATH=" + Unpacked(kLibDir) + "/pkgconfig", "make",
                  "-C", POLLUX_RAID0_PROJECT_DIR, "OUT=" + out.path()},
                 seconds(300));
  ASSERT_EQ(built.exit_code, 0) << "make in examples/raid0: " << Describe(built);
  RunResult verified =
      RunUnpacked({Unpacked("usr/bin/pollux-perf"), "--plugin", out.File("pollux_raid0.so"), "-c",
                   POLLUX_RAID0_CONFIG, "-b", "Raid0", "-q", "8", "-o", "192k", "-w", "verify",
                   "-t", "2", "-m", "0", "--json"},
                  seconds(120));
  ASSERT_EQ(verified.exit_code, 0) << "pollux-perf -w verify on Raid0: " << Describe(verified);
  json report = json::parse(verified.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(report.is_object()) << verified.out;
  EXPECT_GT(report["total"].value("ops", 0), 0) << verified.out;
}

}  // namespace
}  // namespace pollux::testing
