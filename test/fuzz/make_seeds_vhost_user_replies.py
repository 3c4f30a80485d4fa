#!/usr/bin/env python3
"""Writes the seed corpus of the vhost_user_replies fuzz target (corpus/vhost_user_replies/).

Each seed is one input in the format vhost_user_replies_fuzz.cc documents: a 33-byte header
(options, how GET_ID is answered), in calls mode the calls, then one back-end action per
request the front-end sends. The attach seeds answer the whole handshake as pollux's own
vhost-user-blk target (rte_vhost) and qemu-storage-daemon (libvhost-user) would, then vary one
answer each: REPLY_ACK, MQ or CONFIG missing, bad header flags, wrong request codes, short
payloads, huge sizes, an empty or malformed GET_CONFIG, configuration values out of range, a
refused ack, replies cut short, duplicated or carrying an fd, the connection ending midway,
GET_ID answered badly, GET_VRING_BASE naming another queue at detach.
Run it from anywhere: python3 test/fuzz/make_seeds_vhost_user_replies.py
"""
import os
import struct

ANSWER, RAW, EMPTY, DOUBLE, WITH_FD, PARTIAL, SHUTDOWN, CLOSE = range(8)
PACKED_RING, CALLS_MODE = 1, 2

# Request codes (virtio/include/pollux/virtio/vhost_user_protocol.h).
GET_FEATURES, SET_OWNER, GET_VRING_BASE = 1, 3, 11
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_CONFIG = 15, 16, 17, 24
VERSION, REPLY = 0x1, 0x4

# Feature bits: virtio-blk's, the rings', vhost-user's.
SIZE_MAX, SEG_MAX, RO, BLK_SIZE, FLUSH, TOPOLOGY, CONFIG_WCE, MQ, DISCARD, WRITE_ZEROES = (
    1, 2, 5, 6, 9, 10, 11, 12, 13, 14)
INDIRECT, EVENT_IDX, PROTOCOL_FEATURES, VERSION_1, RING_PACKED = 28, 29, 30, 32, 34
# Protocol feature bits.
P_MQ, P_LOG_SHMFD, P_REPLY_ACK, P_BACKEND_REQ, P_CONFIG = 0, 1, 3, 5, 9
P_BACKEND_SEND_FD, P_HOST_NOTIFIER, P_INFLIGHT, P_MEM_SLOTS, P_STATUS = 10, 11, 12, 15, 16
# What the controller takes of the protocol features.
P_WANTED = (1 << P_MQ) | (1 << P_REPLY_ACK) | (1 << P_CONFIG)


def bits(*numbers):
    value = 0
    for n in numbers:
        value |= 1 << n
    return value


def u8(v):
    return struct.pack('<B', v)


def u32(v):
    return struct.pack('<I', v)


def u64(v):
    return struct.pack('<Q', v)


