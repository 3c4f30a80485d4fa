// Incremental splitter of a JSON byte stream into values, without parsing them. Private to rpc.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace pollux::rpc {

// Finds where the first JSON value of a growing buffer ends. It resumes where the previous
// Scan() stopped, so a message that arrives in many small reads is scanned once in total, not
// once per read. Objects, arrays and strings end at their closing byte (strings and escapes
// inside them are skipped); any other token (a number, a literal, garbage) ends before the next
// whitespace or structural byte, so such a token at the very end of the buffer is incomplete.
// A stray structural byte (`}`, `]`, `,`, `:`) is a value of one byte that the parser rejects.
class JsonValueScanner {
 public:
  // `buffer` must hold the bytes of the previous call as its prefix. Returns one past the last
  // byte of the value, or std::nullopt while it is incomplete. Call Reset() before scanning the
  // bytes that follow a value.
  std::optional<size_t> Scan(std::string_view buffer);

  void Reset() { *this = JsonValueScanner(); }

  // Whether a value has begun (anything but whitespace was seen).
  bool started() const { return state_ != State::kLeadingSpace; }

 private:
  enum class State { kLeadingSpace, kContainer, kString, kScalar };

  State state_ = State::kLeadingSpace;
  size_t pos_ = 0;
  size_t depth_ = 0;        // open objects and arrays, in kContainer
  bool in_string_ = false;  // inside a string nested in a container
  bool escape_ = false;     // the previous byte of a string was a backslash
};

}  // namespace pollux::rpc
