// pollux-top's frames as plain lines of text: the title, the tab bar, the table (scrolled),
// and the bottom line. Every line is cut to the screen's width, never wrapped, and a frame has
// at most the screen's height of lines, so that 80x24 shows a whole frame.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "view_models.h"

namespace pollux::top {

// What a frame shows besides the table.
struct FrameInfo {
  ViewKind view = ViewKind::kReactors;
  SortOrder sort;
  int scroll = 0;      // the first row shown (clamped by RenderFrame)
  std::string socket;  // the target's
  double delay_s = 1;  // -d
  // Empty while the target answers; otherwise why it does not ("target ... is gone: ...").
  std::string problem;
};

// The lines of one frame: `height` lines at most, each at most `width` columns. Lines 0 (title),
// 1 (tabs) and 2 (column titles) are the header; the last is the key help or the problem.
std::vector<std::string> RenderFrame(const Table& table, FrameInfo& info, int width, int height);

// The column titles and every row, each cut to `width` (--once).
std::vector<std::string> RenderTable(const Table& table, int width);

// `text` made safe and short: control characters become '?', and a text longer than `width`
// columns is cut to `width`, its last column a '~'. UTF-8 sequences count as one column each
// and are never split.
std::string FitToWidth(std::string_view text, int width);
// Columns `text` takes (UTF-8 sequences count one).
int DisplayWidth(std::string_view text);

// The rows a frame of `height` lines has room for.
int TableRowsFor(int height);

}  // namespace pollux::top