def config_space(capacity, blk_size=512, size_max=0, seg_max=126, num_queues=1, wce=1,
                 max_discard=32768, max_write_zeroes=32768):
    """The 60 bytes of struct virtio_blk_config the controller reads."""
    c = bytearray(60)
    struct.pack_into('<QII', c, 0, capacity, size_max, seg_max)
    struct.pack_into('<I', c, 20, blk_size)
    struct.pack_into('<BBHI', c, 24, 0, 0, 1, 0)  # physical_block_exp .. opt_io_size
    struct.pack_into('<BBH', c, 32, wce, 0, num_queues)
    struct.pack_into('<III', c, 36, max_discard, 1, max(1, blk_size // 512))
    struct.pack_into('<IIB', c, 48, max_write_zeroes, 1, 1)
    return bytes(c)


class Backend:
    """A back-end's offer: what it answers to each request of the handshake."""

    def __init__(self, features, protocol, queue_num, config):
        self.features = features
        self.protocol = protocol
        self.queue_num = queue_num
        self.config = config


# pollux-tgt's vhost-user-blk (rte_vhost): a 1 GiB malloc bdev, 64 queues.
POLLUX = Backend(
    bits(VERSION_1, INDIRECT, EVENT_IDX, SIZE_MAX, SEG_MAX, BLK_SIZE, TOPOLOGY, MQ, FLUSH,
         CONFIG_WCE, DISCARD, WRITE_ZEROES, PROTOCOL_FEATURES),
    bits(P_MQ, P_LOG_SHMFD, P_REPLY_ACK, P_BACKEND_REQ, P_CONFIG, P_HOST_NOTIFIER, P_INFLIGHT,
         P_STATUS),
    64,
    config_space(capacity=2 << 20, blk_size=512, size_max=128 << 10, seg_max=126,
                 num_queues=64, wce=1, max_discard=4 << 20, max_write_zeroes=4 << 20))
POLLUX_PACKED = Backend(POLLUX.features | bits(RING_PACKED), POLLUX.protocol, 64, POLLUX.config)

# qemu-storage-daemon's vhost-user-blk export (libvhost-user): a 4 GiB null-co, one queue,
# size_max 0 ("no limit").
QSD = Backend(
    bits(SIZE_MAX, SEG_MAX, TOPOLOGY, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES, CONFIG_WCE, MQ,
         VERSION_1, INDIRECT, EVENT_IDX, PROTOCOL_FEATURES),
    bits(P_MQ, P_LOG_SHMFD, P_BACKEND_REQ, P_HOST_NOTIFIER, P_BACKEND_SEND_FD, P_REPLY_ACK,
         P_MEM_SLOTS, P_CONFIG, P_INFLIGHT),
    1,
    config_space(capacity=8 << 20, blk_size=512, size_max=0, seg_max=126, num_queues=1, wce=0))


def header(packed=False, calls=False, vq_count=1, vq_size=128, get_id_mode=0, status=0,
           length=21, used_id=0, extra=0, serial=b''):
    flags = (PACKED_RING if packed else 0) | (CALLS_MODE if calls else 0)
    size_byte = vq_size - 2 if packed else vq_size.bit_length() - 2
    serial = serial.ljust(20, b'\0')[:20]
    return (bytes([flags, vq_count - 1, size_byte, get_id_mode, status]) +
            struct.pack('<IHH', length, used_id, extra) + serial)


def attach_steps(b, packed=False, vq_count=1, vq_size=128, ring_bases=None):
    """The controller's requests for back-end `b`, each with the proper answer, as a list of
    (name, bytes). Stops where the controller would stop (a feature it needs missing)."""
    steps = [('GET_FEATURES', u8(ANSWER) + u64(b.features))]
    protocol = 0
    if b.features & bits(PROTOCOL_FEATURES):
        protocol = b.protocol & P_WANTED
        steps.append(('GET_PROTOCOL_FEATURES', u8(ANSWER) + u64(b.protocol)))
        steps.append(('SET_PROTOCOL_FEATURES', u8(ANSWER)))
    acked = bool(protocol & bits(P_REPLY_ACK))
    ack = u8(ANSWER) + (u8(0) if acked else b'')
    if protocol & bits(P_MQ):
        steps.append(('GET_QUEUE_NUM', u8(ANSWER) + u64(b.queue_num)))
    steps.append(('SET_OWNER', ack))
    if packed and not b.features & bits(RING_PACKED):
        return steps
    if not protocol & bits(P_CONFIG):
        return steps
    steps.append(('GET_CONFIG', u8(ANSWER) + b.config))
    steps.append(('SET_FEATURES', ack))
    steps.append(('SET_MEM_TABLE', ack))
    for q in range(vq_count):
        for name in ('SET_VRING_NUM', 'SET_VRING_BASE', 'SET_VRING_ADDR', 'SET_VRING_CALL',
                     'SET_VRING_KICK'):
            steps.append((f'{name}/{q}', ack))
        if b.features & bits(PROTOCOL_FEATURES):
            steps.append((f'SET_VRING_ENABLE/{q}', ack))
    # Detach: GET_VRING_BASE per queue (queue 0 took GET_ID: its next avail index is 1).
    for q in range(vq_count):
        base = (ring_bases or {}).get(q, (1 if q == 0 else 0) if not packed else 0)
        steps.append((f'GET_VRING_BASE/{q}', u8(ANSWER) + u32(base)))
    return steps


def attach(b, replace=None, end_at=None, **options):
    """An attach seed: `replace` maps a step's name to other bytes; `end_at` names the last
    step the input has (the front-end stops there, or the input says nothing more)."""
    get_id = {k: options.pop(k) for k in ('get_id_mode', 'status', 'length', 'used_id',
                                            'extra', 'serial') if k in options}
    steps = attach_steps(b, **options)
    out = bytearray(header(**options, **get_id))
    for name, data in steps:
        out += (replace or {}).get(name, data)
        if name == end_at:
            break
    return bytes(out)


def raw(request, flags, size, payload=b''):
    return u8(RAW) + struct.pack('<III', request, flags, size) + payload


def config_reply(config, offset=0, size=60, declared=None):
    payload = struct.pack('<III', offset, size, 0) + config
    return raw(GET_CONFIG, VERSION | REPLY, len(payload) if declared is None else declared,
               payload)


def seeds():
    s = {}
    # Whole handshakes.
    s['attach-pollux-split-2-queues'] = attach(POLLUX, vq_count=2, vq_size=128,
                                               serial=b'Malloc0')
    s['attach-pollux-packed'] = attach(POLLUX_PACKED, packed=True, vq_size=64,
                                       serial=b'Malloc0')
    s['attach-qsd'] = attach(QSD, vq_size=128, serial=b'qsd-null0')
    s['attach-qsd-read-only'] = attach(
        Backend(QSD.features | bits(RO), QSD.protocol, 1, QSD.config), serial=b'ro')
    s['attach-qsd-4k-blocks'] = attach(
        Backend(QSD.features, QSD.protocol, 1,
                config_space(capacity=8 << 20, blk_size=4096, size_max=1 << 20)), vq_size=16)
    no_ack = Backend(POLLUX.features, POLLUX.protocol & ~bits(P_REPLY_ACK), 64, POLLUX.config)
    s['attach-no-reply-ack'] = attach(no_ack, vq_count=2, vq_size=32, serial=b'noack')
    s['attach-no-protocol-features'] = attach(
        Backend(POLLUX.features & ~bits(PROTOCOL_FEATURES), 0, 0, POLLUX.config))
    s['attach-no-config'] = attach(
        Backend(POLLUX.features, POLLUX.protocol & ~bits(P_CONFIG), 64, POLLUX.config))
    # Without the MQ protocol feature the config space alone says how many queues.
    s['attach-mq-without-queue-num'] = attach(
        Backend(POLLUX.features, POLLUX.protocol & ~bits(P_MQ), 0, POLLUX.config), vq_count=3,
        vq_size=8)
    # Findings fixed. GET_QUEUE_NUM says 1, the config space 4: two queues must be refused
    # (1 was taken for "not asked", and the config space's 4 believed).
    s['finding-queue-num-1-config-4'] = attach(
        Backend(POLLUX.features, POLLUX.protocol, 1,
                config_space(capacity=1 << 20, num_queues=4)), vq_count=2, vq_size=8)
    s['attach-no-mq-feature-2-queues'] = attach(
        Backend(POLLUX.features & ~bits(MQ), POLLUX.protocol, 4, POLLUX.config), vq_count=2)
    # Rings of two entries (allowed with indirect descriptors): GET_ID's chain of three
    # overran the split ring's descriptor table and wrapped onto itself in the packed one.
    s['finding-get-id-split-2-entries'] = attach(POLLUX, vq_size=2, serial=b'tiny')
    s['finding-get-id-packed-2-entries'] = attach(POLLUX_PACKED, packed=True, vq_size=2,
                                                  serial=b'tiny')
    # A capacity refused: its message bound a reference to the packed config struct's
    # misaligned 64-bit field (UBSan).
    s['finding-capacity-message'] = attach(QSD, replace={
        'GET_CONFIG': u8(ANSWER) + config_space(capacity=7, blk_size=4096)},
        end_at='GET_CONFIG')
    # Three packed entries without indirect descriptors: GET_ID fills the ring.
    s['attach-packed-3-entries-direct'] = attach(
        Backend(POLLUX_PACKED.features & ~bits(INDIRECT), POLLUX.protocol, 64, POLLUX.config),
        packed=True, vq_size=3, serial=b'direct')
    s['attach-split-2-entries-direct'] = attach(
        Backend(POLLUX.features & ~bits(INDIRECT), POLLUX.protocol, 64, POLLUX.config),
        vq_size=2)
    s['attach-packed-not-offered'] = attach(POLLUX, packed=True, vq_size=64)

    # GET_ID answered otherwise.
    s['get-id-unsupported'] = attach(QSD, status=2)
    s['get-id-ioerr'] = attach(QSD, status=1, serial=b'ignored')
    s['get-id-unknown-status'] = attach(QSD, status=7, serial=b'ignored')
    s['get-id-serial-not-printable'] = attach(QSD, serial=bytes(range(1, 21)))
    s['get-id-used-id-unknown'] = attach(QSD, get_id_mode=1, used_id=77, extra=1)
    s['get-id-used-index-ahead'] = attach(QSD, get_id_mode=1, used_id=0, extra=5)
    s['get-id-used-without-status'] = attach(QSD, get_id_mode=1, used_id=0, extra=1)
    s['get-id-packed-used-id-unknown'] = attach(POLLUX_PACKED, packed=True, vq_size=8,
                                                get_id_mode=1, used_id=9)

    # Malformed replies.
    s['reply-no-reply-flag'] = attach(QSD, replace={'GET_FEATURES': raw(
        GET_FEATURES, VERSION, 8, u64(QSD.features))}, end_at='GET_FEATURES')
    s['reply-version-2'] = attach(QSD, replace={'GET_FEATURES': raw(
        GET_FEATURES, 2 | REPLY, 8, u64(QSD.features))}, end_at='GET_FEATURES')
    s['reply-wrong-request'] = attach(QSD, replace={'GET_PROTOCOL_FEATURES': raw(
        GET_FEATURES, VERSION | REPLY, 8, u64(QSD.protocol))}, end_at='GET_PROTOCOL_FEATURES')
    s['reply-short-payload'] = attach(QSD, replace={'GET_FEATURES': raw(
        GET_FEATURES, VERSION | REPLY, 4, u32(QSD.features & 0xffffffff))},
        end_at='GET_FEATURES')
    s['reply-huge-size'] = attach(QSD, replace={'GET_QUEUE_NUM': raw(
        GET_QUEUE_NUM, VERSION | REPLY, 0xffffffff, b'\x01' * 8)}, end_at='GET_QUEUE_NUM')
    s['reply-empty-queue-num'] = attach(QSD, replace={'GET_QUEUE_NUM': u8(EMPTY)},
                                        end_at='GET_QUEUE_NUM')
    s['reply-queue-num-0'] = attach(QSD, replace={'GET_QUEUE_NUM': u8(ANSWER) + u64(0)},
                                    end_at='GET_QUEUE_NUM')
    s['reply-ack-wrong-request'] = attach(QSD, replace={'SET_OWNER': raw(
        GET_FEATURES, VERSION | REPLY, 8, u64(0))}, end_at='SET_OWNER')
    s['reply-ack-refused'] = attach(QSD, replace={'SET_MEM_TABLE': u8(ANSWER) + u8(1)},
                                    end_at='SET_MEM_TABLE')
    s['reply-ack-refused-enable'] = attach(POLLUX, vq_count=2, replace={
        'SET_VRING_ENABLE/1': u8(ANSWER) + u8(0xff)}, end_at='SET_VRING_ENABLE/1')
    s['reply-doubled'] = attach(QSD, replace={
        'GET_PROTOCOL_FEATURES': u8(DOUBLE) + u64(QSD.protocol)})
    s['reply-with-fd'] = attach(QSD, replace={
        'GET_FEATURES': u8(WITH_FD) + u64(QSD.features),
        'SET_OWNER': u8(WITH_FD) + u8(0)}, serial=b'fds')
    # Without REPLY_ACK, SET_PROTOCOL_FEATURES owes nothing: a message there is read as the
    # reply to GET_QUEUE_NUM, whose own reply then answers SET_OWNER.
    s['reply-unasked-message'] = attach(QSD, replace={
        'SET_PROTOCOL_FEATURES': raw(GET_QUEUE_NUM, VERSION | REPLY, 8, u64(2))})

    # The configuration space.
    def config(name, c, **options):
        s['config-' + name] = attach(QSD, replace={'GET_CONFIG': u8(ANSWER) + c},
                                     end_at=None, **options)
    config('block-size-1000', config_space(capacity=1 << 20, blk_size=1000))
    config('block-size-128k', config_space(capacity=1 << 20, blk_size=128 << 10))
    config('block-size-64k', config_space(capacity=1 << 20, blk_size=64 << 10, size_max=0))
    config('capacity-0', config_space(capacity=0))
    config('capacity-huge', config_space(capacity=(1 << 55) + 1))
    config('capacity-max', config_space(capacity=(1 << 55) - 1, blk_size=65536))
    config('size-max-below-block', config_space(capacity=1 << 20, blk_size=4096, size_max=512))
    config('num-queues-0', config_space(capacity=1 << 20, num_queues=0))
    config('seg-max-0', config_space(capacity=1 << 20, seg_max=0), vq_size=4)
    config('seg-max-huge', config_space(capacity=1 << 20, seg_max=0xffffffff))
    config('discard-limits-odd', config_space(capacity=1 << 20, max_discard=7,
                                              max_write_zeroes=0xffffffff))
    s['config-empty'] = attach(QSD, replace={'GET_CONFIG': u8(EMPTY)}, end_at='GET_CONFIG')
    s['config-size-in-payload'] = attach(QSD, replace={
        'GET_CONFIG': config_reply(QSD.config, size=59, declared=72)}, end_at='GET_CONFIG')
    s['config-offset'] = attach(QSD, replace={'GET_CONFIG': config_reply(QSD.config, offset=4)},
                                end_at='GET_CONFIG')
    s['config-whole-struct'] = attach(QSD, replace={
        'GET_CONFIG': config_reply(QSD.config + bytes(196), size=256)}, end_at='GET_CONFIG')

    # The connection ending midway.
    s['eof-at-once'] = header() + u8(CLOSE)
    s['eof-in-header'] = attach(QSD, replace={
        'GET_FEATURES': u8(PARTIAL) + u8(5) + u64(QSD.features)}, end_at='GET_FEATURES')
    s['eof-in-config'] = attach(QSD, replace={
        'GET_CONFIG': u8(PARTIAL) + u8(40) + QSD.config}, end_at='GET_CONFIG')
    s['eof-at-vring-address'] = attach(QSD, replace={'SET_VRING_ADDR/0': u8(CLOSE)},
                                       end_at='SET_VRING_ADDR/0')
    s['eof-without-acks'] = attach(no_ack, vq_count=2, vq_size=32,
                                   replace={'SET_VRING_ADDR/1': u8(CLOSE)},
                                   end_at='SET_VRING_ADDR/1')
    s['shutdown-at-owner'] = attach(QSD, replace={'SET_OWNER': u8(SHUTDOWN)},
                                    end_at='SET_OWNER')
    s['shutdown-without-acks'] = attach(no_ack, replace={'SET_FEATURES': u8(SHUTDOWN)},
                                        end_at='SET_FEATURES')

    # Detach.
    s['detach-vring-base-other-queue'] = attach(POLLUX, vq_count=2, replace={
        'GET_VRING_BASE/0': raw(GET_VRING_BASE, VERSION | REPLY, 8, u32(1) + u32(1))})
    s['detach-eof'] = attach(POLLUX, vq_count=2, replace={'GET_VRING_BASE/0': u8(CLOSE)})
    s['detach-vring-base-empty'] = attach(POLLUX, replace={'GET_VRING_BASE/0': u8(EMPTY)})

    # Calls mode: the front-end's calls in any order.
    def calls(*items):
        out = bytearray(header(calls=True))
        ops = [c for c, _ in items]
        out += u8(len(ops))
        for c in ops:
            out += c
        for _, answer in items:
            out += answer
        return bytes(out)

    GET_U64, SET_U64, SET_VRING_FD, SET_OWNER_CALL, SET_MEM_TABLE = 0, 1, 2, 3, 4
    SET_VRING_STATE, SET_VRING_ADDRESS, GET_VRING_BASE_CALL, GET_CONFIG_CALL, REPLY_ACK_CALL = (
        5, 6, 7, 8, 9)
    handshake = [
        (u8(GET_U64) + u8(0), u8(ANSWER) + u64(QSD.features)),
        (u8(GET_U64) + u8(1), u8(ANSWER) + u64(QSD.protocol)),
        (u8(SET_U64) + u8(1) + u64(QSD.protocol & P_WANTED), u8(ANSWER)),
        (u8(REPLY_ACK_CALL) + u8(1), b''),
        (u8(GET_U64) + u8(2), u8(ANSWER) + u64(1)),
        (u8(SET_OWNER_CALL), u8(ANSWER) + u8(0)),
        (u8(GET_CONFIG_CALL) + struct.pack('<H', 60), u8(ANSWER) + QSD.config),
        (u8(SET_U64) + u8(0) + u64(QSD.features), u8(ANSWER) + u8(0)),
        (u8(SET_MEM_TABLE), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_STATE) + u8(0) + u8(0) + u32(128), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_STATE) + u8(1) + u8(0) + u32(0), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_ADDRESS) + u8(0), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_FD) + u8(1) + u8(0), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_FD) + u8(0) + u8(0), u8(ANSWER) + u8(0)),
        (u8(SET_VRING_STATE) + u8(2) + u8(0) + u32(1), u8(ANSWER) + u8(0)),
        (u8(GET_VRING_BASE_CALL) + u8(0), u8(ANSWER) + u32(0)),
    ]
    s['calls-handshake'] = calls(*handshake)
    broken = list(handshake)
    broken[1] = (broken[1][0], raw(GET_PROTOCOL_FEATURES, VERSION, 8, u64(QSD.protocol)))
    s['calls-after-a-break'] = calls(*broken[:8])
    refused = list(handshake)
    refused[5] = (refused[5][0], u8(ANSWER) + u8(1))
    s['calls-after-a-refusal'] = calls(*refused)
    s['calls-config-sizes'] = calls(
        (u8(GET_CONFIG_CALL) + struct.pack('<H', 280), b''),
        (u8(GET_CONFIG_CALL) + struct.pack('<H', 60), u8(EMPTY)),
        (u8(GET_CONFIG_CALL) + struct.pack('<H', 256), u8(ANSWER) + bytes(range(256))),
        (u8(GET_CONFIG_CALL) + struct.pack('<H', 0), u8(ANSWER)),
        (u8(GET_VRING_BASE_CALL) + u8(3), raw(GET_VRING_BASE, VERSION | REPLY, 8,
                                               u32(2) + u32(0))),
        (u8(GET_U64) + u8(0), b''))
    s['calls-eof'] = calls(
        (u8(GET_U64) + u8(0), u8(ANSWER) + u64(1)),
        (u8(SET_OWNER_CALL), u8(CLOSE)),
        (u8(SET_U64) + u8(0) + u64(1 << 32), b''),
        (u8(GET_U64) + u8(1), b''))
    return s


def main():
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus',
                          'vhost_user_replies')
    os.makedirs(folder, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds())} seeds in {folder}')


if __name__ == '__main__':
    main()
