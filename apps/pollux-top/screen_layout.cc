#include "screen_layout.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace pollux::top {

namespace {

// Title, tabs and column titles above the rows; the key help below.
constexpr int kHeaderLines = 3;
constexpr int kFooterLines = 1;

bool IsContinuationByte(unsigned char c) { return (c & 0xC0) == 0x80; }

// `text` fitted to exactly `width` columns: cut, then padded on the right (left for numbers).
std::string Pad(std::string_view text, int width, bool align_right) {
  std::string fitted = FitToWidth(text, width);
  const int room = width - DisplayWidth(fitted);
  if (room <= 0) return fitted;
  return align_right ? std::string(room, ' ') + fitted : fitted + std::string(room, ' ');
}

// The widths of the columns at a screen `width`: the flexible column takes what is left.
std::vector<int> ColumnWidths(const Table& table, int width) {
  std::vector<int> widths;
  int used = 0;
  for (const Column& column : table.columns) {
    widths.push_back(column.width);
    used += column.width + (widths.size() > 1 ? 1 : 0);
  }
  for (size_t i = 0; i < widths.size(); ++i) {
    if (table.columns[i].width == 0) widths[i] = std::max(0, width - used);
  }
  return widths;
}

std::string JoinCells(const Table& table, const std::vector<int>& widths,
                      const std::vector<std::string>& texts, int width) {
  std::string line;
  for (size_t i = 0; i < texts.size() && i < widths.size(); ++i) {
    if (i != 0) line += ' ';
    line += Pad(texts[i], widths[i], table.columns[i].numeric);
  }
  // Trailing blanks say nothing, and a line of exactly `width` would make some terminals scroll
  // at the bottom right corner.
  line.erase(line.find_last_not_of(' ') + 1);
  return FitToWidth(line, width);
}

std::string TitleLine(const Table& table, const FrameInfo& info, int width) {
  std::string sort = "-";
  if (info.sort.column >= 0 && info.sort.column < static_cast<int>(table.columns.size())) {
    const Column& column = table.columns[static_cast<size_t>(info.sort.column)];
    const bool largest_first = column.numeric != info.sort.reversed;
    sort = absl::StrFormat("%s %s", column.title,
                           column.numeric ? (largest_first ? "high-low" : "low-high")
                                          : (info.sort.reversed ? "Z-A" : "A-Z"));
  }
  return FitToWidth(
      absl::StrFormat("pollux-top  %s  every %gs  sort: %s", info.socket, info.delay_s, sort),
      width);
}

std::string TabLine(ViewKind current, int width) {
  std::string line;
  for (int i = 0; i < kViewCount; ++i) {
    const auto view = static_cast<ViewKind>(i);
    if (i != 0) line += ' ';
    line += view == current ? absl::StrFormat("[%d %s]", i + 1, ViewTitle(view))
                            : absl::StrFormat(" %d %s ", i + 1, ViewTitle(view));
  }
  return FitToWidth(line, width);
}

}  // namespace

int DisplayWidth(std::string_view text) {
  int columns = 0;
  for (unsigned char c : text) columns += IsContinuationByte(c) ? 0 : 1;
  return columns;
}

std::string FitToWidth(std::string_view text, int width) {
  std::string out;
  if (width <= 0) return out;
  const bool cut = DisplayWidth(text) > width;
  const int keep = cut ? width - 1 : width;
  int columns = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (!IsContinuationByte(c)) {
      if (columns == keep) break;
      ++columns;
    }
    // Control characters (an escape sequence in a bdev's name) would drive the terminal.
    out += c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  if (cut) out += '~';
  return out;
}

int TableRowsFor(int height) { return std::max(0, height - kHeaderLines - kFooterLines); }

std::vector<std::string> RenderTable(const Table& table, int width) {
  const std::vector<int> widths = ColumnWidths(table, width);
  std::vector<std::string> lines;
  std::vector<std::string> titles;
  for (const Column& column : table.columns) titles.push_back(column.title);
  lines.push_back(JoinCells(table, widths, titles, width));
  for (const std::vector<Cell>& row : table.rows) {
    std::vector<std::string> texts;
    for (const Cell& cell : row) texts.push_back(cell.text);
    lines.push_back(JoinCells(table, widths, texts, width));
  }
  if (table.rows.empty()) lines.push_back(FitToWidth(table.empty_note, width));
  return lines;
}

std::vector<std::string> RenderFrame(const Table& table, FrameInfo& info, int width, int height) {
  std::vector<std::string> lines;
  if (height <= 0 || width <= 0) return lines;
  lines.push_back(TitleLine(table, info, width));
  lines.push_back(TabLine(info.view, width));
  const std::vector<std::string> body = RenderTable(table, width);
  const int rows = static_cast<int>(body.size()) - 1;  // body[0] is the column titles
  const int room = TableRowsFor(height);
  info.scroll = std::clamp(info.scroll, 0, std::max(0, rows - room));
  lines.push_back(body[0]);
  if (!info.problem.empty()) {
    lines.push_back(FitToWidth(info.problem, width));
    lines.push_back(FitToWidth(absl::StrFormat("retrying every %gs", info.delay_s), width));
  } else {
    for (int i = 0; i < room && info.scroll + i < rows; ++i) {
      lines.push_back(body[static_cast<size_t>(info.scroll + i + 1)]);
    }
  }
  // Keep the bottom line on the last row of the screen.
  while (static_cast<int>(lines.size()) < height - kFooterLines) lines.emplace_back();
  lines.resize(static_cast<size_t>(std::max(0, height - kFooterLines)));
  std::string help;
  if (!info.problem.empty()) {
    help = "target gone, retrying  q quit";
  } else {
    const int last = std::min(rows, info.scroll + room);
    help = absl::StrFormat("q quit  1-5/Tab view  s/S sort  r reverse  Up/Down scroll  %d-%d/%d",
                           rows == 0 ? 0 : info.scroll + 1, last, rows);
  }
  if (height >= kFooterLines + 1) lines.push_back(FitToWidth(help, width));
  return lines;
}

}  // namespace pollux::top
