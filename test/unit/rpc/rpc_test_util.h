// Helpers shared by the rpc unit tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pollux::rpc::test_util {

// A fresh directory under /tmp, removed with its contents at destruction. Unique per test, so
// tests may run in parallel.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/pollux-rpc-test.XXXXXX";
    const char* path = ::mkdtemp(pattern);
    if (path == nullptr) std::abort();
    path_ = path;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

  // Writes a file in the directory and returns its path.
  std::string File(const std::string& name, const std::string& text) const {
    std::string path = Path(name);
    std::ofstream(path) << text;
    return path;
  }

 private:
  std::string path_;
};

}  // namespace pollux::rpc::test_util
