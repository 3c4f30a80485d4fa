#!/usr/bin/env python3
"""Writes the seed corpus of the nbd fuzz target (nbd_fuzz.cc describes the input) into
test/fuzz/corpus/nbd/: handshakes that reach each outcome, then request streams."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "nbd")
IHAVEOPT = 0x49484156454F5054
REQUEST_MAGIC = 0x25609513


def option(opt, data=b""):
    return struct.pack(">QII", IHAVEOPT, opt, len(data)) + data


def go_data(name, infos=()):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def meta_data(name, queries):
    return (struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries)) +
            b"".join(struct.pack(">I", len(q)) + q for q in queries))


def request(cmd, offset, length, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, cookie, offset, length) + payload


def seed(export_flags, blocks, handshake, stream=b"", chunk=200):
    out = struct.pack("<BI", export_flags, blocks)
    for i in range(0, len(handshake), chunk):
        piece = handshake[i:i + chunk]
        out += bytes([len(piece)]) + piece
    return out + b"\0" + stream


FLAGS = struct.pack(">I", 3)  # fixed newstyle, no zeroes
GO_A = FLAGS + option(7, go_data(b"a", (1, 2, 3)))
STRUCTURED_GO = (FLAGS + option(8) + option(10, meta_data(b"a", [b"base:allocation"])) +
                 option(7, go_data(b"a")))
REQUESTS = (request(0, 0, 4096) + request(1, 4096, 512, payload=b"x" * 512) +
            request(1, 0, 512, flags=1, payload=b"y" * 512) + request(3, 0, 0) +
            request(4, 0, 8192) + request(6, 8192, 4096, flags=2) + request(7, 0, 100000) +
            request(0, 100, 512) + request(1, 1 << 40, 512, payload=b"z" * 512) +
            request(9, 0, 0) + request(2, 0, 0))

SEEDS = {
    "list_then_go": seed(4, 2048, FLAGS + option(3) + option(7, go_data(b"a")), REQUESTS),
    "go_with_infos": seed(0, 2048, GO_A, REQUESTS),
    "structured": seed(5, 4096, STRUCTURED_GO, REQUESTS),
    "export_name": seed(0, 2048, struct.pack(">I", 1) + option(1, b"a"), REQUESTS),
    "export_name_no_zeroes": seed(0, 2048, FLAGS + option(1, b""), REQUESTS, chunk=3),
    "readonly": seed(2, 2048, GO_A, REQUESTS),
    "refused_then_go": seed(0, 2048, FLAGS + option(7, go_data(b"b")) + option(6, go_data(b"zz")) +
                            option(7, go_data(b"a")), REQUESTS),
    "list_meta": seed(0, 64, FLAGS + option(8) + option(9, meta_data(b"a", [])) +
                      option(9, meta_data(b"a", [b"base:"])) + option(7, go_data(b"a")), REQUESTS),
    "abort": seed(0, 64, FLAGS + option(2)),
    "unknown_and_tls": seed(0, 64, FLAGS + option(77, b"junk") + option(5) + option(7, go_data(b"a"))),
    "bad_option_magic": seed(0, 64, FLAGS + struct.pack(">QII", 1, 7, 0)),
    "old_client": seed(0, 64, struct.pack(">I", 0)),
    "huge_option": seed(0, 64, FLAGS + struct.pack(">QII", IHAVEOPT, 7, 1 << 20)),
    "byte_by_byte": seed(1, 512, STRUCTURED_GO, REQUESTS, chunk=1),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
