#include "block_record.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace pollux::durability {
namespace {

constexpr uint64_t kMagic = 0x706f6c6c75786475;  // "polluxdu"

struct Header {
  uint64_t magic;
  uint64_t round;
  uint64_t lba;
  uint64_t checksum;  // FNV-1a of the block with this field zero
};

uint64_t Checksum(const uint8_t* block, size_t size) {
  uint64_t hash = 0xcbf29ce484222325;
  for (size_t i = 0; i < size; ++i) {
    const bool in_checksum = i >= offsetof(Header, checksum) && i < sizeof(Header);
    hash = (hash ^ (in_checksum ? 0 : block[i])) * 0x100000001b3;
  }
  return hash;
}

}  // namespace

void FillBlock(uint8_t* block, size_t size, uint64_t round, uint64_t lba) {
  // Every byte depends on the round and the block: a block half of one round and half of the
  // next fails its checksum.
  uint64_t state = round * 0x9e3779b97f4a7c15 ^ lba;
  for (size_t i = sizeof(Header); i < size; ++i) {
    state = state * 6364136223846793005 + 1442695040888963407;
    block[i] = static_cast<uint8_t>(state >> 56);
  }
  Header header{kMagic, round, lba, 0};
  std::memcpy(block, &header, sizeof(header));
  header.checksum = Checksum(block, size);
  std::memcpy(block, &header, sizeof(header));
}

int64_t BlockRound(const uint8_t* block, size_t size, uint64_t lba, std::string* why) {
  Header header;
  std::memcpy(&header, block, sizeof(header));
  if (header.magic != kMagic) {
    *why = absl::StrFormat("block %u was never written (no header)", lba);
    return -1;
  }
  if (header.checksum != Checksum(block, size)) {
    *why = absl::StrFormat("block %u is torn: its checksum does not match (round %u)", lba,
                           header.round);
    return -1;
  }
  if (header.lba != lba) {
    *why = absl::StrFormat("block %u holds block %u's data", lba, header.lba);
    return -1;
  }
  return static_cast<int64_t>(header.round);
}

}  // namespace pollux::durability
