#include "json_value_scanner.h"

#include <cstring>

namespace pollux::rpc {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsNumberByte(char c) {
  return IsDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

}  // namespace

bool JsonValueScanner::StartValue(char c) {
  switch (c) {
    case '{':
      open_.push_back('{');
      expect_ = Expect::kKeyOrClose;
      return true;
    case '[':
      open_.push_back('[');
      expect_ = Expect::kValueOrClose;
      return true;
    case '"':
      in_string_ = true;
      string_is_key_ = false;
      return true;
    case 't':
      literal_ = "true";
      break;
    case 'f':
      literal_ = "false";
      break;
    case 'n':
      literal_ = "null";
      break;
    default:
      if (c != '-' && !IsDigit(c)) return false;
      literal_ = nullptr;
      break;
  }
  in_token_ = true;
  token_length_ = 1;
  return true;
}

bool JsonValueScanner::ContinueToken(char c) {
  if (literal_ == nullptr) return IsNumberByte(c);
  if (token_length_ >= std::strlen(literal_) || literal_[token_length_] != c) return false;
  ++token_length_;
  return true;
}

std::optional<size_t> JsonValueScanner::EndValue(size_t end) {
  if (open_.empty()) return end;
  expect_ = Expect::kCommaOrClose;
  return std::nullopt;
}

std::optional<size_t> JsonValueScanner::Scan(std::string_view buffer) {
  while (pos_ < buffer.size()) {
    const char c = buffer[pos_];
    if (in_string_) {
      // Raw control bytes are not allowed in strings; escapes are the parser's to check.
      if (static_cast<unsigned char>(c) < 0x20) return Fail();
      ++pos_;
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
        if (string_is_key_) {
          expect_ = Expect::kColon;
        } else if (std::optional<size_t> end = EndValue(pos_)) {
          return end;
        }
      }
      continue;
    }
    if (in_token_) {
      if (IsNumberByte(c) || (c >= 'a' && c <= 'z')) {
        if (!ContinueToken(c)) return Fail();
        ++pos_;
        continue;
      }
      // The terminator is not part of the token: `1}` is the value `1`, then a stray `}`.
      in_token_ = false;
      if (literal_ != nullptr && token_length_ != std::strlen(literal_)) return Fail();
      if (std::optional<size_t> end = EndValue(pos_)) return end;
      continue;  // the terminator is looked at again below
    }
    if (IsJsonSpace(c)) {
      ++pos_;
      continue;
    }
    started_ = true;
    switch (expect_) {
      case Expect::kValueOrClose:
        if (c == ']') break;
        [[fallthrough]];
      case Expect::kValue:
        if (!StartValue(c)) return Fail();
        ++pos_;
        continue;
      case Expect::kKeyOrClose:
        if (c == '}') break;
        [[fallthrough]];
      case Expect::kKey:
        if (c != '"') return Fail();
        in_string_ = true;
        string_is_key_ = true;
        ++pos_;
        continue;
      case Expect::kColon:
        if (c != ':') return Fail();
        expect_ = Expect::kValue;
        ++pos_;
        continue;
      case Expect::kCommaOrClose:
        if (c == ',') {
          expect_ = open_.back() == '{' ? Expect::kKey : Expect::kValue;
          ++pos_;
          continue;
        }
        break;
    }
    // A closing bracket, where one may come: it must match the innermost open container.
    if ((c == '}' && open_.back() == '{') || (c == ']' && open_.back() == '[')) {
      open_.pop_back();
      if (std::optional<size_t> end = EndValue(++pos_)) return end;
      continue;
    }
    return Fail();
  }
  return std::nullopt;
}

}  // namespace pollux::rpc
