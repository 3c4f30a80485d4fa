// EAL arguments and initialisation. EAL can be initialised once per process: only
// InitEalTest.InitialisesOnce does it, and it keeps the session for the rest of the process so
// that --gtest_repeat works.
#include "pollux/env/eal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pollux/env/cpu_list.h"

namespace pollux {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Args(const EalOptions& options, std::vector<int>* cpus = nullptr) {
  auto args = BuildEalArgs(options, cpus);
  EXPECT_TRUE(args.ok()) << args.status();
  return args.ok() ? *args : std::vector<std::string>{};
}

TEST(BuildEalArgsTest, DefaultsNeedNoHugepagesNoSharedConfigNoPci) {
  std::vector<std::string> args = Args({});
  EXPECT_THAT(args, Contains("--no-huge"));
  EXPECT_THAT(args, Contains("--no-shconf"));
  EXPECT_THAT(args, Contains("--no-pci"));
  EXPECT_THAT(args, Contains("--no-telemetry"));
  EXPECT_THAT(args, Not(Contains("--in-memory")));
  EXPECT_THAT(args, Contains("--main-lcore=0"));
}

TEST(BuildEalArgsTest, FilePrefixIsPerProcess) {
  EXPECT_THAT(Args({}), Contains(absl::StrCat("--file-prefix=pollux_", getpid())));
  EalOptions options;
  options.file_prefix = "mine";
  EXPECT_THAT(Args(options), Contains("--file-prefix=mine"));
}

TEST(BuildEalArgsTest, HugepagesUseInMemory) {
  EalOptions options;
  options.hugepages = true;
  std::vector<std::string> args = Args(options);
  EXPECT_THAT(args, Contains("--in-memory"));
  EXPECT_THAT(args, Not(Contains("--no-huge")));
  EXPECT_THAT(args, Not(Contains("--no-shconf")));
  EXPECT_THAT(args, Contains("--no-pci"));
}

TEST(BuildEalArgsTest, MemorySize) {
  EalOptions options;
  options.memory_mb = 256;
  std::vector<std::string> args = Args(options);
  auto m = std::find(args.begin(), args.end(), "-m");
  ASSERT_NE(m, args.end());
  ASSERT_NE(m + 1, args.end());
  EXPECT_EQ(*(m + 1), "256");

  options.memory_mb = 8;
  auto too_small = BuildEalArgs(options, nullptr);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_small.status().message(), HasSubstr("memory size 8 MiB is too small"));
}

TEST(BuildEalArgsTest, ControlLcoreFloatsReactorLcoresArePinned) {
  std::vector<int> allowed = AllowedCpus();
  std::vector<int> cpus;
  std::vector<std::string> args = Args({}, &cpus);
  EXPECT_EQ(cpus, allowed);  // empty cpus: every allowed core
  std::string expected = absl::StrCat("--lcores=0@(", FormatCpuList(allowed), ")");
  for (size_t i = 0; i < allowed.size(); ++i)
    absl::StrAppend(&expected, ",", i + 1, "@", allowed[i]);
  EXPECT_THAT(args, Contains(expected));

  EalOptions one;
  one.cpus = {allowed.front()};
  EXPECT_THAT(Args(one, &cpus),
              Contains(absl::StrCat("--lcores=0@(", allowed.front(), "),1@", allowed.front())));
  EXPECT_EQ(cpus, one.cpus);
}

TEST(BuildEalArgsTest, QuietSelectsEalLogLevel) {
  EalOptions options;
  EXPECT_THAT(Args(options), Contains("--log-level=lib.eal:error"));
  options.quiet = false;
  EXPECT_THAT(Args(options), Contains("--log-level=lib.eal:info"));
}

TEST(BuildEalArgsTest, RejectsCoresThatDoNotExist) {
  EalOptions options;
  options.cpus = {0, 1000};
  auto args = BuildEalArgs(options, nullptr);
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("core 1000 does not exist"));
}

TEST(BuildEalArgsTest, RejectsACoreListedTwice) {
  EalOptions options;
  options.cpus = {AllowedCpus().front(), AllowedCpus().front()};
  auto args = BuildEalArgs(options, nullptr);
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("listed twice"));
}

// The one test of this binary that initialises EAL (once per process, kept until exit).
TEST(InitEalTest, InitialisesOnce) {
  static std::unique_ptr<EalSession> session;
  if (session == nullptr) {
    // Bad options fail before EAL is touched and do not use up the one initialisation.
    EalOptions bad;
    bad.cpus = {1000};
    auto failed = InitEal(bad);
    ASSERT_FALSE(failed.ok());
    EXPECT_THAT(failed.status().message(), HasSubstr("core 1000 does not exist"));

    EalOptions options;
    options.memory_mb = 256;
    auto initialised = InitEal(options);
    ASSERT_TRUE(initialised.ok()) << initialised.status();
    session = std::move(*initialised);
  }
  std::vector<int> allowed = AllowedCpus();
  ASSERT_EQ(session->reactor_lcores().size(), allowed.size());
  for (size_t i = 0; i < allowed.size(); ++i) {
    EXPECT_EQ(session->reactor_lcores()[i].lcore_id, i + 1);
    EXPECT_EQ(session->reactor_lcores()[i].cpu, allowed[i]);
  }
  EXPECT_EQ(session->file_prefix(), absl::StrCat("pollux_", getpid()));
  EXPECT_THAT(session->eal_args(), Contains("--no-huge"));

  EalOptions options;
  options.memory_mb = 256;
  auto again = InitEal(options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already initialised"));
}

}  // namespace
}  // namespace pollux
