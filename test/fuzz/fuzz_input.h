// The fuzz targets' reader of their input: fixed-width little-endian fields taken from the
// front, 0 once the bytes run out. Written here rather than taken from clang's
// FuzzedDataProvider, which g++ does not find: every target builds with both compilers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pollux::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), left_(size) {}

  bool empty() const { return left_ == 0; }

  uint8_t U8() {
    if (left_ == 0) return 0;
    --left_;
    return *data_++;
  }
  uint16_t U16() { return static_cast<uint16_t>(Bytes(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Bytes(4)); }
  uint64_t U64() { return Bytes(8); }

 private:
  // Byte by byte: the input has no alignment, and the value must not depend on the host.
  uint64_t Bytes(int n) {
    uint64_t value = 0;
    for (int i = 0; i < n; ++i) value |= uint64_t{U8()} << (8 * i);
    return value;
  }

  const uint8_t* data_;
  size_t left_;
};

}  // namespace pollux::fuzz
