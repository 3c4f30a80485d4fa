#include "key_decoder.h"

#include <iterator>
#include <optional>
#include <string_view>

namespace pollux::top {

namespace {

constexpr char kEscape = '\x1b';

// Keys of one byte: the views' digits 1-5, and these.
std::optional<Key> PlainKey(char c) {
  if (c >= '1' && c <= '5') return Key{KeyAction::kShowView, c - '1'};
  constexpr std::string_view kKeys = "qQ\tsSrRkj ";
  constexpr KeyAction kActions[] = {KeyAction::kQuit,
                                    KeyAction::kQuit,
                                    KeyAction::kNextView,
                                    KeyAction::kNextSortColumn,
                                    KeyAction::kPreviousSortColumn,
                                    KeyAction::kReverseSort,
                                    KeyAction::kReverseSort,
                                    KeyAction::kScrollUp,
                                    KeyAction::kScrollDown,
                                    KeyAction::kPageDown};
  static_assert(kKeys.size() == std::size(kActions));
  const size_t at = kKeys.find(c);
  if (at == std::string_view::npos) return std::nullopt;
  return Key{kActions[at]};
}

// The key of a whole CSI ("ESC [ ... final") or SS3 ("ESC O final") sequence.
std::optional<Key> SequenceKey(std::string_view sequence) {
  std::string_view body = sequence.substr(2);  // after "ESC [" or "ESC O"
  if (body == "A") return Key{KeyAction::kScrollUp};
  if (body == "B") return Key{KeyAction::kScrollDown};
  if (body == "H" || body == "1~" || body == "7~") return Key{KeyAction::kScrollHome};
  if (body == "F" || body == "4~" || body == "8~") return Key{KeyAction::kScrollEnd};
  if (body == "5~") return Key{KeyAction::kPageUp};
  if (body == "6~") return Key{KeyAction::kPageDown};
  if (body == "Z") return Key{KeyAction::kPreviousView};
  return std::nullopt;
}

}  // namespace

std::vector<Key> KeyDecoder::Feed(std::string_view bytes) {
  std::vector<Key> keys;
  std::string input = pending_ + std::string(bytes);
  pending_.clear();
  size_t i = 0;
  while (i < input.size()) {
    if (input[i] != kEscape) {
      if (std::optional<Key> key = PlainKey(input[i])) keys.push_back(*key);
      ++i;
      continue;
    }
    if (i + 1 == input.size()) {  // a lone ESC so far: the rest may come with the next read
      pending_ = input.substr(i);
      break;
    }
    const char introducer = input[i + 1];
    if (introducer != '[' && introducer != 'O') {  // ESC then a key (Alt-key): the key counts
      ++i;
      continue;
    }
    // Parameters and intermediates (0x20-0x3f) up to the final byte (0x40-0x7e).
    size_t end = i + 2;
    while (end < input.size() && static_cast<unsigned char>(input[end]) >= 0x20 &&
           static_cast<unsigned char>(input[end]) <= 0x3f) {
      ++end;
    }
    if (end == input.size()) {
      pending_ = input.substr(i);
      break;
    }
    if (std::optional<Key> key = SequenceKey(std::string_view(input).substr(i, end + 1 - i))) {
      keys.push_back(*key);
    }
    i = end + 1;
  }
  // A runaway sequence (noise, not a key) must not grow without end.
  if (pending_.size() > 16) pending_.clear();
  return keys;
}

}  // namespace pollux::top
