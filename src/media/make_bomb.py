#!/usr/bin/env python3
"""Writes a decompression bomb: a valid PNG of 20000x20000 1-bit grey pixels, all zero.

Usage: make_bomb.py OUT.png [SIDE]

The file is a few KB; decoded it is 400 million pixels, so an upload of it must be refused from
its header (413 image_too_large) before anything is decoded. Standard library only.
"""
import struct
import sys
import zlib


def chunk(kind: bytes, data: bytes) -> bytes:
    # Length, type, data, then a CRC over type and data: what every PNG reader checks.
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb(side: int) -> bytes:
    # IHDR: width, height, bit depth 1, colour type 0 (grey), deflate, filter 0, no interlace.
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    # Each row is a filter byte (0: none) and side/8 bytes of pixels. The rows are fed to the
    # compressor one at a time so that the 50 MB of raw rows never sit in memory at once.
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    side = int(sys.argv[2]) if len(sys.argv) == 3 else 20000
    with open(sys.argv[1], "wb") as f:
        f.write(bomb(side))
    return 0


if __name__ == "__main__":
    sys.exit(main())
