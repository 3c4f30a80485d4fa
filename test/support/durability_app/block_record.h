// What the durability writer puts in each block: which round wrote it, where, and a checksum
// of the whole block, so that a block torn between two rounds (or never written) shows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pollux::durability {

// Fills `block` (`size` bytes, at least 64) as written by `round` at block `lba`.
void FillBlock(uint8_t* block, size_t size, uint64_t round, uint64_t lba);

// The round that wrote `block`, if it is whole and belongs at `lba`; otherwise -1, and `why`
// says what is wrong.
int64_t BlockRound(const uint8_t* block, size_t size, uint64_t lba, std::string* why);

}  // namespace pollux::durability
