#!/usr/bin/env python3
"""Writes the seed corpus of the virtqueue fuzz target (test/fuzz/corpus/virtqueue/).

Each seed is one input in the format virtqueue_fuzz.cc documents: a 16-byte header, then
operations. The seeds make well-formed chains of every shape (direct, chained, across two
regions, indirect, direct then indirect; split and packed; wrapping indexes, EVENT_IDX) and
complete them, so that the fuzzer starts from valid rings; a few end in the errors a guest
can cause. Run it from anywhere: python3 test/fuzz/make_seeds_virtqueue.py
"""
import os
import struct

# Operations, in the order of the Op enum (virtqueue_fuzz_session.h).
(WRITE_DESCRIPTOR, WRITE_ENTRY, WRITE_BYTES, MAKE_AVAILABLE, SET_DRIVER_INDEX, SET_DRIVER_EVENT,
 ADD_CHAIN, POLL, COMPLETE, PUBLISH, ENABLE, DISABLE, KEEP_OFF, READ_CHAIN, RESTART,
 SET_BASE, TRANSLATE) = range(17)

PACKED, EVENT_IDX, INDIRECT = 1, 2, 4
AFTER_A, AFTER_A_GAP, BEFORE_A, NO_B = range(4)
NEXT, WRITE, F_INDIRECT = 1, 2, 4
AVAIL, USED = 1 << 7, 1 << 15
WRAP = 1 << 15
GPA_A = 0x100000
DATA = 0x4000   # region A's data area
TABLE = 0x3000  # region A's table area


class Seed:
    def __init__(self, features=0, size_byte=3, start=0, max_iov=16, b_place=AFTER_A,
                 b_size=0x4000, gpa_a=GPA_A):
        # Queue size: split 1 << size_byte, packed size_byte + 1.
        self.out = bytearray(struct.pack('<BBHBBHQ', features, size_byte, start, max_iov - 1,
                                         b_place, b_size - 1, gpa_a))

    def op(self, code, fmt='', *args):
        self.out += struct.pack('<B' + fmt, code, *args)
        return self

    # An address from the start of region A (selector 0) or B (1), or back from the end of A
    # (2) or B (3).
    def addr_a(self, offset):
        return struct.pack('<BH', 0, offset)

    def addr_b(self, offset):
        return struct.pack('<BH', 1, offset)

    def addr_a_end(self, back):
        return struct.pack('<BH', 2, back)

    def addr_b_end(self, back):
        return struct.pack('<BH', 3, back)

    def desc(self, addr, length, flags, next_or_id):
        return addr + struct.pack('<IHH', length, flags, next_or_id)

    # An address and a length that runs to its region's end, plus delta (-128..127).
    def to_end(self, addr, delta=0):
        return bytes([addr[0] | 0x80]) + addr[1:] + struct.pack('<i', delta)

    def write_descriptor(self, slot, addr, length, flags, next_or_id=0):
        self.out += struct.pack('<BH', WRITE_DESCRIPTOR, slot)
        self.out += self.desc(addr, length, flags, next_or_id)
        return self

    # A descriptor whose buffer runs to its region's end, plus delta bytes.
    def write_descriptor_to_end(self, slot, addr, delta, flags, next_or_id=0):
        self.out += struct.pack('<BH', WRITE_DESCRIPTOR, slot) + self.to_end(addr, delta)
        self.out += struct.pack('<HH', flags, next_or_id)
        return self

    def write_entry(self, at, addr, length, flags, next_or_id=0):
        self.out += struct.pack('<B', WRITE_ENTRY) + at + self.desc(addr, length, flags, next_or_id)
        return self

    def make_available(self, arg):  # split: head; packed: 1 + arg % 8 slots
        return self.op(MAKE_AVAILABLE, 'H', arg)

    # shape: buffers - 1 in bits 0-2, readable count in 3-5, indirect bit 6, first direct bit 7.
    def add_chain(self, lengths, readable, indirect=False, first_direct=False, slot=0, buf_id=0):
        shape = (len(lengths) - 1) | (readable << 3) | (0x40 if indirect else 0) | \
            (0x80 if first_direct else 0)
        self.op(ADD_CHAIN, 'BBB', shape, slot, buf_id)
        for n in lengths:
            self.out += struct.pack('<H', n)
        return self

    def poll(self, budget=0):
        return self.op(POLL, 'B', budget)

    def complete(self, written):
        self.op(COMPLETE, 'B', len(written) - 1)
        for pick, n in written:
            self.out += struct.pack('<HI', pick, n)
        return self

    def publish(self):
        return self.op(PUBLISH)

    def translate(self, addr, length, count=0):
        self.out += struct.pack('<B', TRANSLATE) + addr + struct.pack('<IB', length, count)
        return self

    def translate_to_end(self, addr, delta, count=0):
        self.out += struct.pack('<B', TRANSLATE) + self.to_end(addr, delta) + \
            struct.pack('<B', count)
        return self


