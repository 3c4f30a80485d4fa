// Core list parsing, formatting and the check against the cores this process may use.
#include "pollux/env/cpu_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pollux {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<int> Parse(std::string_view text) {
  auto cpus = ParseCpuList(text);
  EXPECT_TRUE(cpus.ok()) << "\"" << text << "\": " << cpus.status();
  return cpus.ok() ? *cpus : std::vector<int>{};
}

std::string ParseError(std::string_view text) {
  auto cpus = ParseCpuList(text);
  EXPECT_FALSE(cpus.ok()) << "\"" << text << "\" parsed";
  if (cpus.ok()) return "";
  EXPECT_EQ(cpus.status().code(), absl::StatusCode::kInvalidArgument) << cpus.status();
  return std::string(cpus.status().message());
}

TEST(ParseCpuListTest, Ranges) {
  EXPECT_THAT(Parse("0-1"), ElementsAre(0, 1));
  EXPECT_THAT(Parse("0,2-3"), ElementsAre(0, 2, 3));
  EXPECT_THAT(Parse("5"), ElementsAre(5));
  EXPECT_THAT(Parse("3-3"), ElementsAre(3));
  EXPECT_THAT(Parse("0-3,6,8-9"), ElementsAre(0, 1, 2, 3, 6, 8, 9));
}

TEST(ParseCpuListTest, Brackets) {
  EXPECT_THAT(Parse("[0,1]"), ElementsAre(0, 1));
  EXPECT_THAT(Parse("[2-4]"), ElementsAre(2, 3, 4));
}

TEST(ParseCpuListTest, SortsAndRemovesDuplicates) {
  EXPECT_THAT(Parse("3,1,2"), ElementsAre(1, 2, 3));
  EXPECT_THAT(Parse("1,0-2,1"), ElementsAre(0, 1, 2));
}

TEST(ParseCpuListTest, Whitespace) {
  EXPECT_THAT(Parse(" 0 , 2 - 3 "), ElementsAre(0, 2, 3));
  EXPECT_THAT(Parse(" [0,1] "), ElementsAre(0, 1));
}

