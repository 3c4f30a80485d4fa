// The front-end's memory as SET_MEM_TABLE shares it: one MAP_SHARED mapping per region, and
// translation of guest physical addresses (descriptors) and front-end virtual addresses (rings)
// into this process, region by region.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "owned_resources.h"
#include "pollux/virtio/vhost_user_protocol.h"

namespace pollux::testing::vhost_backend {

class GuestMemory {
 public:
  // Maps `region` from `fd`. False, with the reason in *error, when the region is empty, its
  // addresses wrap, the fd is not a regular file large enough to back it (touching a mapping past
  // the end of its file raises SIGBUS), or mmap fails.
  bool AddRegion(const vhost_user::MemoryRegion& region, int fd, std::string* error);
  void Clear() { regions_.clear(); }
  bool empty() const { return regions_.empty(); }

  // The host address of [gpa, gpa + len) when the whole range lies inside one region; nullptr
  // otherwise (outside every region, or crossing a region's end: libvhost-user splits such a
  // buffer, this back-end refuses it so the front-end's layout mistakes show).
  uint8_t* GpaToHost(uint64_t gpa, uint64_t len) const;
  // The same for front-end virtual addresses (SET_VRING_ADDR).
  uint8_t* UvaToHost(uint64_t uva, uint64_t len) const;

 private:
  struct Region {
    uint64_t gpa;
    uint64_t uva;
    uint64_t size;
    uint8_t* host;
    MemoryMapping mapping;
  };
  static uint8_t* Translate(uint64_t start, uint64_t size, uint8_t* host, uint64_t addr,
                            uint64_t len);

  std::vector<Region> regions_;
};

}  // namespace pollux::testing::vhost_backend
