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

void FileBdevTest::SetUp() {
  BdevTest::SetUp();
  path_ = dir_.File("disk.img");
  shadow_ = MakeFile(path_, kBlocks * kBlock, seed_);
}

absl::StatusOr<rpc::Json> FileBdevTest::CreateFileBdev(const std::string& name,
                                                       rpc::Json extra) {
  rpc::Json params = {{"name", name}, {"filename", path_}, {"block_size", kBlock}};
  for (auto& [key, value] : extra.items()) params[key] = value;
  return CallRpc(create_method_, params);
}

void FileBdevTest::BatchDone(void* arg, BdevIoStatus status, int error_number) {
  auto& batch = *static_cast<Batch*>(arg);
  if (status == BdevIoStatus::kSuccess) {
    batch.succeeded.fetch_add(1);
  } else {
    batch.errors.push_back(error_number);
  }
  batch.done.fetch_add(1);
}

void FileBdevTest::WriteAndReadBack(IoClient& client, uint64_t seed) {
  std::mt19937_64 random(seed);
  constexpr int kRequests = 64;
  constexpr int kMaxBlocks = 8;
  std::vector<uint64_t> offsets(kRequests);
  std::vector<uint64_t> lengths(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    offsets[i] = static_cast<uint64_t>(i) * (kBlocks / kRequests) + random() % 16;
    lengths[i] = 1 + random() % kMaxBlocks;
  }
  const size_t stride = static_cast<size_t>(kMaxBlocks) * kBlock;
  AlignedBuffer memory(kRequests * stride);  // aligned for O_DIRECT
  std::vector<std::vector<iovec>> iovs(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    uint8_t* base = memory.data() + i * stride;
    for (uint64_t left = lengths[i]; left > 0;) {
      uint64_t piece = 1 + random() % left;
      iovs[i].push_back({base, piece * kBlock});
      base += piece * kBlock;
      left -= piece;
    }
    for (uint64_t b = 0; b < lengths[i] * kBlock; ++b) {
      uint8_t value = static_cast<uint8_t>(random());
      memory.data()[i * stride + b] = value;
      shadow_[offsets[i] * kBlock + b] = value;
    }
  }
  Batch writes;
  RunBatch(client, kRequests, writes, [&](int i, BdevIoCallback cb, void* arg) {
    client.desc().Writev(client.channel(), iovs[i].data(), static_cast<int>(iovs[i].size()),
                         offsets[i], lengths[i], cb, arg);
  });
  EXPECT_EQ(writes.succeeded.load(), kRequests) << ::testing::PrintToString(writes.errors);
  std::memset(memory.data(), 0, memory.size());
  Batch reads;
  RunBatch(client, kRequests, reads, [&](int i, BdevIoCallback cb, void* arg) {
    client.desc().Readv(client.channel(), iovs[i].data(), static_cast<int>(iovs[i].size()),
                        offsets[i], lengths[i], cb, arg);
  });
  EXPECT_EQ(reads.succeeded.load(), kRequests) << ::testing::PrintToString(reads.errors);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(std::memcmp(memory.data() + i * stride, shadow_.data() + offsets[i] * kBlock,
                          lengths[i] * kBlock),
              0)
        << "request " << i;
  }
}

}  // namespace pollux::testing
