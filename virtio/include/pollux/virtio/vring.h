// The virtio ring layouts (split and packed descriptors, available and used rings, event
// suppression) from the kernel's uapi header, without its legacy C helpers (vring_init and
// friends convert void* implicitly, which C++ refuses).
#pragma once

#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#include <linux/virtio_ring.h>
