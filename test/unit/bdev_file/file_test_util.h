// What the file-engine tests share: a temporary directory on a real filesystem (O_DIRECT works
// there, unlike tmpfs on older kernels), files of given sizes and contents, and batches of
// I/O submitted from one message so that they overlap (the asynchronous path; a lone request
// takes the adaptive inline path).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev/bdev_io.h"

namespace pollux::testing {

// A directory under /var/tmp (not /tmp, which may be tmpfs), removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes a file of `size` bytes: deterministic pseudo-random bytes from `seed`, or zeroes
// (a sparse file) when seed is 0. Returns its contents (empty for a sparse file).
std::vector<uint8_t> MakeFile(const std::string& path, uint64_t size, uint64_t seed);

// The whole file, read with a plain buffered fd.
std::vector<uint8_t> ReadWholeFile(const std::string& path);

// A buffer aligned for O_DIRECT (4096), zero-filled.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t size);
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_;
};

// One request of a batch, and how it ended.
struct BatchOp {
  IoType type = IoType::kRead;
  uint64_t offset_blocks = 0;
  uint64_t num_blocks = 0;
  std::vector<iovec> iovs;  // READ / WRITE
  BdevIoStatus status = BdevIoStatus::kSuccess;
  int error_number = 0;
};

// Submits every op from one message on the client's thread (so they overlap) and waits until
// all have completed. Returns false on a timeout (a hang).
bool RunBatch(IoClient& client, std::vector<BatchOp>& ops);

// The fixture of the per-engine tests (aio_bdev_test, threadpool_bdev_test): a BdevTest with a
// file of kBlocks random blocks of kBlock bytes in a TempDir, and what it holds (shadow_).
class FileBdevTest : public BdevTest {
 protected:
  static constexpr uint32_t kBlock = 4096;
  static constexpr uint64_t kBlocks = 2048;  // 8 MiB

  // `create_method`: the engine's bdev_<engine>_create; `seed`: the file's contents.
  FileBdevTest(std::string create_method, uint64_t seed)
      : create_method_(std::move(create_method)), seed_(seed) {}
  void SetUp() override;

  // Calls the create method for bdev `name` over the file (block size kBlock), with `extra`
  // parameters added.
  absl::StatusOr<rpc::Json> CreateFileBdev(const std::string& name,
                                           rpc::Json extra = rpc::Json::object());

  // Requests submitted at once on the client's thread (so that they overlap): how many
  // succeeded, and each failure's errno.
  struct Batch {
    std::atomic<int> done{0};
    std::atomic<int> succeeded{0};
    std::vector<int> errors;  // written on the client's thread only
  };
  static void BatchDone(void* arg, BdevIoStatus status, int error_number);
  // Calls submit(i, cb, cb_arg) for i in [0, count) from one message, then waits for all.
  template <typename SubmitEach>
  void RunBatch(IoClient& client, int count, Batch& batch, SubmitEach submit) {
    RunOn(client.thread(), [&] {
      for (int i = 0; i < count; ++i) submit(i, &BatchDone, &batch);
    });
    ASSERT_TRUE(WaitUntil([&] { return batch.done.load() == count; }));
  }

  // 64 overlapping writes, then reads, of disjoint random ranges of the file, each cut into
  // iovecs at random block boundaries, checked against shadow_ (which they update).
  void WriteAndReadBack(IoClient& client, uint64_t seed);

  TempDir dir_;
  std::string path_;
  std::vector<uint8_t> shadow_;  // the file's contents

 private:
  std::string create_method_;
  uint64_t seed_;
};

}  // namespace pollux::testing
