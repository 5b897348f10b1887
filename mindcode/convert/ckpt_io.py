"""MindSpore ``.ckpt`` files read and written tensor by tensor, without MindSpore.

The format is protobuf (``checkpoint.proto``, proto2): the file is a sequence of ``Checkpoint`` messages, each
holding ``Value{tag: name, tensor: TensorProto{dims (repeated int64), tensor_type ("Float32", "BFloat16", ...),
tensor_content (raw little-endian bytes)}}``. MindSpore splits a tensor above 512 MiB into row slices written as
separate values with the same tag; the reader joins them. The writer produces byte-identical files to
``mindspore.save_checkpoint`` (a test compares them), streaming each tensor's bytes from its source.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from mindcode.convert.safetensors_io import read_ranges
from mindcode.errors import MindcodeError

SLICE_BYTES = 512 * 1024 * 1024  # MindSpore's SLICE_SIZE (512 * 1024 KB)
CHUNK = 16 << 20  # bytes copied or converted at a time

# MindSpore tensor_type <-> (numpy dtype of the raw bytes, itemsize); bf16 is carried as raw uint16.
MS_TYPES = {
    "Float32": np.dtype("<f4"), "Float16": np.dtype("<f2"), "BFloat16": np.dtype("<u2"), "Float64": np.dtype("<f8"),
    "Int64": np.dtype("<i8"), "Int32": np.dtype("<i4"), "Int16": np.dtype("<i2"), "Int8": np.dtype("i1"),
    "UInt8": np.dtype("u1"), "Bool": np.dtype("?"),
}
DTYPE_TO_MS = {"float32": "Float32", "float16": "Float16", "bfloat16": "BFloat16"}


def itemsize(dtype: str) -> int:
    """Bytes per element of ``float32``/``float16``/``bfloat16``."""
    return MS_TYPES[DTYPE_TO_MS[dtype]].itemsize
MS_TO_DTYPE = {v: k for k, v in DTYPE_TO_MS.items()}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(f: IO[bytes]) -> int | None:
    shift = result = 0
    while True:
        byte = f.read(1)
        if not byte:
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7


# ----------------------------------------------------------------------------------------------------- writing


def row_slices(shape: tuple[int, ...], itemsize: int) -> list[tuple[int, int]]:
    """Byte ranges of the row slices MindSpore writes (``np.array_split`` along axis 0 above 512 MiB)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
    count = math.ceil(nbytes / 1024 / (SLICE_BYTES // 1024)) if nbytes / 1024 > SLICE_BYTES // 1024 else 1
    if count == 1 or not shape:
        return [(0, nbytes)]
    rows, row_bytes = shape[0], nbytes // shape[0]
    base, extra = divmod(rows, count)
    ranges, start = [], 0
    for i in range(count):
        n = (base + (1 if i < extra else 0)) * row_bytes
        ranges.append((start, start + n))
        start += n
    return ranges


def _entry_header(name: str, shape: tuple[int, ...], ms_type: str, content_len: int) -> bytes:
    """The bytes of one Checkpoint message up to (and including) the tensor_content length prefix."""
    dims = b"".join(b"\x08" + _varint(d) for d in shape)
    type_field = b"\x12" + _varint(len(ms_type)) + ms_type.encode()
    tensor_len = len(dims) + len(type_field) + 1 + len(_varint(content_len)) + content_len
    tag = name.encode()
    value = b"\x0a" + _varint(len(tag)) + tag + b"\x12" + _varint(tensor_len)
    value_len = len(value) + tensor_len
    return b"\x0a" + _varint(value_len) + value + dims + type_field + b"\x1a" + _varint(content_len)


@dataclass
class CkptWriter:
    """Streams tensors into a ``.ckpt``; ``write`` takes an iterator of byte chunks for each tensor."""

    file: IO[bytes]
    digests: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, shape: tuple[int, ...], ms_type: str, chunks: Iterator[bytes]) -> int:
        itemsize = MS_TYPES[ms_type].itemsize
        digest = hashlib.blake2b(digest_size=16)
        written = 0
        buffer = b""
        for start, end in row_slices(shape, itemsize):
            self.file.write(_entry_header(name, shape, ms_type, end - start))
            need = end - start
            while need:
                if not buffer:
                    buffer = next(chunks, b"")
                    if not buffer:
                        raise MindcodeError(f"{name}: source ended {need} bytes early")
                part, buffer = buffer[:need], buffer[need:]
                self.file.write(part)
                digest.update(part)
                need -= len(part)
                written += len(part)
        if buffer or next(chunks, b""):
            raise MindcodeError(f"{name}: source has more bytes than shape {list(shape)} holds")
        self.digests[name] = digest.hexdigest()
        return written


# ----------------------------------------------------------------------------------------------------- reading


@dataclass
class CkptTensor:
    name: str
    shape: tuple[int, ...]
    ms_type: str
    pieces: list[tuple[int, int]]  # (file offset, length) of each slice's content, in order

    @property
    def nbytes(self) -> int:
        return sum(length for _, length in self.pieces)


def index_ckpt(path: str | Path) -> list[CkptTensor]:
    """Every tensor's name, shape, type and where its bytes are, reading only the headers."""
    path = Path(path)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    tensors: dict[str, CkptTensor] = {}
    with path.open("rb") as f:
        while True:
            at = f.tell()
            head = f.read(1)
            if not head:
                break
            if head == b"c" and f.read(6) == b"rc_num":  # MindSpore's optional CRC trailer
                break
            if head != b"\x0a":
                raise MindcodeError(f"{path}: not a MindSpore checkpoint (unexpected byte at offset {at}; "
                                    "encrypted checkpoints are not supported)")
            value_len = _read_varint(f)
            end = f.tell() + (value_len or 0)
            if value_len is None or end > size:
                raise MindcodeError(f"{path}: truncated at offset {at}")
            name, shape, ms_type, content = _read_entry(f, end, path)
            if name is None or ms_type is None or content is None:
                raise MindcodeError(f"{path}: incomplete entry at offset {at}")
            if content[0] + content[1] > size:
                raise MindcodeError(f"{path}: truncated: tensor {name!r} ends past the end of the file")
            if ms_type not in MS_TYPES:
                raise MindcodeError(f"{path}: tensor {name!r} has unsupported type {ms_type}")
            if name in tensors:
                tensors[name].pieces.append(content)
            else:
                tensors[name] = CkptTensor(name, tuple(shape), ms_type, [content])
    for tensor in tensors.values():
        expected = int(np.prod(tensor.shape, dtype=np.int64)) * MS_TYPES[tensor.ms_type].itemsize
        if tensor.nbytes != expected:
            raise MindcodeError(f"{path}: tensor {tensor.name!r} has {tensor.nbytes} bytes, shape "
                                f"{list(tensor.shape)} needs {expected}")
    return list(tensors.values())


def _read_entry(f: IO[bytes], end: int, path: Path) -> tuple[str | None, list[int], str | None, tuple[int, int] | None]:
    """One checkpoint entry's fields up to ``end``: (tag, shape, type, (offset, length) of its bytes), which are
    skipped, not read."""
    name, shape, ms_type, content = None, [], None, None
    while f.tell() < end:
        key = _read_varint(f)
        if key == 0x0A:  # tag
            name = f.read(_read_varint(f)).decode()
        elif key == 0x12:  # tensor
            tensor_end = f.tell() + _read_varint(f)
            while f.tell() < tensor_end:
                field_key = _read_varint(f)
                if field_key == 0x08:
                    shape.append(_read_varint(f))
                elif field_key == 0x0A:  # packed dims
                    dims_end = f.tell() + _read_varint(f)
                    while f.tell() < dims_end:
                        shape.append(_read_varint(f))
                elif field_key == 0x12:
                    ms_type = f.read(_read_varint(f)).decode()
                elif field_key == 0x1A:
                    length = _read_varint(f)
                    content = (f.tell(), length)
                    f.seek(length, 1)
                else:
                    raise MindcodeError(f"{path}: unexpected field {field_key} in tensor {name!r}")
        else:
            raise MindcodeError(f"{path}: {name!r} is not a plain tensor (map tensors are not supported)")
    return name, shape, ms_type, content


def read_chunks(path: str | Path, tensor: CkptTensor, chunk: int = CHUNK) -> Iterator[bytes]:
    return read_ranges(Path(path), tensor.pieces, tensor.name, chunk)


def load_array(path: str | Path, tensor: CkptTensor) -> np.ndarray:
    """The whole tensor as numpy (bf16 as float32, exactly)."""
    raw = np.frombuffer(b"".join(read_chunks(path, tensor)), dtype=MS_TYPES[tensor.ms_type]).reshape(tensor.shape)
    return (raw.astype(np.uint32) << 16).view(np.float32) if tensor.ms_type == "BFloat16" else raw
