// pollux-top's frames: they fit the screen (cut, never wrapped), scroll, and say when the
// target is gone.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "screen_layout.h"

namespace pollux::top {
namespace {

Table ManyRows(int count) {
  Table table;
  table.columns = {{"NAME", 10, false}, {"VALUE", 8, true}, {"NOTES", 0, false}};
  for (int i = 0; i < count; ++i) {
    table.rows.push_back(
        {TextCell(absl::StrCat("row", i)), QuantityCell(i), TextCell(std::string(200, 'x'))});
  }
  return table;
}

TEST(TopScreenLayout, FitToWidthCutsWithAMarkAndNeverSplitsUtf8) {
  EXPECT_EQ(FitToWidth("abcdef", 10), "abcdef");
  EXPECT_EQ(FitToWidth("abcdef", 6), "abcdef");
  EXPECT_EQ(FitToWidth("abcdef", 4), "abc~");
  EXPECT_EQ(FitToWidth("abcdef", 0), "");
  // "é" is two bytes and one column.
  EXPECT_EQ(FitToWidth("\xc3\xa9\xc3\xa9\xc3\xa9", 2), "\xc3\xa9~");
  EXPECT_EQ(DisplayWidth("\xc3\xa9\xc3\xa9"), 2);
}

TEST(TopScreenLayout, ControlCharactersCannotDriveTheTerminal) {
  EXPECT_EQ(FitToWidth("evil\x1b[2Jname\n", 40), "evil?[2Jname?");
}

TEST(TopScreenLayout, AFrameFits80x24) {
  Table table = ManyRows(100);
  FrameInfo info;
  info.socket = "/var/tmp/pollux.sock";
  std::vector<std::string> lines = RenderFrame(table, info, 80, 24);
  ASSERT_EQ(lines.size(), 24u);
  for (const std::string& line : lines) EXPECT_LE(DisplayWidth(line), 80) << line;
  EXPECT_EQ(lines[2].substr(0, 4), "NAME");
  EXPECT_EQ(lines[3].substr(0, 4), "row0");
  // The long last column is cut at the edge, marked.
  EXPECT_EQ(lines[3].back(), '~');
  EXPECT_NE(lines[23].find("q quit"), std::string::npos);
  EXPECT_NE(lines[23].find("1-20/100"), std::string::npos);
}

TEST(TopScreenLayout, NarrowScreensCutEveryLine) {
  Table table = ManyRows(3);
  FrameInfo info;
  info.socket = std::string(100, 's');
  for (int width : {1, 10, 25}) {
    for (const std::string& line : RenderFrame(table, info, width, 10)) {
      EXPECT_LE(DisplayWidth(line), width) << line;
    }
  }
}

TEST(TopScreenLayout, ScrollingIsClampedToTheRows) {
  Table table = ManyRows(30);
  FrameInfo info;
  info.scroll = 1000;
  std::vector<std::string> lines = RenderFrame(table, info, 80, 24);
  EXPECT_EQ(info.scroll, 10);  // 30 rows, 20 fit
  EXPECT_EQ(lines[3].substr(0, 5), "row10");
  EXPECT_EQ(lines[22].substr(0, 5), "row29");
  info.scroll = -5;
  lines = RenderFrame(table, info, 80, 24);
  EXPECT_EQ(info.scroll, 0);
  EXPECT_EQ(lines[3].substr(0, 4), "row0");
}

TEST(TopScreenLayout, TheTabOfTheViewShownIsMarked) {
  FrameInfo info;
  info.view = ViewKind::kBdevs;
  std::vector<std::string> lines = RenderFrame(ManyRows(1), info, 80, 24);
  EXPECT_NE(lines[1].find("[4 Bdevs]"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(" 1 Reactors "), std::string::npos) << lines[1];
}

TEST(TopScreenLayout, AGoneTargetIsSaidInsteadOfTheRows) {
  FrameInfo info;
  info.problem = "target /tmp/x.sock is gone: connection refused";
  std::vector<std::string> lines = RenderFrame(ManyRows(5), info, 80, 24);
  ASSERT_EQ(lines.size(), 24u);
  EXPECT_EQ(lines[3], info.problem);
  EXPECT_NE(lines[4].find("retrying every 1s"), std::string::npos);
  EXPECT_EQ(lines[5], "");
}

TEST(TopScreenLayout, AnEmptyTableShowsItsNote) {
  Table table = ManyRows(0);
  table.empty_note = "no bdev";
  std::vector<std::string> lines = RenderTable(table, 80);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "no bdev");
}

TEST(TopScreenLayout, NumbersAlignRightTextLeft) {
  Table table;
  table.columns = {{"NAME", 6, false}, {"N", 5, true}};
  table.rows.push_back({TextCell("ab"), QuantityCell(7)});
  std::vector<std::string> lines = RenderTable(table, 80);
  EXPECT_EQ(lines[0], "NAME       N");
  EXPECT_EQ(lines[1], "ab         7");
}

}  // namespace
}  // namespace pollux::top
