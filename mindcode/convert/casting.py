"""Chunked dtype conversion of raw little-endian tensor bytes (float32 / float16 / bfloat16).

Widening bf16 or fp16 to float32 is exact; narrowing rounds to nearest even (bf16 keeps NaN a NaN). A tensor that
keeps its dtype is copied byte for byte, never through a float.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

RAW = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "bfloat16": np.dtype("<u2")}


def to_float32(raw: bytes, dtype: str) -> np.ndarray:
    data = np.frombuffer(raw, dtype=RAW[dtype])
    if dtype == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.float32, copy=False)


def from_float32(values: np.ndarray, dtype: str) -> bytes:
    if dtype == "float32":
        return values.astype("<f4", copy=False).tobytes()
    if dtype == "float16":
        return values.astype("<f2").tobytes()
    bits = values.astype("<f4", copy=False).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)  # stay a (quiet) NaN
    return rounded.astype("<u2", copy=False).tobytes()


def cast_chunks(chunks: Iterator[bytes], source: str, target: str) -> Iterator[bytes]:
    """Re-encode a stream of ``source``-typed bytes as ``target`` (element boundaries are kept across chunks)."""
    if source == target:
        yield from chunks
        return
    size = RAW[source].itemsize
    rest = b""
    for chunk in chunks:
        chunk = rest + chunk
        cut = len(chunk) - len(chunk) % size
        rest = chunk[cut:]
        if cut:
            yield from_float32(to_float32(chunk[:cut], source), target)
    if rest:
        raise ValueError(f"{len(rest)} trailing bytes are not a whole {source} element")
