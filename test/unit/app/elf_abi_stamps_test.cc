// ReadElfAbiStamps: the stamp of a real module library, none in a library without modules,
// clear errors for files that are not shared objects, and no read outside the file whatever
// its bytes say (truncated and corrupted copies of a real library).
#include "elf_abi_stamps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

namespace pollux {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ScratchFile {
 public:
  ScratchFile() {
    char name[] = "/tmp/pollux-elf-test-XXXXXX";
    int fd = mkstemp(name);
    if (fd >= 0) close(fd);
    path_ = name;
  }
  ~ScratchFile() { unlink(path_.c_str()); }
  const std::string& Write(const std::string& bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    return path_;
  }

 private:
  std::string path_;
};

TEST(ElfAbiStampsTest, AModuleLibraryCarriesThisVersion) {
  auto stamps = ReadElfAbiStamps(STAMPED_LIBRARY);
  ASSERT_TRUE(stamps.ok()) << stamps.status();
  EXPECT_THAT(*stamps, ElementsAre(POLLUX_VERSION_UNDER_TEST));
}

TEST(ElfAbiStampsTest, ALibraryWithoutModulesHasNone) {
  auto stamps = ReadElfAbiStamps(UNSTAMPED_LIBRARY);
  ASSERT_TRUE(stamps.ok()) << stamps.status();
  EXPECT_TRUE(stamps->empty());
}

TEST(ElfAbiStampsTest, WhatIsNotASharedObjectIsAClearError) {
  ScratchFile file;
  auto missing = ReadElfAbiStamps("/nonexistent/plugin.so");
  EXPECT_THAT(missing.status().message(), HasSubstr("No such file or directory"));
  EXPECT_THAT(ReadElfAbiStamps("/tmp").status().message(), HasSubstr("not a regular file"));
  EXPECT_THAT(ReadElfAbiStamps(file.Write("")).status().message(), HasSubstr("not an ELF file"));
  EXPECT_THAT(ReadElfAbiStamps(file.Write("#!/bin/sh\necho hi\n")).status().message(),
              HasSubstr("not an ELF file"));
  // This test's own program: ELF, but an executable (position-independent executables are
  // ET_DYN too, so only check that it is read without error or refused clearly).
  auto self = ReadElfAbiStamps("/proc/self/exe");
  if (!self.ok()) {
    EXPECT_THAT(self.status().message(), HasSubstr("not a shared object"));
  }
  std::string header = ReadAll(STAMPED_LIBRARY).substr(0, 64);
  header[4] = 1;  // ELFCLASS32
  EXPECT_THAT(ReadElfAbiStamps(file.Write(header)).status().message(),
              HasSubstr("for another machine"));
}

TEST(ElfAbiStampsTest, TruncatedCopiesAreReadOnlyInsideTheFile) {
  const std::string library = ReadAll(STAMPED_LIBRARY);
  ASSERT_GT(library.size(), 4096u);
  ScratchFile file;
  // Every length up to the first 4 KiB (headers), then 200 lengths across the rest (notes,
  // the section table at the end).
  for (size_t length = 0; length <= library.size();
       length += length < 4096 ? 1 : library.size() / 200) {
    const std::string& path = file.Write(library.substr(0, length));
    auto stamps = ReadElfAbiStamps(path);
    if (stamps.ok()) {
      EXPECT_LE(stamps->size(), 1u);
    } else {
      EXPECT_THAT(stamps.status().message(), HasSubstr(path));
    }
  }
}

TEST(ElfAbiStampsTest, CorruptedCopiesAreReadOnlyInsideTheFile) {
  const std::string library = ReadAll(STAMPED_LIBRARY);
  ScratchFile file;
  std::mt19937_64 random(20261206);
  // The bytes that steer the reader: the ELF header, the section table, the note sections.
  for (int round = 0; round < 2000; ++round) {
    std::string copy = library;
    for (int flips = 0; flips < 4; ++flips) {
      size_t at;
      switch (random() % 3) {
        case 0:
          at = random() % 64;
          break;
        case 1:
          at = copy.size() - 1 - random() % std::min<size_t>(copy.size(), 64 * 40);
          break;
        default:
          at = random() % std::min<size_t>(copy.size(), 4096);
          break;
      }
      copy[at] = static_cast<char>(random());
    }
    const std::string& path = file.Write(copy);
    auto stamps = ReadElfAbiStamps(path);
    // Any answer but a crash or a read outside the file (ASan's part); an error names the file.
    if (!stamps.ok()) {
      EXPECT_THAT(stamps.status().message(), HasSubstr(path));
    }
  }
}

}  // namespace
}  // namespace pollux
