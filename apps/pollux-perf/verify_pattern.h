// The data pattern of the verify workload. Every 8-byte word of a block is a function of a
// per-job seed, the block's number and the word's index, so any block can be checked on its
// own, without remembering what was written: two writes of one block carry the same data
// (in-flight I/Os of one job may overlap after the walk wraps without false alarms), and a
// block holding another block's data, stale data from an earlier run (another seed), or a
// flipped byte all show up.
//
// Buffers may lie at any address (--buffer-offset 7 puts them at odd ones): words are stored
// and loaded with memcpy, which compiles to one plain move each on x86 and is defined
// behaviour at any alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

namespace pollux::perf {

// SplitMix64's finaliser: a cheap bijection that spreads every input bit over the output.
inline uint64_t MixBits(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t PatternWord(uint64_t seed, uint64_t block, uint64_t word) {
  return MixBits(seed + block * 0x9E3779B97F4A7C15ULL + word);
}

// Fills `num_blocks` blocks starting at block number `first_block`.
inline void FillPattern(void* buf, uint64_t first_block, uint64_t num_blocks, uint32_t block_size,
                        uint64_t seed) {
  auto* out = static_cast<unsigned char*>(buf);
  const uint64_t words_per_block = block_size / sizeof(uint64_t);
  for (uint64_t b = 0; b < num_blocks; ++b) {
    for (uint64_t w = 0; w < words_per_block; ++w) {
      const uint64_t word = PatternWord(seed, first_block + b, w);
      std::memcpy(out, &word, sizeof(word));
      out += sizeof(word);
    }
  }
}

struct PatternMismatch {
  uint64_t block;          // block number in the bdev
  uint64_t byte_in_block;  // the first byte that differs
  uint8_t expected_byte;
  uint8_t got_byte;
  uint64_t word_in_block;  // byte offset of the 8-byte word holding it
  uint64_t expected;       // that word as written
  uint64_t got;            // as read back
  uint64_t bad_words;      // mismatching words in the whole buffer
};

// The first mismatching word of the buffer, if any.
inline std::optional<PatternMismatch> CheckPattern(const void* buf, uint64_t first_block,
                                                   uint64_t num_blocks, uint32_t block_size,
                                                   uint64_t seed) {
  const auto* in = static_cast<const unsigned char*>(buf);
  const uint64_t words_per_block = block_size / sizeof(uint64_t);
  std::optional<PatternMismatch> first;
  for (uint64_t b = 0; b < num_blocks; ++b) {
    for (uint64_t w = 0; w < words_per_block; ++w) {
      uint64_t expected = PatternWord(seed, first_block + b, w);
      uint64_t got;
      std::memcpy(&got, in, sizeof(got));
      in += sizeof(got);
      if (got == expected) [[likely]]
        continue;
      if (!first) {
        // Words are stored little-endian: byte k of the word holds bits 8k to 8k+7.
        const int byte = __builtin_ctzll(expected ^ got) / 8;
        first = PatternMismatch{first_block + b,
                                w * sizeof(uint64_t) + byte,
                                static_cast<uint8_t>(expected >> (8 * byte)),
                                static_cast<uint8_t>(got >> (8 * byte)),
                                w * sizeof(uint64_t),
                                expected,
                                got,
                                0};
      }
      ++first->bad_words;
    }
  }
  return first;
}

}  // namespace pollux::perf
