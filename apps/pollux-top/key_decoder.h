// pollux-top's keys: bytes read from a terminal in raw mode decoded into what the user asked.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pollux::top {

enum class KeyAction {
  kQuit,
  kShowView,  // Key::view
  kNextView,
  kPreviousView,
  kNextSortColumn,
  kPreviousSortColumn,
  kReverseSort,
  kScrollUp,
  kScrollDown,
  kPageUp,
  kPageDown,
  kScrollHome,
  kScrollEnd,
};

struct Key {
  KeyAction action;
  int view = 0;  // kShowView: 0 (key 1) to 4 (key 5)

  bool operator==(const Key&) const = default;
};

// Decodes keys, with the escape sequences of arrows, Page Up/Down, Home, End and Shift-Tab
// (xterm's and the VT100 application mode's). A sequence split across two reads is completed
// by the next Feed; unknown keys and sequences are ignored.
class KeyDecoder {
 public:
  std::vector<Key> Feed(std::string_view bytes);

 private:
  std::string pending_;  // the start of an escape sequence
};

}  // namespace pollux::top
