#include "file_test_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace pollux::testing {

TempDir::TempDir() {
  char pattern[] = "/var/tmp/pollux-bdev-file-XXXXXX";
  char* made = mkdtemp(pattern);
  EXPECT_NE(made, nullptr) << "mkdtemp: " << std::strerror(errno);
  if (made != nullptr) path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::vector<uint8_t> MakeFile(const std::string& path, uint64_t size, uint64_t seed) {
  int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  if (fd < 0) return {};
  std::vector<uint8_t> data;
  if (seed == 0) {
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  } else {
    data.resize(size);
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < size; i += 8) {
      uint64_t word = rng();
      std::memcpy(&data[i], &word, std::min<size_t>(8, size - i));
    }
    EXPECT_EQ(write(fd, data.data(), size), static_cast<ssize_t>(size));
  }
  close(fd);
  return data;
}

std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

AlignedBuffer::AlignedBuffer(size_t size)
    : data_(static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) / 4096 * 4096))),
      size_(size) {
  std::memset(data_.get(), 0, size);
}

std::vector<iovec> RandomIovecs(uint8_t* base, size_t len, int max_iovs, size_t granularity,
                                std::mt19937_64& rng) {
  int count = std::uniform_int_distribution<int>(1, max_iovs)(rng);
  size_t units = len / granularity;
  std::vector<size_t> cuts;
  for (int i = 1; i < count && units > 1; ++i) {
    cuts.push_back(std::uniform_int_distribution<size_t>(1, units - 1)(rng) * granularity);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(len);
  std::vector<iovec> iovs;
  size_t start = 0;
  for (size_t cut : cuts) {
    iovs.push_back({base + start, cut - start});
    start = cut;
  }
  return iovs;
}

namespace {

struct BatchState {
  std::atomic<size_t> remaining{0};
};

struct OpSlot {
  BatchOp* op;
  BatchState* state;
};

void OpDone(void* arg, BdevIoStatus status, int error_number) {
  auto* slot = static_cast<OpSlot*>(arg);
  slot->op->status = status;
  slot->op->error_number = error_number;
  slot->state->remaining.fetch_sub(1, std::memory_order_release);
}

}  // namespace

bool RunBatch(IoClient& client, std::vector<BatchOp>& ops) {
  BatchState state;
  state.remaining = ops.size();
  std::vector<OpSlot> slots;
  for (BatchOp& op : ops) slots.push_back({&op, &state});
  RunOn(client.thread(), [&] {
    BdevDesc& desc = client.desc();
    IoChannel& ch = client.channel();
    for (OpSlot& slot : slots) {
      BatchOp& op = *slot.op;
      switch (op.type) {
        case IoType::kRead:
          desc.Readv(ch, op.iovs.data(), static_cast<int>(op.iovs.size()), op.offset_blocks,
                     op.num_blocks, &OpDone, &slot);
          break;
        case IoType::kWrite:
          desc.Writev(ch, op.iovs.data(), static_cast<int>(op.iovs.size()), op.offset_blocks,
                      op.num_blocks, &OpDone, &slot);
          break;
        case IoType::kFlush:
          desc.Flush(ch, op.offset_blocks, op.num_blocks, &OpDone, &slot);
          break;
        case IoType::kUnmap:
          desc.Unmap(ch, op.offset_blocks, op.num_blocks, &OpDone, &slot);
          break;
        case IoType::kWriteZeroes:
          desc.WriteZeroes(ch, op.offset_blocks, op.num_blocks, &OpDone, &slot);
          break;
        case IoType::kReset:
          desc.Reset(ch, &OpDone, &slot);
          break;
      }
    }
  });
  return WaitUntil([&] { return state.remaining.load(std::memory_order_acquire) == 0; });
}

}  // namespace pollux::testing
