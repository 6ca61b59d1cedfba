"""The weights blob: the constants of a plan, packed for the engines, behind a checked header.

Layout (little-endian):
    offset  size  field
         0     4  magic "MGWB"
         4     4  version (BLOB_VERSION)
         8     4  header size (HEADER_SIZE)
        12     4  reserved, 0
        16     8  payload size in bytes
        24     4  CRC-32 of the payload (zlib's polynomial)
        28     4  reserved, 0
        32    16  plan hash: ties the blob to the generated model_plan.cpp it was made with
        48    16  reserved, 0
        64     -  payload: sections at 16-byte aligned offsets (BlobRef offsets count from here)

The readers are the generated C++ engine (blob.cpp) and `read_blob` below for tests.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from mobilegen.errors import UserInputError

MAGIC = b"MGWB"
BLOB_VERSION = 1
HEADER_SIZE = 64
ALIGN = 16
_HEADER = struct.Struct("<4sIIIQII16s16s")
assert _HEADER.size == HEADER_SIZE


class BlobWriter:
    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, array: np.ndarray) -> tuple[int, int]:
        """Append an array (little-endian, C order); returns its (offset, size) in the payload."""
        data = np.ascontiguousarray(array)
        if data.dtype.byteorder == ">":
            data = data.byteswap().view(data.dtype.newbyteorder("<"))
        raw = data.tobytes()
        offset = self._size
        pad = (-len(raw)) % ALIGN
        self._parts.append(raw + b"\0" * pad)
        self._size += len(raw) + pad
        return offset, len(raw)

    def payload(self) -> bytes:
        return b"".join(self._parts)

    def finish(self, plan_hash: bytes) -> bytes:
        payload = self.payload()
        header = _HEADER.pack(MAGIC, BLOB_VERSION, HEADER_SIZE, 0, len(payload), zlib.crc32(payload), 0, plan_hash, b"\0" * 16)
        return header + payload


def read_blob(data: bytes) -> tuple[bytes, bytes]:
    """(plan hash, payload) after the same checks the engine makes."""
    if len(data) < HEADER_SIZE:
        raise UserInputError(f"weights blob: {len(data)} bytes, shorter than its {HEADER_SIZE}-byte header")
    magic, version, hsize, _, size, crc, _, plan_hash, _ = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise UserInputError(f"weights blob: magic {magic!r}, expected {MAGIC!r}")
    if version != BLOB_VERSION or hsize != HEADER_SIZE:
        raise UserInputError(f"weights blob: version {version} header {hsize}, expected {BLOB_VERSION} and {HEADER_SIZE}")
    if hsize + size != len(data):
        raise UserInputError(f"weights blob: header says {hsize + size} bytes, file has {len(data)}")
    payload = data[hsize:]
    if zlib.crc32(payload) != crc:
        raise UserInputError("weights blob: checksum mismatch (corrupt file)")
    return plan_hash, payload
