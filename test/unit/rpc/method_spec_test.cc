// Method specs: the registry checks calls against them, fills defaults, refuses inconsistent
// specs, checks handlers against them through ParamReader, and describes them for help.
#include "pollux/rpc/method_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "pollux/rpc/method_registry.h"

namespace pollux::rpc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

MethodSpec CreateSpec() {
  return MethodSpec("thing_create", "thing", "Creates a thing.",
                    {Required("name", ParamType::kString, "name of the thing"),
                     Optional("size", ParamType::kUnsigned, "size in blocks", "512"),
                     Optional("label", ParamType::kString, "a label (default: none)"),
                     Optional("offset", ParamType::kInteger, "signed offset"),
                     Optional("options", ParamType::kObject, "more options"),
                     SpdkOnlyAtDefault("md_size", ParamType::kUnsigned, "0", "per-block metadata"),
                     SpdkHint("optimal_write_size", ParamType::kUnsigned, "a hint")});
}

std::string ErrorOf(const absl::StatusOr<Json>& checked) {
  EXPECT_FALSE(checked.ok());
  return checked.ok() ? "" : std::string(checked.status().message());
}

TEST(CheckParams, FillsDefaultsAndDropsWhatSpdkOnlyHas) {
  std::vector<std::string> ignored;
  absl::StatusOr<Json> checked = CheckParams(
      CreateSpec(),
      Json{{"name", "t0"}, {"md_size", 0}, {"optimal_write_size", 16}, {"label", nullptr}},
      &ignored);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ(*checked, (Json{{"name", "t0"}, {"size", 512}}));
  EXPECT_THAT(ignored, ElementsAre("md_size", "optimal_write_size"));
  // A value given wins over the default; no params at all is an empty object.
  EXPECT_EQ(*CheckParams(CreateSpec(), Json{{"name", "t0"}, {"size", 8}}),
            (Json{{"name", "t0"}, {"size", 8}}));
  MethodSpec no_params("x", "c", "d");
  EXPECT_EQ(*CheckParams(no_params, nullptr), Json::object());
}

TEST(CheckParams, ErrorsNameTheParameter) {
  const MethodSpec spec = CreateSpec();
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"size", 1}})), "missing parameter \"name\"");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"colour", 1}})),
            "unknown parameter \"colour\"");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", 7}})), "parameter \"name\" must be a string");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"size", -1}})),
            "parameter \"size\" must be an unsigned integer");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"offset", 1.5}})),
            "parameter \"offset\" must be an integer");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"offset", UINT64_MAX}})),
            "parameter \"offset\" is out of range");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"options", Json::array()}})),
            "parameter \"options\" must be an object");
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json::array())), "params must be an object");
  // SPDK's feature at another value than its default would change the data: refused.
  EXPECT_EQ(ErrorOf(CheckParams(spec, Json{{"name", "t"}, {"md_size", 8}})),
            "parameter \"md_size\" is 8, which pollux does not support (per-block metadata); "
            "only 0 is accepted");
}

TEST(MethodRegistry, RefusesInconsistentSpecs) {
  MethodRegistry methods;
  auto handler = [](const Json&, RpcResponder r) { r.Result(true); };
  auto error_of = [&](MethodSpec spec) {
    return std::string(methods.Register(std::move(spec), handler).message());
  };
  EXPECT_THAT(error_of(MethodSpec(
                  "a", "c", "d",
                  {Required("x", ParamType::kString, ""), Optional("x", ParamType::kString, "")})),
              HasSubstr("\"x\" is declared twice"));
  EXPECT_THAT(error_of(MethodSpec("b", "c", "d", {Optional("x", ParamType::kBoolean, "", "1")})),
              HasSubstr("default of another type"));
  EXPECT_THAT(error_of(MethodSpec("c", "c", "d", {Optional("x", ParamType::kString, "", "abc")})),
              HasSubstr("not JSON"));
  EXPECT_THAT(
      error_of(MethodSpec("d", "c", "d", {SpdkOnlyAtDefault("x", ParamType::kUnsigned, "", "")})),
      HasSubstr("has none"));
  EXPECT_TRUE(methods.Names().empty());
}

// Calls through a registry, returning the reply.
RpcReply CallOnce(MethodRegistry& methods, std::string_view method, const Json& params) {
  std::optional<RpcReply> reply;
  methods.Call(method, params, [&](RpcReply r) { reply = std::move(r); });
  EXPECT_TRUE(reply.has_value());
  return reply.value_or(RpcReply::Error(0, "no reply"));
}

