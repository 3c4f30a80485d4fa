#!/usr/bin/env python3
"""Writes the seed corpus of the vhost_blk_request fuzz target (corpus/vhost_blk_request/).

Each seed is one input in the format vhost_blk_request_fuzz.cc documents: a device, a request
header, discard/write-zeroes segments, then the guest's readable and writable buffers. The
seeds are the requests a guest sends (Linux's layout, and VERSION_1's any layout: header and
data in one buffer, data and status in one, a header split in three, zero-length buffers, as
many buffers as a chain may have) for every request type, on 512- and 4096-byte devices, and
the malformed ones the target answers with IOERR or UNSUPP, so that the fuzzer starts from
each branch of the decoder. Run it from anywhere: python3 test/fuzz/make_seeds_vhost_blk_request.py
"""
import os
import struct

# Indexes into kTypes (vhost_blk_request_fuzz.cc).
IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES, GET_LIFETIME = range(7)
# Device flags.
BLOCK_4096, READ_ONLY, F_DISCARD, F_WRITE_ZEROES, HUGE = 1, 2, 4, 8, 16
UNMAP = 1
TASK_IOVECS = 134  # kVhostBlkTaskIovecs


def sector(value, mode=0):
    # mode 0: value % 4096; 1: capacity - value % 4096; 2: capacity + value % 64; 3: value.
    return struct.pack('<BQ', mode, value)


