// MethodRegistry and RpcResponder: registration, calls, answers now or later, and handlers
// that misbehave (never answer, answer twice, throw).
#include "pollux/rpc/method_registry.h"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <vector>

namespace pollux::rpc {
namespace {

// Collects the replies a Call() delivers.
struct Replies {
  std::vector<RpcReply> all;
  RpcResponder::Sink Sink() {
    return [this](RpcReply reply) { all.push_back(std::move(reply)); };
  }
};

TEST(MethodRegistry, RegisterRefusesDuplicates) {
  MethodRegistry methods;
  ASSERT_TRUE(methods.Register("a", [](const Json&, RpcResponder r) { r.Result(1); }).ok());
  absl::Status again = methods.Register("a", [](const Json&, RpcResponder r) { r.Result(2); });
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "RPC method \"a\" is already registered");
  EXPECT_EQ(methods.Register("", [](const Json&, RpcResponder) {}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MethodRegistry, NamesAreSortedAndUnregisterRemoves) {
  MethodRegistry methods;
  for (const char* name : {"zeta", "alpha", "mid"}) {
    ASSERT_TRUE(methods.Register(name, [](const Json&, RpcResponder r) { r.Result(true); }).ok());
  }
  EXPECT_EQ(methods.Names(), (std::vector<std::string>{"alpha", "mid", "zeta"}));
  EXPECT_TRUE(methods.Has("mid"));
  methods.Unregister("mid");
  EXPECT_FALSE(methods.Has("mid"));
  methods.Unregister("never-there");
  EXPECT_EQ(methods.Names(), (std::vector<std::string>{"alpha", "zeta"}));
}

TEST(MethodRegistry, CallPassesParamsAndResult) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("add",
                            [](const Json& params, RpcResponder r) {
                              r.Result(params["a"].get<int>() + params["b"].get<int>());
                            })
                  .ok());
  Replies replies;
  methods.Call("add", Json::parse(R"({"a":2,"b":3})"), replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_TRUE(replies.all[0].ok);
  EXPECT_EQ(replies.all[0].result, 5);
}

TEST(MethodRegistry, UnknownMethod) {
  MethodRegistry methods;
  Replies replies;
  methods.Call("nope", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].code, kMethodNotFound);
  EXPECT_EQ(replies.all[0].message, "unknown method \"nope\"");
}

TEST(MethodRegistry, StatusRepliesMapCodes) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("exists",
                            [](const Json&, RpcResponder r) {
                              r.Reply(absl::AlreadyExistsError("bdev Malloc0 exists"));
                            })
                  .ok());
  ASSERT_TRUE(
      methods.Register("ok", [](const Json&, RpcResponder r) { r.Reply(absl::OkStatus()); }).ok());
  Replies replies;
  methods.Call("exists", nullptr, replies.Sink());
  methods.Call("ok", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 2u);
  EXPECT_EQ(replies.all[0].code, -17);
  EXPECT_EQ(replies.all[0].message, "bdev Malloc0 exists");
  EXPECT_TRUE(replies.all[1].ok);
  EXPECT_EQ(replies.all[1].result, true);
}

TEST(MethodRegistry, AnswerLater) {
  MethodRegistry methods;
  std::optional<RpcResponder> kept;
  ASSERT_TRUE(
      methods.Register("later", [&](const Json&, RpcResponder r) { kept = std::move(r); }).ok());
  Replies replies;
  methods.Call("later", nullptr, replies.Sink());
  EXPECT_TRUE(replies.all.empty());
  ASSERT_TRUE(kept.has_value());
  EXPECT_FALSE(kept->answered());
  kept->Result("done");
  EXPECT_TRUE(kept->answered());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].result, "done");
}

TEST(MethodRegistry, UnansweredResponderSendsInternalError) {
  MethodRegistry methods;
  ASSERT_TRUE(methods.Register("silent", [](const Json&, RpcResponder) {}).ok());
  Replies replies;
  methods.Call("silent", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].code, kInternalError);
  EXPECT_EQ(replies.all[0].message, "method did not answer");
}

