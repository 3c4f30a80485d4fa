#include "guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pollux::testing::vhost_backend {

bool GuestMemory::AddRegion(const vhost_user::MemoryRegion& region, int fd, std::string* error) {
  const uint64_t size = region.memory_size;
  if (size == 0) {
    *error = "empty region";
    return false;
  }
  if (region.guest_phys_addr + size < region.guest_phys_addr ||
      region.userspace_addr + size < region.userspace_addr ||
      region.mmap_offset + size < region.mmap_offset) {
    *error = "region addresses wrap around";
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *error = std::string("fstat: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "region fd is not a regular file (memfd, hugetlbfs or shm file expected)";
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) < region.mmap_offset + size) {
    *error = "region's fd is " + std::to_string(st.st_size) + " bytes, smaller than offset " +
             std::to_string(region.mmap_offset) + " + size " + std::to_string(size);
    return false;
  }
  // mmap wants a page-aligned offset; mmap_offset need not be one.
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t map_offset = region.mmap_offset & ~(page - 1);
  const uint64_t delta = region.mmap_offset - map_offset;
  void* addr = mmap(nullptr, size + delta, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(map_offset));
  if (addr == MAP_FAILED) {
    *error = std::string("mmap: ") + std::strerror(errno);
    return false;
  }
  regions_.push_back(Region{region.guest_phys_addr, region.userspace_addr, size,
                            static_cast<uint8_t*>(addr) + delta,
                            MemoryMapping(addr, size + delta)});
  return true;
}

uint8_t* GuestMemory::Translate(uint64_t start, uint64_t size, uint8_t* host, uint64_t addr,
                                uint64_t len) {
  if (addr < start) return nullptr;
  const uint64_t offset = addr - start;
  // Written so that nothing overflows: offset < size, then len fits in what is left.
  if (offset >= size || len > size - offset) return nullptr;
  return host + offset;
}

uint8_t* GuestMemory::GpaToHost(uint64_t gpa, uint64_t len) const {
  for (const Region& r : regions_) {
    if (uint8_t* p = Translate(r.gpa, r.size, r.host, gpa, len)) return p;
  }
  return nullptr;
}

uint8_t* GuestMemory::UvaToHost(uint64_t uva, uint64_t len) const {
  for (const Region& r : regions_) {
    if (uint8_t* p = Translate(r.uva, r.size, r.host, uva, len)) return p;
  }
  return nullptr;
}

}  // namespace pollux::testing::vhost_backend