def piece(n):
    """A buffer length in PieceBytes' encoding."""
    if n < 256:
        return n
    if n % 512 == 0 and n // 512 <= 256:
        return 0x4000 | (n // 512 - 1)
    if n < 0x4000:
        return 0x8000 | n
    assert n % 4096 == 0 and n // 4096 <= 16
    return 0xc000 | (n // 4096 - 1)


def data_bytes(n):
    """A data length in DataBytes' encoding."""
    if n == 0:
        return 0xc000
    if n % 512 == 0 and n // 512 <= 255:
        return n // 512
    assert n < 0x4000
    return 0x8000 | n


def explicit(*lengths):
    return struct.pack('<BB', 0, len(lengths)) + b''.join(struct.pack('<H', piece(n)) for n in lengths)


def auto(delta=0, cuts=()):
    return struct.pack('<BbB', 1, delta, len(cuts)) + b''.join(struct.pack('<H', c) for c in cuts)


def seed(type_index, readable, writable, sec=sector(0), segments=(), data=0, flags=F_DISCARD | F_WRITE_ZEROES,
         blocks=2048, max_sectors=(1 << 16, 1 << 16), max_segments=(1, 1), raw_type=None, filler=0):
    out = struct.pack('<BIIIB', flags, blocks, max_sectors[0], max_sectors[1],
                      max_segments[0] | (max_segments[1] << 2))
    if raw_type is None:
        out += struct.pack('<B', type_index)
    else:
        out += struct.pack('<BI', 0x80, raw_type)
    out += struct.pack('<I', 0) + sec
    out += struct.pack('<B', len(segments))
    for seg_sector, num_sectors, seg_flags in segments:
        out += sector(seg_sector, 3) + struct.pack('<BIBI', 1, num_sectors, 2, seg_flags)
    out += struct.pack('<HB', data_bytes(data), filler)
    return out + readable + writable


def seeds():
    s = {}
    # Linux's layout: header, data, status each in buffers of their own.
    s['read_linux'] = seed(IN, explicit(16), explicit(4096, 1), sector(8), data=4096)
    s['write_linux'] = seed(OUT, explicit(16, 4096), explicit(1), sector(8), data=4096)
    s['write_three_buffers'] = seed(OUT, explicit(16, 1024, 2048, 1024), explicit(1), sector(8))
    # VERSION_1: any layout.
    s['write_header_with_data'] = seed(OUT, explicit(16 + 512), explicit(1), sector(100))
    s['read_data_with_status'] = seed(IN, explicit(16), explicit(513), sector(100))
    s['write_header_split'] = seed(OUT, explicit(3, 10, 3 + 512), explicit(1), sector(1))
    s['read_zero_length_buffers'] = seed(IN, explicit(0, 16, 0), explicit(0, 512, 0, 1))
    s['read_auto_cut'] = seed(IN, auto(0, (5,)), auto(0, (1000, 3000)), sector(16), data=4096)
    s['write_auto_cut'] = seed(OUT, auto(0, (7, 16, 700)), auto(), sector(16), data=2048)
    s['read_many_buffers'] = seed(IN, explicit(16), explicit(*([512] * 126 + [1])), data=0)
    s['read_too_many_buffers'] = seed(IN, explicit(16), explicit(*([512] * 133 + [1])))
    s['flush'] = seed(FLUSH, explicit(16), explicit(1))
    s['get_id'] = seed(GET_ID, explicit(16), explicit(20, 1))
    s['get_id_short'] = seed(GET_ID, explicit(16), explicit(4, 1))
    s['get_id_split'] = seed(GET_ID, explicit(16), explicit(7, 9, 30))
    s['get_id_no_buffer'] = seed(GET_ID, explicit(16), explicit(1))
    # Discard and write zeroes.
    s['discard'] = seed(DISCARD, explicit(16, 16), explicit(1), segments=[(16, 8, 0)])
    s['discard_segment_split'] = seed(DISCARD, explicit(20, 12), explicit(1), segments=[(16, 8, 0)])
    s['write_zeroes_unmap'] = seed(WRITE_ZEROES, explicit(32), explicit(1),
                                   segments=[(18, 2, UNMAP)])
    s['discard_unmap_unsupported'] = seed(DISCARD, explicit(16, 16), explicit(1),
                                          segments=[(0, 1, UNMAP)])
    s['discard_not_offered'] = seed(DISCARD, explicit(16, 16), explicit(1), segments=[(0, 1, 0)],
                                    flags=F_WRITE_ZEROES)
    s['discard_two_segments_one_allowed'] = seed(DISCARD, explicit(16, 32), explicit(1),
                                                 segments=[(0, 1, 0), (8, 1, 0)])
    s['discard_partial_segment'] = seed(DISCARD, explicit(16, 8), explicit(1), segments=[(0, 1, 0)])
    s['discard_past_end'] = seed(DISCARD, explicit(16, 16), explicit(1), segments=[(2047, 2, 0)])
    s['write_zeroes_no_sectors'] = seed(WRITE_ZEROES, explicit(16, 16), explicit(1),
                                        segments=[(0, 0, 0)])
    s['write_zeroes_over_limit'] = seed(WRITE_ZEROES, explicit(16, 16), explicit(1),
                                        segments=[(0, 64, 0)], max_sectors=(1 << 16, 32))
    # 4096-byte blocks: aligned and not.
    s['read_4096'] = seed(IN, explicit(16), explicit(8192, 1), sector(8), data=8192,
                          flags=BLOCK_4096 | F_DISCARD)
    s['read_4096_unaligned_sector'] = seed(IN, explicit(16), explicit(4096, 1), sector(1),
                                           flags=BLOCK_4096)
    s['write_4096_short'] = seed(OUT, explicit(16, 512), explicit(1), sector(8), flags=BLOCK_4096)
    s['discard_4096'] = seed(DISCARD, explicit(32), explicit(1), segments=[(8, 8, 0)],
                             flags=BLOCK_4096 | F_DISCARD)
    # The device's end and arithmetic at the edges.
    s['read_last_sector'] = seed(IN, explicit(16), explicit(512, 1), sector(1, 1))
    s['read_across_end'] = seed(IN, explicit(16), explicit(1024, 1), sector(1, 1))
    s['read_at_end'] = seed(IN, explicit(16), explicit(512, 1), sector(0, 2))
    s['read_sector_overflows'] = seed(IN, explicit(16), explicit(512, 1),
                                      sector((1 << 64) // 256 - 1, 3))
    s['read_huge_device_end'] = seed(IN, explicit(16), explicit(4096, 1), sector(8, 1),
                                     flags=HUGE | BLOCK_4096)
    # Malformed and unsupported.
    s['read_only_write'] = seed(OUT, explicit(16, 512), explicit(1), flags=READ_ONLY)
    s['read_only_write_zeroes'] = seed(WRITE_ZEROES, explicit(32), explicit(1), segments=[(0, 1, 0)],
                                       flags=READ_ONLY | F_WRITE_ZEROES)
    s['read_with_readable_data'] = seed(IN, explicit(16, 512), explicit(512, 1))
    s['write_with_writable_data'] = seed(OUT, explicit(16), explicit(512, 1))
    s['read_not_whole_sectors'] = seed(IN, explicit(16), explicit(100, 1))
    s['write_no_data'] = seed(OUT, explicit(16), explicit(1))
    s['header_short'] = seed(IN, explicit(8), explicit(512, 1))
    s['no_status_byte'] = seed(OUT, explicit(16, 512), explicit())
    s['no_buffers'] = seed(IN, explicit(), explicit())
    s['unknown_type'] = seed(IN, explicit(16), explicit(1), raw_type=99)
    s['get_lifetime'] = seed(GET_LIFETIME, explicit(16), explicit(16, 1))
    s['read_barrier_bit'] = seed(11, explicit(16), explicit(512, 1))
    return s


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'vhost_blk_request')
    os.makedirs(out_dir, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out_dir, 'seed-' + name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
