// pollux-rpc's help texts from rpc_get_method_help's answers.
#include "help_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "pollux/rpc/method_spec.h"

namespace pollux::rpc {
namespace {

using ::testing::HasSubstr;

Json NullCreateLike() {
  return DescribeMethod(MethodSpec(
      "bdev_null_create", "bdev_null",
      "Creates a null bdev: every I/O completes at once with success, writes store nothing and "
      "reads leave the buffers as they were. Answers the bdev's name.",
      {Required("name", ParamType::kString, "name of the new bdev"),
       Optional("block_size", ParamType::kUnsigned, "bytes per block", "512"),
       Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)"),
       SpdkOnlyAtDefault("md_size", ParamType::kUnsigned, "0", "per-block metadata"),
       SpdkHint("optimal_write_size", ParamType::kUnsigned, "SPDK's hint, in blocks")}));
}

TEST(FormatMethodHelp, ListsParametersThenSpdksOwn) {
  std::string help = FormatMethodHelp(NullCreateLike());
  EXPECT_THAT(help, HasSubstr("bdev_null_create (bdev_null)\n  Creates a null bdev"));
  EXPECT_THAT(help,
              HasSubstr("  name        string            required     name of the new bdev\n"));
  EXPECT_THAT(help, HasSubstr("  block_size  unsigned integer  default 512  bytes per block\n"));
  EXPECT_THAT(help, HasSubstr("  uuid        string            optional     UUID"));
  const size_t spdk = help.find("SPDK's parameters");
  ASSERT_NE(spdk, std::string::npos);
  EXPECT_THAT(help.substr(spdk), HasSubstr("md_size             unsigned integer  only 0"));
  EXPECT_THAT(help.substr(spdk), HasSubstr("optimal_write_size  unsigned integer  ignored"));
  EXPECT_LT(help.find("uuid"), spdk);
}

TEST(FormatMethodHelp, WrapsToTheWidthAndIndentsContinuations) {
  std::string help = FormatMethodHelp(NullCreateLike(), 60);
  std::vector<std::string> lines = absl::StrSplit(help, '\n');
  for (const std::string& line : lines) EXPECT_LE(line.size(), 60u) << line;
  // The description's lines, all indented under the name.
  ASSERT_GE(lines.size(), 4u);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(lines[i].substr(0, 3).find_first_not_of(' '), 2u);
}

TEST(FormatMethodHelp, MethodWithoutParameters) {
  std::string help = FormatMethodHelp(DescribeMethod(MethodSpec("x_get", "x", "Gets x.")));
  EXPECT_EQ(help, "x_get (x)\n  Gets x.\n\nNo parameters.\n");
}

TEST(FormatMethodList, GroupsByComponentSorted) {
  Json methods = Json::array({DescribeMethod(MethodSpec("bdev_null_delete", "bdev_null", "")),
                              DescribeMethod(MethodSpec("save_config", "app", "")),
                              DescribeMethod(MethodSpec("bdev_null_create", "bdev_null", ""))});
  EXPECT_EQ(FormatMethodList(methods),
            "  app        save_config\n"
            "  bdev_null  bdev_null_create bdev_null_delete\n");
}

}  // namespace
}  // namespace pollux::rpc
