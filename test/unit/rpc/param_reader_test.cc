// ParamReader: typed parameters and errors that name them.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {
namespace {

TEST(ParamReader, ReadsTypedValues) {
  Json params = Json::parse(
      R"({"name":"Malloc0","block_size":4096,"offset":-5,"readonly":true,"extra":{"k":[1]}})");
  ParamReader reader(params);
  EXPECT_EQ(reader.String("name"), "Malloc0");
  EXPECT_EQ(reader.Uint("block_size"), 4096u);
  EXPECT_EQ(reader.Int("offset"), -5);
  EXPECT_TRUE(reader.Bool("readonly"));
  EXPECT_EQ(reader.OptionalValue("extra"), Json::parse(R"({"k":[1]})"));
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ParamReader, OptionalParametersMayBeAbsentOrNull) {
  Json params = Json::parse(R"({"uuid":null})");
  ParamReader reader(params);
  EXPECT_EQ(reader.OptionalString("uuid"), std::nullopt);
  EXPECT_EQ(reader.OptionalUint("num_blocks"), std::nullopt);
  EXPECT_EQ(reader.OptionalInt("delta"), std::nullopt);
  EXPECT_EQ(reader.OptionalBool("force"), std::nullopt);
  EXPECT_EQ(reader.OptionalValue("more"), std::nullopt);
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ParamReader, NullParamsMeanNoParameters) {
  Json params;  // null
  ParamReader reader(params);
  EXPECT_EQ(reader.OptionalString("name"), std::nullopt);
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ParamReader, WrongTypeNamesTheParameter) {
  Json params = Json::parse(R"({"block_size":"4096"})");
  ParamReader reader(params);
  EXPECT_EQ(reader.Uint("block_size"), 0u);
  absl::Status status = reader.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "parameter \"block_size\" must be an unsigned integer");
}

TEST(ParamReader, EachTypeHasItsMessage) {
  struct Case {
    const char* params;
    std::function<void(ParamReader&)> read;
    const char* message;
  };
  std::vector<Case> cases = {
      {R"({"n":-1})", [](ParamReader& r) { r.Uint("n"); },
       "parameter \"n\" must be an unsigned integer"},
      {R"({"n":1.5})", [](ParamReader& r) { r.OptionalUint("n"); },
       "parameter \"n\" must be an unsigned integer"},
      {R"({"n":"x"})", [](ParamReader& r) { r.Int("n"); }, "parameter \"n\" must be an integer"},
      {R"({"n":18446744073709551615})", [](ParamReader& r) { r.Int("n"); },
       "parameter \"n\" is out of range"},
      {R"({"s":5})", [](ParamReader& r) { r.String("s"); }, "parameter \"s\" must be a string"},
      {R"({"b":1})", [](ParamReader& r) { r.OptionalBool("b"); },
       "parameter \"b\" must be a boolean"},
  };
  for (const Case& c : cases) {
    Json params = Json::parse(c.params);
    ParamReader reader(params);
    c.read(reader);
    EXPECT_EQ(reader.Finish().message(), c.message) << c.params;
  }
}

TEST(ParamReader, MissingRequiredParameter) {
  Json params = Json::object();
  ParamReader reader(params);
  reader.String("name");
  EXPECT_EQ(reader.Finish().message(), "missing parameter \"name\"");

  Json null_params;
  ParamReader no_params(null_params);
  no_params.Uint("num_blocks");
  EXPECT_EQ(no_params.Finish().message(), "missing parameter \"num_blocks\"");
}

TEST(ParamReader, UnknownParameterIsReported) {
  Json params = Json::parse(R"({"name":"a","foo":1})");
  ParamReader reader(params);
  reader.String("name");
  EXPECT_EQ(reader.Finish().message(), "unknown parameter \"foo\"");
}

TEST(ParamReader, FirstErrorWins) {
  Json params = Json::parse(R"({"a":"x","b":"y","zzz":0})");
  ParamReader reader(params);
  reader.Uint("a");
  reader.Bool("b");
  EXPECT_EQ(reader.Finish().message(), "parameter \"a\" must be an unsigned integer");
}

TEST(ParamReader, ParamsMustBeAnObject) {
  for (const char* text : {"[1,2]", "5", "\"x\""}) {
    Json params = Json::parse(text);
    ParamReader reader(params);
    EXPECT_EQ(reader.OptionalString("name"), std::nullopt);
    reader.String("other");
    EXPECT_EQ(reader.Finish().message(), "params must be an object") << text;
  }
}

}  // namespace
}  // namespace pollux::rpc