TEST(ParseCpuListTest, HexMask) {
  EXPECT_THAT(Parse("0x3"), ElementsAre(0, 1));
  EXPECT_THAT(Parse("0X5"), ElementsAre(0, 2));
  EXPECT_THAT(Parse("0xA0"), ElementsAre(5, 7));
  EXPECT_THAT(Parse("0xf0"), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(Parse("0x100000000"), ElementsAre(32));
}

TEST(ParseCpuListTest, EmptyInputs) {
  EXPECT_THAT(ParseError(""), HasSubstr("empty core list"));
  EXPECT_THAT(ParseError("   "), HasSubstr("empty core list"));
  EXPECT_THAT(ParseError("[]"), HasSubstr("empty core list"));
  EXPECT_THAT(ParseError("0x"), HasSubstr("empty core mask"));
}

TEST(ParseCpuListTest, BadNumbersNameTheOffendingPart) {
  EXPECT_THAT(ParseError("abc"), HasSubstr("invalid core \"abc\" in core list \"abc\""));
  EXPECT_THAT(ParseError("0,x"), HasSubstr("invalid core \"x\""));
  EXPECT_THAT(ParseError("1,,2"), HasSubstr("invalid core \"\""));
  EXPECT_THAT(ParseError("-1"), HasSubstr("invalid core"));
  EXPECT_THAT(ParseError("+1"), HasSubstr("invalid core \"+1\""));
  EXPECT_THAT(ParseError("1.5"), HasSubstr("invalid core \"1.5\""));
  EXPECT_THAT(ParseError("0-1-2"), HasSubstr("invalid core \"1-2\""));
  EXPECT_THAT(ParseError("0-"), HasSubstr("invalid core \"\""));
}

TEST(ParseCpuListTest, CoresBeyondTheCpuSetAreRejected) {
  EXPECT_THAT(ParseError("4096"), HasSubstr("invalid core \"4096\""));
  EXPECT_THAT(ParseError("0-4096"), HasSubstr("invalid core \"4096\""));
  EXPECT_THAT(ParseError("99999999999999999999"), HasSubstr("invalid core"));
  // 0x followed by 257 hex digits: bit 1024 and beyond.
  EXPECT_THAT(ParseError("0x1" + std::string(256, '0')), HasSubstr("too wide"));
}

TEST(ParseCpuListTest, DescendingRange) {
  EXPECT_THAT(ParseError("3-1"), HasSubstr("descending range \"3-1\" in core list \"3-1\""));
}

TEST(ParseCpuMaskParamTest, BareHexDigitsAreAMaskAsInSpdk) {
  // SPDK's save_config writes vhost cpumasks without "0x": "1" is core 0 there.
  EXPECT_EQ(*ParseCpuMaskParam("1"), std::vector<int>{0});
  EXPECT_EQ(*ParseCpuMaskParam("3"), (std::vector<int>{0, 1}));
  EXPECT_EQ(*ParseCpuMaskParam("a"), (std::vector<int>{1, 3}));
  EXPECT_EQ(*ParseCpuMaskParam("0x2"), std::vector<int>{1});
  // Lists stay lists; a single core needs brackets.
  EXPECT_EQ(*ParseCpuMaskParam("[1]"), std::vector<int>{1});
  EXPECT_EQ(*ParseCpuMaskParam("0-1"), (std::vector<int>{0, 1}));
  EXPECT_EQ(*ParseCpuMaskParam("0,2"), (std::vector<int>{0, 2}));
  EXPECT_FALSE(ParseCpuMaskParam("0").ok());  // a mask of no core
  EXPECT_FALSE(ParseCpuMaskParam("").ok());
  EXPECT_FALSE(ParseCpuMaskParam("x1").ok());
}

TEST(ParseCpuListTest, UnbalancedBrackets) {
  EXPECT_THAT(ParseError("[0,1"), HasSubstr("unbalanced bracket"));
  EXPECT_THAT(ParseError("0,1]"), HasSubstr("invalid core \"1]\""));
}

TEST(ParseCpuListTest, BadMasks) {
  EXPECT_THAT(ParseError("0xg"), HasSubstr("invalid core mask \"0xg\""));
  EXPECT_THAT(ParseError("0x0"), HasSubstr("selects no core"));
  EXPECT_THAT(ParseError("0x-1"), HasSubstr("invalid core mask"));
}

TEST(FormatCpuListTest, CollapsesRuns) {
  EXPECT_EQ(FormatCpuList({}), "");
  EXPECT_EQ(FormatCpuList({3}), "3");
  EXPECT_EQ(FormatCpuList({0, 1, 2, 3, 6}), "0-3,6");
  EXPECT_EQ(FormatCpuList({0, 2, 4}), "0,2,4");
  EXPECT_EQ(FormatCpuList({1, 2, 5, 6, 7}), "1-2,5-7");
}

TEST(FormatCpuListTest, RoundTripsThroughTheParser) {
  for (std::string text : {"0", "0-3,6", "1-2,5-7", "0,2,4,8-15"}) {
    EXPECT_EQ(FormatCpuList(Parse(text)), text);
  }
}

TEST(AllowedCpusTest, AscendingAndNonEmpty) {
  std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_TRUE(CheckCpusAllowed(cpus).ok());
}

TEST(CheckCpusAllowedTest, RejectsNoCore) {
  absl::Status s = CheckCpusAllowed({});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no core selected"));
}

TEST(CheckCpusAllowedTest, RejectsACoreThatDoesNotExist) {
  // 1000 passes the parser (below CPU_SETSIZE) but no test machine has that many cores.
  ASSERT_LT(sysconf(_SC_NPROCESSORS_CONF), 1000);
  ASSERT_TRUE(ParseCpuList("1000").ok());
  absl::Status s = CheckCpusAllowed({0, 1000});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("core 1000 does not exist"));
  EXPECT_THAT(s.message(), HasSubstr("this machine has"));
}

TEST(CheckCpusAllowedTest, RejectsACoreOutsideTheAffinityMask) {
  // AllowedCpus reads the calling thread's affinity: narrow it to one core for this check.
  std::vector<int> allowed = AllowedCpus();
  if (allowed.size() < 2) GTEST_SKIP() << "needs two allowed cores";
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(allowed[0], &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  absl::Status s = CheckCpusAllowed({allowed[0], allowed[1]});
  ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("core " + std::to_string(allowed[1]) +
                                     " is not available to this process (allowed: " +
                                     std::to_string(allowed[0]) + ")"));
}

TEST(CheckCpusAllowedTest, AcceptsAllowedCores) {
  std::vector<int> allowed = AllowedCpus();
  EXPECT_TRUE(CheckCpusAllowed({allowed.front()}).ok());
  EXPECT_TRUE(CheckCpusAllowed(allowed).ok());
}

}  // namespace
}  // namespace pollux