TEST(MethodRegistry, HandlerSeesCheckedParamsWithDefaults) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register(CreateSpec(),
                            [](const Json& params, RpcResponder r) {
                              ParamReader reader(params);
                              std::string name = reader.String("name");
                              uint64_t size = reader.Uint("size");  // has a default
                              std::optional<std::string> label = reader.OptionalString("label");
                              if (absl::Status s = reader.Finish(); !s.ok()) return r.Reply(s);
                              r.Result(Json{{"name", name}, {"size", size}, {"label", !!label}});
                            })
                  .ok());
  RpcReply reply = CallOnce(methods, "thing_create", Json{{"name", "t"}, {"md_size", 0}});
  ASSERT_TRUE(reply.ok) << reply.message;
  EXPECT_EQ(reply.result, (Json{{"name", "t"}, {"size", 512}, {"label", false}}));
  reply = CallOnce(methods, "thing_create", Json{{"name", "t"}, {"sise", 1}});
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.code, kInvalidParams);
  EXPECT_EQ(reply.message, "thing_create: unknown parameter \"sise\"");
}

TEST(MethodRegistry, HandlerThatReadsAgainstItsSpecIsAnInternalError) {
  MethodRegistry methods;
  auto register_reading = [&](std::string method, auto read) {
    MethodSpec spec = CreateSpec();
    spec.name = method;
    ASSERT_TRUE(methods
                    .Register(std::move(spec),
                              [read](const Json& params, RpcResponder r) {
                                ParamReader reader(params);
                                read(reader);
                                r.Reply(reader.Finish());
                              })
                    .ok());
  };
  register_reading("undeclared", [](ParamReader& reader) { reader.OptionalBool("turbo"); });
  register_reading("wrong_type", [](ParamReader& reader) { reader.OptionalInt("size"); });
  register_reading("required", [](ParamReader& reader) { reader.String("label"); });
  register_reading("fine", [](ParamReader& reader) {
    reader.String("name");
    reader.OptionalValue("options");
    reader.OptionalString("label");
  });
  for (const char* method : {"undeclared", "wrong_type", "required"}) {
    RpcReply reply = CallOnce(methods, method, Json{{"name", "t"}, {"label", "l"}});
    EXPECT_FALSE(reply.ok) << method;
    EXPECT_EQ(reply.code, kInternalError) << method;
    EXPECT_THAT(reply.message, HasSubstr(std::string(method) + " reads parameter")) << method;
  }
  EXPECT_TRUE(CallOnce(methods, "fine", Json{{"name", "t"}}).ok);
  // Without a spec (registered by name), a reader checks nothing.
  ASSERT_TRUE(methods
                  .Register("free",
                            [](const Json& params, RpcResponder r) {
                              ParamReader reader(params);
                              reader.OptionalBool("anything");
                              r.Reply(reader.Finish());
                            })
                  .ok());
  EXPECT_TRUE(CallOnce(methods, "free", nullptr).ok);
}

TEST(DescribeMethod, IsWhatHelpPrints) {
  Json described = DescribeMethod(CreateSpec());
  EXPECT_EQ(described["name"], "thing_create");
  EXPECT_EQ(described["component"], "thing");
  EXPECT_EQ(described["description"], "Creates a thing.");
  ASSERT_EQ(described["params"].size(), 7u);
  EXPECT_EQ(described["params"][0], (Json{{"name", "name"},
                                          {"type", "string"},
                                          {"required", true},
                                          {"description", "name of the thing"}}));
  EXPECT_EQ(described["params"][1]["default"], 512);
  EXPECT_FALSE(described["params"][2].contains("default"));
  EXPECT_EQ(described["params"][5]["spdk"], "accepted at its default only");
  EXPECT_EQ(described["params"][6]["spdk"], "accepted and ignored");
}

TEST(RpcGetMethodHelp, DescribesTheGlobalRegistrysMethods) {
  RpcReply reply =
      CallOnce(MethodRegistry::Global(), "rpc_get_method_help", Json{{"name", "rpc_get_methods"}});
  ASSERT_TRUE(reply.ok) << reply.message;
  EXPECT_EQ(reply.result["component"], "rpc");
  reply = CallOnce(MethodRegistry::Global(), "rpc_get_method_help", nullptr);
  ASSERT_TRUE(reply.ok) << reply.message;
  ASSERT_TRUE(reply.result.is_array());
  EXPECT_GE(reply.result.size(), 2u);
  reply = CallOnce(MethodRegistry::Global(), "rpc_get_method_help", Json{{"name", "no_such"}});
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.code, kMethodNotFound);
}

}  // namespace
}  // namespace pollux::rpc
