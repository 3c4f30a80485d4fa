// pollux-rpc's command line: options, --name value parameters, -j.
#include "command_line.h"

#include <gtest/gtest.h>

#include <vector>

namespace pollux::rpc {
namespace {

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "pollux-rpc");
  return ParseCommandLine(static_cast<int>(args.size()), args.data(), "/default.sock");
}

TEST(ParseParamValue, JsonWhenItIsJsonElseString) {
  EXPECT_EQ(ParseParamValue("4096"), 4096);
  EXPECT_EQ(ParseParamValue("-1"), -1);
  EXPECT_EQ(ParseParamValue("1.5"), 1.5);
  EXPECT_EQ(ParseParamValue("true"), true);
  EXPECT_EQ(ParseParamValue("null"), nullptr);
  EXPECT_EQ(ParseParamValue("[1,\"a\"]"), Json::parse("[1,\"a\"]"));
  EXPECT_EQ(ParseParamValue("{\"k\":1}"), Json::parse("{\"k\":1}"));
  EXPECT_EQ(ParseParamValue("Malloc0"), "Malloc0");
  EXPECT_EQ(ParseParamValue("/dev/sda"), "/dev/sda");
  EXPECT_EQ(ParseParamValue(""), "");
  EXPECT_EQ(ParseParamValue("12ab"), "12ab");
  // A JSON string literal is not unquoted: the value is the text as typed.
  EXPECT_EQ(ParseParamValue("\"q\""), "\"q\"");
}

TEST(ParseCommandLine, MethodAndNamedParams) {
  absl::StatusOr<CommandLine> line = Parse(
      {"bdev_malloc_create", "--name", "Malloc0", "--num-blocks", "2048", "--block_size=512"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->method, "bdev_malloc_create");
  EXPECT_EQ(line->socket, "/default.sock");
  EXPECT_EQ(line->timeout_s, 60);
  EXPECT_EQ(line->params, Json::parse(R"({"name":"Malloc0","num_blocks":2048,"block_size":512})"));
}

// --version is pollux-rpc's own before METHOD, and a method's parameter after it.
TEST(ParseCommandLine, VersionBeforeMethodIsTheProgramsAfterItAParameter) {
  absl::StatusOr<CommandLine> own = Parse({"--version"});
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_TRUE(own->version);
  EXPECT_TRUE(own->params.is_null());

  absl::StatusOr<CommandLine> param = Parse({"some_method", "--version", "2"});
  ASSERT_TRUE(param.ok()) << param.status();
  EXPECT_FALSE(param->version);
  EXPECT_EQ(param->params, Json::parse(R"({"version":2})"));
}

TEST(ParseCommandLine, OptionsAndJsonParamsMerge) {
  absl::StatusOr<CommandLine> line = Parse({"-s", "/x.sock", "-t", "2.5", "-r", "25", "m", "-j",
                                            R"({"a":1,"b":{"c":2}})", "--a", "9", "--neg", "-3"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->socket, "/x.sock");
  EXPECT_EQ(line->timeout_s, 2.5);
  EXPECT_EQ(line->conn_retries, 25);
  EXPECT_EQ(line->method, "m");
  // --name values win over -j.
  EXPECT_EQ(line->params, Json::parse(R"({"a":9,"b":{"c":2},"neg":-3})"));
}

TEST(ParseCommandLine, NoParamsMeansNull) {
  absl::StatusOr<CommandLine> line = Parse({"rpc_get_methods"});
  ASSERT_TRUE(line.ok());
  EXPECT_TRUE(line->params.is_null());
  absl::StatusOr<CommandLine> empty = Parse({"m", "-j", "{}"});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->params, Json::object());
}

TEST(ParseCommandLine, NoMethodListsMethods) {
  absl::StatusOr<CommandLine> line = Parse({"-s", "/y.sock"});
  ASSERT_TRUE(line.ok());
  EXPECT_TRUE(line->method.empty());
  EXPECT_TRUE(Parse({"--help"})->help);
  EXPECT_TRUE(Parse({"m", "-h"})->help);
}

TEST(ParseCommandLine, UsageErrors) {
  EXPECT_EQ(Parse({"m", "--name"}).status().message(), "--name needs a value");
  EXPECT_EQ(Parse({"-s"}).status().message(), "-s needs a value");
  EXPECT_EQ(Parse({"-t", "soon"}).status().message(),
            "-t needs a number of seconds (0: no timeout), not \"soon\"");
  EXPECT_EQ(Parse({"-t", "-1"}).status().message(),
            "-t needs a number of seconds (0: no timeout), not \"-1\"");
  EXPECT_EQ(Parse({"m", "-j", "[1]"}).status().message(), "-j needs a JSON object, not \"[1]\"");
  EXPECT_EQ(Parse({"-r", "-1", "m"}).status().message(),
            "-r needs a number of retries from 0 to 18000, not \"-1\"");
  EXPECT_EQ(Parse({"-r", "many", "m"}).status().message(),
            "-r needs a number of retries from 0 to 18000, not \"many\"");
  EXPECT_EQ(Parse({"m", "-x"}).status().message(), "unknown option -x");
  EXPECT_EQ(Parse({"m", "extra"}).status().message(),
            "unexpected argument \"extra\" (parameters are --name value)");
  EXPECT_EQ(Parse({"--a", "1"}).status().message(), "parameters given without a METHOD");
}

TEST(Usage, DocumentsEveryOption) {
  std::string usage = Usage("pollux-rpc", "/var/tmp/pollux.sock");
  for (const char* text :
       {"-s SOCKET", "-t TIMEOUT_S", "-r RETRIES", "-j JSON", "--name VALUE", "-h, --help",
        "--version", "/var/tmp/pollux.sock", "POLLUX_RPC_SOCKET", "Exit status"}) {
    EXPECT_NE(usage.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace pollux::rpc