TEST(MethodRegistry, SecondAnswerIsDropped) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("twice",
                            [](const Json&, RpcResponder r) {
                              r.Result(1);
                              r.Result(2);
                            })
                  .ok());
  Replies replies;
  methods.Call("twice", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].result, 1);
}

TEST(MethodRegistry, MoveAssignOverUnansweredResponderAnswersIt) {
  Replies first;
  Replies second;
  RpcResponder a(first.Sink());
  RpcResponder b(second.Sink());
  a = std::move(b);
  ASSERT_EQ(first.all.size(), 1u);
  EXPECT_EQ(first.all[0].code, kInternalError);
  a.Result(3);
  ASSERT_EQ(second.all.size(), 1u);
  EXPECT_EQ(second.all[0].result, 3);
}

TEST(MethodRegistry, ThrowingHandlerBecomesInternalError) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("throws",
                            [](const Json& params, RpcResponder r) {
                              // A nlohmann type error: "name" is a number.
                              r.Result(params.at("name").get<std::string>());
                            })
                  .ok());
  ASSERT_TRUE(methods
                  .Register("throws_plain",
                            [](const Json&, RpcResponder) { throw std::runtime_error("boom"); })
                  .ok());
  Replies replies;
  methods.Call("throws", Json::parse(R"({"name":5})"), replies.Sink());
  methods.Call("throws_plain", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 2u);
  EXPECT_EQ(replies.all[0].code, kInternalError);
  EXPECT_NE(replies.all[0].message.find("method \"throws\" failed: "), std::string::npos)
      << replies.all[0].message;
  EXPECT_NE(replies.all[0].message.find("type must be string"), std::string::npos);
  EXPECT_EQ(replies.all[1].message, "method \"throws_plain\" failed: boom");
}

TEST(MethodRegistry, HandlerThatAnswersThenThrowsAnswersOnce) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("answer_then_throw",
                            [](const Json&, RpcResponder r) {
                              r.Result(1);
                              throw std::runtime_error("late");
                            })
                  .ok());
  Replies replies;
  methods.Call("answer_then_throw", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].result, 1);
}

TEST(MethodRegistry, HandlerThatCatchesItsOwnExceptionStillAnswers) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("self_catch",
                            [](const Json&, RpcResponder r) {
                              try {
                                RpcResponder inner = std::move(r);
                                throw std::runtime_error("handled");
                              } catch (const std::exception&) {
                              }
                            })
                  .ok());
  Replies replies;
  methods.Call("self_catch", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  EXPECT_EQ(replies.all[0].message, "method did not answer");
}

TEST(MethodRegistry, HandlerMayUnregisterItself) {
  MethodRegistry methods;
  ASSERT_TRUE(methods
                  .Register("once",
                            [&methods](const Json&, RpcResponder r) {
                              methods.Unregister("once");
                              r.Result("bye");
                            })
                  .ok());
  Replies replies;
  methods.Call("once", nullptr, replies.Sink());
  methods.Call("once", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 2u);
  EXPECT_EQ(replies.all[0].result, "bye");
  EXPECT_EQ(replies.all[1].code, kMethodNotFound);
}

TEST(MethodRegistry, GlobalHasRpcGetMethods) {
  MethodRegistry& global = MethodRegistry::Global();
  EXPECT_EQ(&global, &MethodRegistry::Global());
  ASSERT_TRUE(global.Has("rpc_get_methods"));
  Replies replies;
  global.Call("rpc_get_methods", nullptr, replies.Sink());
  ASSERT_EQ(replies.all.size(), 1u);
  ASSERT_TRUE(replies.all[0].ok);
  EXPECT_EQ(replies.all[0].result, Json(global.Names()));

  global.Call("rpc_get_methods", Json::parse(R"({"bogus":1})"), replies.Sink());
  ASSERT_EQ(replies.all.size(), 2u);
  EXPECT_EQ(replies.all[1].code, kInvalidParams);
  EXPECT_EQ(replies.all[1].message, "rpc_get_methods: unknown parameter \"bogus\"");
}

}  // namespace
}  // namespace pollux::rpc