def blk_request(seed, slot, buf_id=0, indirect=False, first_direct=False, data=512):
    """A virtio-blk shaped chain: 16-byte header, data, status byte."""
    return seed.add_chain([16, data, 1], 1, indirect, first_direct, slot, buf_id)


def seeds():
    s = {}

    # Split, direct descriptors: two blk requests, completed out of order.
    x = Seed(size_byte=3)
    blk_request(x, 0)
    blk_request(x, 3)
    x.op(DISABLE).poll(1).op(KEEP_OFF).poll().complete([(1, 513), (0, 513)]).publish()
    x.op(ENABLE)
    s['split_direct'] = x

    # Split, buffers across the end of region A into adjacent region B (two iovecs each).
    x = Seed(size_byte=4)
    x.write_descriptor(0, x.addr_a_end(0x100), 16, NEXT, 1)
    x.write_descriptor(1, x.addr_a_end(0x80), 0x1000, NEXT | WRITE, 2)
    x.write_descriptor(2, x.addr_b(0x10), 1, WRITE)
    x.make_available(0).poll().complete([(0, 0x1001)]).publish()
    x.translate(x.addr_a_end(0x100), 0x200, 3).translate(x.addr_b_end(0x10), 16)
    x.translate_to_end(x.addr_a(0x5000), 0).translate_to_end(x.addr_b(0x10), 1)
    s['split_across_regions'] = x

    # Split, indirect tables across the A-B boundary: whole entries on either side, then an
    # entry cut in two by it, which breaks the ring.
    for name, in_a in (('split_indirect_across_regions', 0x10),
                       ('split_error_indirect_entry_cut', 0x8)):
        x = Seed(features=INDIRECT, size_byte=3)
        x.write_entry(x.addr_a_end(in_a), x.addr_a(DATA), 16, NEXT, 1)
        x.write_entry(x.addr_b(16 - in_a), x.addr_a(DATA + 0x100), 1, WRITE)
        x.write_descriptor(1, x.addr_a_end(in_a), 32, F_INDIRECT)
        x.make_available(1).poll().complete([(0, 1)]).publish()
        s[name] = x

    # Split, indirect tables: all buffers in the table, then direct first, then the table.
    x = Seed(features=INDIRECT, size_byte=3)
    blk_request(x, 1, indirect=True)
    blk_request(x, 5, indirect=True, first_direct=True, data=4096)
    x.poll().complete([(0, 513), (0, 4097)]).publish()
    s['split_indirect'] = x

    # Split, a table written by hand in region B, entries linked out of order.
    x = Seed(features=INDIRECT, size_byte=3)
    x.write_entry(x.addr_b(0x100), x.addr_a(DATA), 16, NEXT, 2)
    x.write_entry(x.addr_b(0x110), x.addr_a(DATA + 0x200), 1, WRITE, 0)
    x.write_entry(x.addr_b(0x120), x.addr_a(DATA + 0x100), 512, NEXT | WRITE, 1)
    x.write_descriptor(7, x.addr_b(0x100), 48, F_INDIRECT)
    x.make_available(7).poll().complete([(0, 513)]).publish()
    s['split_indirect_by_hand'] = x

    # Split, EVENT_IDX: used_event set by the driver, kicks off while polling, wrapping indexes.
    x = Seed(features=EVENT_IDX | INDIRECT, size_byte=5, start=0xfffd)
    x.op(SET_DRIVER_EVENT, 'HH', 0, 0xffff)
    x.op(DISABLE)
    for i in range(6):
        blk_request(x, 4 * i, indirect=i % 2 == 1)
    x.poll(3).op(KEEP_OFF).complete([(0, 513), (0, 513)]).publish()
    x.poll().complete([(0, 513)] * 4).publish().op(ENABLE)
    s['split_event_idx_wrap'] = x

    # Split, inflight resubmission: chains read by head, a restart, then a new base.
    x = Seed(features=INDIRECT, size_byte=4)
    blk_request(x, 2)
    blk_request(x, 9, indirect=True)
    x.op(READ_CHAIN, 'H', 2).op(READ_CHAIN, 'H', 9)
    x.complete([(0, 513)]).publish().op(RESTART)
    x.poll().complete([(0, 513), (0, 513)]).publish()
    x.op(SET_BASE, 'HH', 2, 2).poll()
    s['split_resubmit_restart'] = x

    # Split, a large ring and many iovecs: 8-buffer chains, region B after a gap.
    x = Seed(size_byte=8, max_iov=128, b_place=AFTER_A_GAP)
    for head in range(0, 64, 8):
        x.add_chain([16, 64, 64, 64, 64, 64, 64, 1], 1, slot=head)
    x.poll().complete([(0, 100)] * 8).publish()
    s['split_large_ring'] = x

    # Split, errors a guest can cause: a descriptor that links to itself.
    x = Seed(size_byte=3)
    x.write_descriptor(4, x.addr_a(DATA), 16, NEXT, 4)
    x.make_available(4).poll()
    s['split_error_loop'] = x

    # Split, a buffer running one byte past the end of guest memory (no region B).
    x = Seed(size_byte=3, b_place=NO_B)
    x.write_descriptor(0, x.addr_a(DATA), 16, NEXT, 1)
    x.write_descriptor_to_end(1, x.addr_a_end(0x10), 1, WRITE)
    x.make_available(0).poll()
    s['split_error_outside'] = x

    # Packed, direct chains from a fresh ring (wrap counter 1).
    x = Seed(features=PACKED, size_byte=7, start=WRAP)
    blk_request(x, 0, buf_id=0)
    blk_request(x, 0, buf_id=1)
    x.poll().complete([(1, 513), (0, 513)]).publish().op(ENABLE).op(DISABLE)
    s['packed_direct'] = x

    # Packed, a ring of 5 (not a power of two): chains across its end flip the wrap counter.
    x = Seed(features=PACKED, size_byte=4, start=WRAP | 3)
    blk_request(x, 0, buf_id=2)
    x.poll().complete([(0, 513)]).publish()
    blk_request(x, 0, buf_id=4)
    x.poll().complete([(0, 513)]).publish()
    s['packed_wrap'] = x

    # Packed, indirect tables, and a direct descriptor before a table.
    x = Seed(features=PACKED | INDIRECT, size_byte=15, start=WRAP)
    blk_request(x, 3, buf_id=5, indirect=True)
    blk_request(x, 4, buf_id=6, indirect=True, first_direct=True, data=2048)
    x.poll().complete([(0, 513), (0, 2049)]).publish()
    s['packed_indirect'] = x

    # Packed, EVENT_IDX with the driver naming a descriptor (DESC), notifications switched.
    x = Seed(features=PACKED | EVENT_IDX | INDIRECT, size_byte=7, start=WRAP)
    x.op(SET_DRIVER_EVENT, 'HH', 2, WRAP | 4)
    x.op(DISABLE)
    for i in range(3):
        blk_request(x, i, buf_id=i, indirect=i == 1)
    x.poll().complete([(0, 513)]).publish().complete([(0, 513), (0, 513)]).publish()
    x.op(ENABLE).op(RESTART).poll()
    s['packed_event_idx'] = x

    # Packed, descriptors written by hand and handed over with MAKE_AVAILABLE; region B
    # placed before A.
    x = Seed(features=PACKED, size_byte=7, start=WRAP, b_place=BEFORE_A, b_size=0x2000)
    x.write_descriptor(0, x.addr_b(0x0), 16, NEXT, 0x7777)
    x.write_descriptor(1, x.addr_b(0x100), 4096, NEXT | WRITE, 0x7777)
    x.write_descriptor(2, x.addr_a(DATA), 1, WRITE, 3)
    x.make_available(2)  # three slots
    x.poll().complete([(0, 4097)]).publish()
    s['packed_by_hand'] = x

    # Packed ring of one slot with EVENT_IDX: every batch is a whole lap.
    x = Seed(features=PACKED | EVENT_IDX, size_byte=0, start=WRAP)
    x.op(SET_DRIVER_EVENT, 'HH', 2, 0)
    for i in range(4):
        x.add_chain([8], 0, buf_id=0).poll(1).complete([(0, 8)]).publish()
    x.op(DISABLE).op(KEEP_OFF).op(ENABLE)
    s['packed_tiny_ring'] = x

    # Split ring of one entry, EVENT_IDX, the driver asking for an interrupt every other time.
    x = Seed(features=EVENT_IDX, size_byte=0, start=0xfffe)
    for i in range(4):
        x.op(SET_DRIVER_EVENT, 'HH', 0, (0xfffe + i) & 0xffff if i % 2 == 0 else 0x1234)
        x.add_chain([8], 1).poll().complete([(0, 0)]).publish()
    s['split_tiny_ring'] = x

    # Packed, a buffer id out of range: the ring breaks.
    x = Seed(features=PACKED, size_byte=3, start=WRAP)
    blk_request(x, 0, buf_id=9)
    x.poll()
    s['packed_error_bad_id'] = x

    # Packed, SET_VRING_BASE to the second lap, then chains in the other wrap.
    x = Seed(features=PACKED, size_byte=7, start=0)
    blk_request(x, 0, buf_id=1)
    x.poll().complete([(0, 513)]).publish().op(SET_BASE, 'HH', WRAP | 3, WRAP | 3)
    x.op(SET_DRIVER_INDEX, 'H', WRAP | 3)
    blk_request(x, 0, buf_id=2)
    x.poll().complete([(0, 513)]).publish()
    s['packed_set_base'] = x
    return s


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'virtqueue')
    os.makedirs(out_dir, exist_ok=True)
    for name, seed in seeds().items():
        with open(os.path.join(out_dir, 'seed-' + name), 'wb') as f:
            f.write(bytes(seed.out))


if __name__ == '__main__':
    main()
