#include "elf_abi_stamps.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "absl/strings/str_format.h"
#include "pollux/env/abi_stamp.h"

namespace pollux {
namespace {

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#else
#error "pollux plugins: add this machine's ELF e_machine"
#endif

// A note section larger than this is not one a compiler wrote for a few stamps.
constexpr uint64_t kMaxNoteSectionBytes = 1 << 20;

// The file, closed on every path out.
class ElfFile {
 public:
  explicit ElfFile(int fd) : fd_(fd) {}
  ~ElfFile() {
    if (fd_ >= 0) close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // Reads exactly `size` bytes at `offset`; false when the file is shorter.
  bool ReadAt(uint64_t offset, void* out, uint64_t size) const {
    if (offset > size_ || size > size_ - offset) return false;
    auto* bytes = static_cast<char*>(out);
    while (size > 0) {
      ssize_t n = pread(fd_, bytes, size, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes += n;
      offset += static_cast<uint64_t>(n);
      size -= static_cast<uint64_t>(n);
    }
    return true;
  }

  bool Stat() {
    struct stat st;
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    size_ = static_cast<uint64_t>(st.st_size);
    return true;
  }

 private:
  int fd_;
  uint64_t size_ = 0;
};

uint64_t AlignUp4(uint64_t n) { return (n + 3) & ~uint64_t{3}; }

// Appends the pollux stamps among the notes in `notes` (one SHT_NOTE section's bytes).
absl::Status CollectStamps(const std::string& path, const std::string& notes,
                           std::vector<std::string>& stamps) {
  uint64_t at = 0;
  while (at < notes.size()) {
    Elf64_Nhdr header;
    if (notes.size() - at < sizeof(header)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: a truncated ELF note", path));
    }
    std::memcpy(&header, notes.data() + at, sizeof(header));
    at += sizeof(header);
    uint64_t name_bytes = AlignUp4(header.n_namesz);
    uint64_t desc_bytes = AlignUp4(header.n_descsz);
    if (name_bytes > notes.size() - at || desc_bytes > notes.size() - at - name_bytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: an ELF note runs past its section", path));
    }
    std::string_view name(notes.data() + at, header.n_namesz);
    std::string_view desc(notes.data() + at + name_bytes, header.n_descsz);
    at += name_bytes + desc_bytes;
    if (header.n_type != internal::kAbiNoteType ||
        name != std::string_view(internal::kAbiNoteName, sizeof(internal::kAbiNoteName))) {
      continue;
    }
    // The version string, NUL-padded; a note without a NUL is cut at its end.
    stamps.emplace_back(desc.substr(0, desc.find('\0')));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadElfAbiStamps(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrFormat("%s: %s", path, strerror(err)));
  }
  ElfFile file(fd);
  if (!file.Stat()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not a regular file", path));
  }
  Elf64_Ehdr ehdr;
  if (!file.ReadAt(0, &ehdr, sizeof(ehdr)) || std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not an ELF file", path));
  }
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_ident[EI_DATA] != ELFDATA2LSB ||
      ehdr.e_machine != kHostMachine) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: an ELF file for another machine (class %d, machine %d)", path,
                        ehdr.e_ident[EI_CLASS], ehdr.e_machine));
  }
  if (ehdr.e_type != ET_DYN) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a shared object (ELF type %d)", path, ehdr.e_type));
  }
  if (ehdr.e_shnum == 0) return std::vector<std::string>{};  // no sections: no notes to find
  if (ehdr.e_shentsize != sizeof(Elf64_Shdr)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: a malformed ELF section table", path));
  }
  std::vector<std::string> stamps;
  for (uint64_t i = 0; i < ehdr.e_shnum; ++i) {
    Elf64_Shdr shdr;
    if (!file.ReadAt(ehdr.e_shoff + i * sizeof(shdr), &shdr, sizeof(shdr))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: the ELF section table runs past the file", path));
    }
    if (shdr.sh_type != SHT_NOTE) continue;
    if (shdr.sh_size > kMaxNoteSectionBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: an ELF note section of %u bytes", path, shdr.sh_size));
    }
    std::string notes(shdr.sh_size, '\0');
    if (!file.ReadAt(shdr.sh_offset, notes.data(), notes.size())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: an ELF note section runs past the file", path));
    }
    absl::Status status = CollectStamps(path, notes, stamps);
    if (!status.ok()) return status;
  }
  return stamps;
}

}  // namespace pollux
