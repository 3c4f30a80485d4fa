// Incremental splitter of a JSON byte stream into values, without building them. Private to rpc.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pollux::rpc {

// Finds where the first JSON value of a growing buffer ends, checking its syntax as it goes. It
// resumes where the previous Scan() stopped, so a message that arrives in many small reads is
// scanned once in total, not once per read. Objects, arrays and strings end at their closing
// byte; a number or a literal ends before the next whitespace or structural byte, so such a
// token at the very end of the buffer is incomplete.
//
// A byte that no valid JSON can continue with (`{"a" x`, `hello`, a stray `}`) ends the value
// there, with invalid() set: a server answers a parse error at once instead of waiting for the
// rest of a value that can never be complete. What the scanner does not check (the spelling of
// numbers, escapes inside strings) the parser reports once the value is delimited.
class JsonValueScanner {
 public:
  // `buffer` must hold the bytes of the previous call as its prefix. Returns one past the last
  // byte of the value (of the offending byte when invalid()), or std::nullopt while it is
  // incomplete. Call Reset() before scanning the bytes that follow a value.
  std::optional<size_t> Scan(std::string_view buffer);

  void Reset() { *this = JsonValueScanner(); }

  // Whether a value has begun (anything but whitespace was seen).
  bool started() const { return started_; }
  // Whether the value Scan() delimited is malformed at its last byte.
  bool invalid() const { return invalid_; }

 private:
  // What may come next outside strings and tokens.
  enum class Expect { kValue, kValueOrClose, kKeyOrClose, kKey, kColon, kCommaOrClose };

  // Called with the byte at pos_ that ends a value; the end of the whole value or nullopt.
  std::optional<size_t> EndValue(size_t end);
  std::optional<size_t> Fail() {
    invalid_ = true;
    return ++pos_;
  }
  // A byte where a value may start; false when none can start with it.
  bool StartValue(char c);
  // A byte of a number or literal token; false when the token cannot go on with it.
  bool ContinueToken(char c);

  size_t pos_ = 0;
  std::string open_;  // the open containers, innermost last: '{' or '['
  Expect expect_ = Expect::kValue;
  bool started_ = false;
  bool invalid_ = false;
  bool in_string_ = false;
  bool string_is_key_ = false;
  bool escape_ = false;
  bool in_token_ = false;
  const char* literal_ = nullptr;  // "true", "false" or "null" while scanning one, else null
  size_t token_length_ = 0;
};

}  // namespace pollux::rpc
