// Log levels: parsing, names and the process-wide threshold.
#include "pollux/env/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pollux {
namespace {

using ::testing::HasSubstr;

TEST(LogLevelTest, ParsesEveryNameCaseInsensitively) {
  const std::pair<const char*, LogLevel> cases[] = {
      {"error", LogLevel::kError},    {"warning", LogLevel::kWarning},
      {"notice", LogLevel::kNotice},  {"info", LogLevel::kInfo},
      {"debug", LogLevel::kDebug},    {"DEBUG", LogLevel::kDebug},
      {"Warning", LogLevel::kWarning}};
  for (const auto& [name, level] : cases) {
    auto parsed = ParseLogLevel(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(*parsed, level) << name;
  }
}

TEST(LogLevelTest, NamesRoundTrip) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarning, LogLevel::kNotice, LogLevel::kInfo,
                         LogLevel::kDebug}) {
    auto parsed = ParseLogLevel(LogLevelName(level));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, level);
  }
}

TEST(LogLevelTest, RejectsUnknownNamesWithTheChoices) {
  for (const char* name : {"", "warn", "verbose", "3", "error "}) {
    auto parsed = ParseLogLevel(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(),
                HasSubstr(absl::StrFormat("unknown log level \"%s\"", name)));
    EXPECT_THAT(parsed.status().message(), HasSubstr("error, warning, notice, info or debug"));
  }
}

TEST(LogLevelTest, ThresholdControlsLogEnabled) {
  LogLevel saved = GetLogLevel();
  EXPECT_EQ(saved, LogLevel::kNotice);  // the documented default
  SetLogLevel(LogLevel::kWarning);
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarning));
  EXPECT_FALSE(LogEnabled(LogLevel::kNotice));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(LogLevel::kDebug);
  EXPECT_TRUE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(saved);
}

TEST(LogLevelTest, LogLineWritesOneWholeLine) {
  ::testing::internal::CaptureStderr();
  LogLine(LogLevel::kWarning, "env", "disk \"a\" is slow");
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, HasSubstr("warning: env: disk \"a\" is slow\n"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST(LogLevelTest, MacroSkipsDisabledLevels) {
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  ::testing::internal::CaptureStderr();
  PX_LOG(kInfo, "env", "hidden %d", 1);
  PX_LOG(kError, "env", "shown %d", 2);
  std::string out = ::testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  EXPECT_THAT(out, HasSubstr("error: env: shown 2"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("hidden")));
}

}  // namespace
}  // namespace pollux
