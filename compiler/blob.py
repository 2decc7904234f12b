"""The weights blob: a model package's constant data in one file instead of ``static const`` arrays.

A native MicroPython module (.mpy) is copied into the GC heap at import, code *and* const data,
so 120 KB of weights inside it does not fit a typical board. Compiled with
``compile_model(..., weights="blob")`` the generated ``model.c`` reads every constant through
the pointer ``se_model_weights``, which the firmware sets to the payload of this blob once it
has checked it (``firmware/core/se_blob.h``): from a ROMFS file the weights stay in flash.
The same blob gives a C firmware a new model of the same shape without reflashing the app.

Layout (little-endian; 32-byte header, then the payload)::

    0   4  magic  b"SEWB"
    4   2  format version (BLOB_VERSION)
    6   2  header bytes (32)
    8   4  model id: the first 4 bytes of the sha256 of the payload and the constants' layout
    12  4  payload bytes
    16  4  number of constants
    20  4  CRC-32 (IEEE, as zlib.crc32) of the payload
    24  8  zero

Constants are laid out in the order of the generated code, each at an offset aligned to
``BLOB_ALIGN`` bytes from the payload start; the payload starts 32 bytes into the blob, so a
blob whose first byte is 8-byte aligned gives every constant its natural alignment.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np

MAGIC = b"SEWB"
BLOB_VERSION = 1
HEADER_BYTES = 32
BLOB_ALIGN = 8
_HEADER = struct.Struct("<4sHHIIII8x")


class BlobError(ValueError):
    """A file is not a weights blob of this format, or not the one expected."""


@dataclass(frozen=True)
class Layout:
    """Where each constant lives in the payload."""

    offsets: list[int]
    payload: bytes
    model_id: int
    crc32: int

    @property
    def payload_bytes(self) -> int:
        return len(self.payload)


def layout(constants: list[tuple[str, np.ndarray]]) -> Layout:
    """The payload for ``constants`` (name, array) in their order."""
    parts, offsets, end = [], [], 0
    for _, arr in constants:
        pad = (-end) % BLOB_ALIGN
        parts.append(b"\0" * pad)
        end += pad
        offsets.append(end)
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        parts.append(data)
        end += len(data)
    payload = b"".join(parts)
    shape = ";".join(f"{a.dtype}{list(a.shape)}@{o}" for (_, a), o in zip(constants, offsets))
    model_id = int.from_bytes(hashlib.sha256(shape.encode() + payload).digest()[:4], "little")
    return Layout(offsets, payload, model_id, zlib.crc32(payload) & 0xFFFFFFFF)


def blob_bytes(lay: Layout, n_constants: int) -> bytes:
    """The blob file for ``lay``."""
    header = _HEADER.pack(MAGIC, BLOB_VERSION, HEADER_BYTES, lay.model_id, lay.payload_bytes, n_constants, lay.crc32)
    return header + lay.payload


@dataclass(frozen=True)
class Header:
    version: int
    model_id: int
    payload_bytes: int
    n_constants: int
    crc32: int


def read_header(data: bytes) -> Header:
    """Parse and check a blob (magic, version, size, CRC); raises BlobError saying what is wrong.
    Mirrors se_blob_open in firmware/core/se_blob.c."""
    if len(data) < HEADER_BYTES or data[:4] != MAGIC:
        raise BlobError("not a SqueezeEdge weights blob (no SEWB header)")
    magic, version, hbytes, model_id, payload_bytes, n_const, crc = _HEADER.unpack_from(data)
    if version != BLOB_VERSION or hbytes != HEADER_BYTES:
        raise BlobError(f"weights blob format {version}, this toolchain reads format {BLOB_VERSION}")
    if len(data) < HEADER_BYTES + payload_bytes:
        raise BlobError(f"weights blob truncated: {len(data)} bytes, the header says {HEADER_BYTES + payload_bytes}")
    if zlib.crc32(data[HEADER_BYTES:HEADER_BYTES + payload_bytes]) & 0xFFFFFFFF != crc:
        raise BlobError("weights blob corrupt: CRC-32 mismatch")
    return Header(version, model_id, payload_bytes, n_const, crc)
