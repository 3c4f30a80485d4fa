#!/usr/bin/env python3
"""Writes the seed corpus of the virtio_initiator fuzz target (corpus/virtio_initiator/).

Each seed is one input in the format virtio_initiator_fuzz.cc documents: a 2-byte header, then
operations. The seeds add direct and indirect chains on split and packed rings, have the
back-end complete them in and out of order (wrapping the rings), and end with the protocol
errors a back-end can make, so that the fuzzer starts from working queues.
Run it from anywhere: python3 test/fuzz/make_seeds_virtio_initiator.py
"""
import os
import struct

(ADD_CHAIN, ADD_INDIRECT, BACKEND_COMPLETE, BACKEND_WRITE, NEXT_USED, NEEDS_KICK,
 ENABLE_INTERRUPTS, DISABLE_INTERRUPTS) = range(8)
PACKED, EVENT_IDX = 1, 2


class Seed:
    def __init__(self, features, size_byte):
        self.out = bytearray([features, size_byte])

    def add(self, count):
        self.out += bytes([ADD_CHAIN, count - 1])
        return self

    def add_indirect(self, entries):
        self.out += bytes([ADD_INDIRECT, entries - 1])
        return self

    def complete(self, pick, length):
        self.out += struct.pack('<BHI', BACKEND_COMPLETE, pick, length)
        return self

    def write(self, offset, data):
        self.out += struct.pack('<BHB', BACKEND_WRITE, offset, len(data) - 1) + bytes(data)
        return self

    def next_used(self, calls=8):
        self.out += bytes([NEXT_USED, calls - 1])
        return self

    def op(self, code):
        self.out.append(code)
        return self


def seeds():
    s = {}
    for name, features, size_byte in (('split', 0, 3), ('split_event_idx', EVENT_IDX, 2),
                                      ('packed', PACKED, 7), ('packed_event_idx',
                                                              PACKED | EVENT_IDX, 4)):
        # Requests of three descriptors (as blk requests are) completed in order, several
        # times round the ring, with the interrupt and kick calls of a polling queue.
        x = Seed(features, size_byte)
        for _ in range(6):
            x.add(3).op(NEEDS_KICK).complete(0, 513).op(ENABLE_INTERRUPTS).next_used()
            x.op(DISABLE_INTERRUPTS)
        s[name + '_in_order'] = x

        # Out of order, mixed with indirect chains, until a ring of 16 is full.
        x = Seed(features, 15 if features & PACKED else 4)
        x.add(3).add_indirect(10).add(1).add(2).op(NEEDS_KICK)
        x.complete(2, 1).complete(0, 513).next_used(2).complete(1, 4097).complete(0, 1)
        x.next_used().add(8).add(8).add_indirect(16).complete(1, 1).next_used()
        s[name + '_out_of_order'] = x

    # Protocol errors: an id never made available, the same id twice, an index run ahead.
    x = Seed(0, 3)
    x.add(1).write(0x80 + 0x40 + 4, [5, 0, 0, 0, 1, 0, 0, 0])  # used entry 0: id 5
    x.write(0x80 + 0x40 + 2, [1, 0]).next_used()  # used->idx = 1
    s['split_error_unknown_id'] = x
    x = Seed(0, 3)
    x.add(1).add(1).complete(0, 1).next_used(1).complete(0, 1)
    x.write(0x80 + 0x40 + 4 + 8, [0, 0, 0, 0])  # second used entry: id 0 again
    x.next_used()
    s['split_error_twice'] = x
    x = Seed(0, 3)
    x.add(1).write(0x80 + 0x40 + 2, [9, 0]).next_used()  # used->idx = 9, one in flight
    s['split_error_index_ahead'] = x
    x = Seed(PACKED, 7)
    x.add(2).complete(0, 1).next_used().complete(7, 1).next_used()
    s['packed_error_nothing_in_flight'] = x
    return s


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus',
                           'virtio_initiator')
    os.makedirs(out_dir, exist_ok=True)
    for name, seed in seeds().items():
        with open(os.path.join(out_dir, 'seed-' + name), 'wb') as f:
            f.write(bytes(seed.out))


if __name__ == '__main__':
    main()
