// FindJsonValueEnd (splitting a byte stream into JSON values) and the reply encoding.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "json_value_scanner.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {
namespace {

TEST(FindJsonValueEnd, ObjectEndsAtItsClosingBrace) {
  EXPECT_EQ(FindJsonValueEnd(R"({"a":1})"), 7u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":1}{"b":2})"), 7u);
  EXPECT_EQ(FindJsonValueEnd(" \n\t{}  "), 5u);
}

TEST(FindJsonValueEnd, NestingCountsObjectsAndArrays) {
  EXPECT_EQ(FindJsonValueEnd(R"({"a":[1,{"b":[]}],"c":{}} tail)"), 25u);
  EXPECT_EQ(FindJsonValueEnd("[[1],[2]]"), 9u);
}

TEST(FindJsonValueEnd, IncompleteValuesAreNotDelimited) {
  EXPECT_EQ(FindJsonValueEnd(""), std::nullopt);
  EXPECT_EQ(FindJsonValueEnd("   \n"), std::nullopt);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":)"), std::nullopt);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":[1,2])"), std::nullopt);
  EXPECT_EQ(FindJsonValueEnd(R"("open string)"), std::nullopt);
}

TEST(FindJsonValueEnd, BracesAndQuotesInsideStringsDoNotCount) {
  EXPECT_EQ(FindJsonValueEnd(R"({"a":"}]{["})"), 12u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":"\"}"})"), 11u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":"\\"})"), 10u);
  // The escaped quote leaves the string open.
  EXPECT_EQ(FindJsonValueEnd(R"({"a":"\"})"), std::nullopt);
  EXPECT_EQ(FindJsonValueEnd(R"("x\"y" rest)"), 6u);
}

TEST(FindJsonValueEnd, ScalarsEndAtWhitespaceOrStructuralByte) {
  EXPECT_EQ(FindJsonValueEnd("123 "), 3u);
  EXPECT_EQ(FindJsonValueEnd("true\n"), 4u);
  EXPECT_EQ(FindJsonValueEnd("null{}"), 4u);
  // A number at the very end may still grow.
  EXPECT_EQ(FindJsonValueEnd("123"), std::nullopt);
}

TEST(FindJsonValueEnd, StrayStructuralByteIsAOneByteValue) {
  EXPECT_EQ(FindJsonValueEnd("}{}"), 1u);
  EXPECT_EQ(FindJsonValueEnd(" ,"), 2u);
}

TEST(FindJsonValueEnd, DelimitedValueMayStillBeInvalid) {
  std::optional<size_t> end = FindJsonValueEnd(R"({"a":} {})");
  ASSERT_EQ(end, 6u);
  EXPECT_TRUE(
      Json::parse(std::string_view(R"({"a":})").substr(0, *end), nullptr, false).is_discarded());
}

TEST(FindJsonValueEnd, MalformedJsonEndsAtTheFirstByteNoValueCanContinueWith) {
  // Each of these would have waited forever for a closing brace that makes no difference.
  EXPECT_EQ(FindJsonValueEnd(R"({"a" x)"), 6u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":1 "b":2)"), 8u);
  EXPECT_EQ(FindJsonValueEnd(R"({a)"), 2u);
  EXPECT_EQ(FindJsonValueEnd(R"([1,,)"), 4u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":[1}})"), 8u);  // `}` closes an array
  EXPECT_EQ(FindJsonValueEnd(R"({"a":tru,)"), 9u);  // the literal is not complete
  EXPECT_EQ(FindJsonValueEnd(R"({"a":nil)"), 7u);
  EXPECT_EQ(FindJsonValueEnd(R"({"a":12ab)"), 8u);
  EXPECT_EQ(FindJsonValueEnd("hello"), 1u);
  EXPECT_EQ(FindJsonValueEnd("{\"a\":\"x\ny\"}"), 8u);  // a raw newline in a string
}

TEST(FindJsonValueEnd, ScannerSaysWhetherTheValueItDelimitedIsMalformed) {
  JsonValueScanner scanner;
  EXPECT_EQ(scanner.Scan(R"({"a":[true,false,null,-1.5e3,{"b":"}"}]})"), 40u);
  EXPECT_FALSE(scanner.invalid());
  scanner.Reset();
  EXPECT_EQ(scanner.Scan(R"({"a")"), std::nullopt);
  EXPECT_TRUE(scanner.started());
  EXPECT_EQ(scanner.Scan(R"({"a"]})"), 5u);  // resumes where it stopped
  EXPECT_TRUE(scanner.invalid());
}

TEST(RpcReply, FromStatusMapsToSpdkCodes) {
  EXPECT_EQ(RpcReply::FromStatus(absl::InvalidArgumentError("x")).code, kInvalidParams);
  EXPECT_EQ(RpcReply::FromStatus(absl::NotFoundError("x")).code, -19);
  EXPECT_EQ(RpcReply::FromStatus(absl::AlreadyExistsError("x")).code, -17);
  EXPECT_EQ(RpcReply::FromStatus(absl::FailedPreconditionError("x")).code, -1);
  EXPECT_EQ(RpcReply::FromStatus(absl::ResourceExhaustedError("x")).code, -12);
  RpcReply internal = RpcReply::FromStatus(absl::UnknownError("broken"));
  EXPECT_FALSE(internal.ok);
  EXPECT_EQ(internal.code, kInternalError);
  EXPECT_EQ(internal.message, "broken");
  RpcReply ok = RpcReply::FromStatus(absl::OkStatus());
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.result, true);
}

TEST(EncodeReply, ResultAndError) {
  EXPECT_EQ(EncodeReply(7, RpcReply::Result({{"x", 1}})),
            Json::parse(R"({"jsonrpc":"2.0","id":7,"result":{"x":1}})"));
  EXPECT_EQ(EncodeReply("a", RpcReply::Error(kMethodNotFound, "no")),
            Json::parse(R"({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"no"}})"));
  EXPECT_EQ(EncodeReply(nullptr, RpcReply::Error(kParseError, "bad"))["id"], nullptr);
}

}  // namespace
}  // namespace pollux::rpc
