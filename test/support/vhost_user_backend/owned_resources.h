// RAII owners for the back-end's file descriptors and memory mappings, and its log line.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <utility>

namespace pollux::testing::vhost_backend {

// Every diagnostic goes to stderr with one prefix, so a test's output shows who complained.
#define VHOST_TEST_LOG(...)                                   \
  do {                                                        \
    std::fprintf(stderr, "vhost-test-backend: " __VA_ARGS__); \
    std::fputc('\n', stderr);                                 \
  } while (0)

// Owns one file descriptor; closes it on destruction or Reset().
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Owns one mmap()ed range; unmaps it on destruction.
class MemoryMapping {
 public:
  MemoryMapping() = default;
  MemoryMapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  ~MemoryMapping() { Reset(); }
  MemoryMapping(MemoryMapping&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), length_(std::exchange(other.length_, 0)) {}
  MemoryMapping& operator=(MemoryMapping&& other) noexcept {
    if (this != &other) {
      Reset();
      addr_ = std::exchange(other.addr_, nullptr);
      length_ = std::exchange(other.length_, 0);
    }
    return *this;
  }
  MemoryMapping(const MemoryMapping&) = delete;
  MemoryMapping& operator=(const MemoryMapping&) = delete;

  void* addr() const { return addr_; }
  void Reset() {
    if (addr_ != nullptr) ::munmap(addr_, length_);
    addr_ = nullptr;
    length_ = 0;
  }

 private:
  void* addr_ = nullptr;
  size_t length_ = 0;
};

}  // namespace pollux::testing::vhost_backend
