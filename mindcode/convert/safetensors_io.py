"""Read HF safetensors checkpoints tensor by tensor through a memory map, without any framework.

The ``safetensors`` package's numpy API has no bfloat16, and CodeLlama ships bf16/fp16, so the (simple) format is
read here: 8 bytes little-endian header length, a JSON header of ``{name: {dtype, shape, data_offsets}}``, then
the raw bytes. bf16 is widened to float32 exactly (a bf16 value is the upper half of a float32).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mindcode.errors import MindcodeError

NUMPY_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits, widened by load_tensor
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives inside a safetensors file."""

    name: str
    path: Path
    dtype: str  # safetensors' name: F32, F16, BF16, ...
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in the file
    nbytes: int


def read_header(path: Path) -> list[TensorInfo]:
    """Parse and validate a safetensors header; a truncated or corrupt file raises naming the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise MindcodeError(f"{path}: truncated safetensors file ({size} bytes, no header)")
            (header_len,) = struct.unpack("<Q", head)
            if 8 + header_len > size:
                raise MindcodeError(f"{path}: truncated safetensors file (header of {header_len} bytes, file {size})")
            header = json.loads(f.read(header_len))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MindcodeError(f"{path}: not a readable safetensors file ({exc})") from None
    header.pop("__metadata__", None)
    base = 8 + header_len
    infos = []
    for name, meta in header.items():
        try:
            dtype, shape, (start, end) = meta["dtype"], tuple(meta["shape"]), meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise MindcodeError(f"{path}: tensor {name!r} has a malformed header entry {meta!r}") from None
        if dtype not in NUMPY_DTYPES:
            raise MindcodeError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        expected = int(np.prod(shape, dtype=np.int64)) * NUMPY_DTYPES[dtype].itemsize
        if end - start != expected:
            raise MindcodeError(f"{path}: tensor {name!r} has {end - start} bytes, shape {list(shape)} needs {expected}")
        if base + end > size:
            raise MindcodeError(f"{path}: truncated: tensor {name!r} ends at byte {base + end}, file has {size}")
        infos.append(TensorInfo(name, path, dtype, shape, base + start, end - start))
    return sorted(infos, key=lambda info: info.offset)


def load_tensor(info: TensorInfo) -> np.ndarray:
    """The tensor as a numpy array (memory-mapped where no widening is needed; bf16 comes back as float32)."""
    raw = np.memmap(info.path, dtype=np.uint8, mode="r", offset=info.offset, shape=(info.nbytes,))
    array = raw.view(NUMPY_DTYPES[info.dtype]).reshape(info.shape)
    if info.dtype == "BF16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def list_tensors(directory: Path) -> list[TensorInfo]:
    """All tensors of an HF checkpoint directory: a sharded one (with its index) or a single file.

    Raises:
        MindcodeError: no safetensors file, a shard named by the index is missing, or a tensor is missing/duplicated.
    """
    if not directory.is_dir():
        raise MindcodeError(f"{directory}: not a directory (expected an HF checkpoint directory)")
    index_path = directory / INDEX_FILE
    if index_path.exists():
        try:
            weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
        except (ValueError, KeyError) as exc:
            raise MindcodeError(f"{index_path}: malformed index ({exc})") from None
        shards = sorted(set(weight_map.values()))
        for shard in shards:
            if not (directory / shard).exists():
                raise MindcodeError(f"{directory / shard}: shard named by {INDEX_FILE} is missing")
        files = [directory / shard for shard in shards]
    elif (directory / SINGLE_FILE).exists():
        files, weight_map = [directory / SINGLE_FILE], {}
    else:
        files, weight_map = sorted(directory.glob("*.safetensors")), {}
    if not files:
        raise MindcodeError(f"{directory}: no *.safetensors files")
    infos: list[TensorInfo] = []
    seen: dict[str, Path] = {}
    for path in files:
        for info in read_header(path):
            if info.name in seen:
                raise MindcodeError(f"{path}: tensor {info.name!r} also appears in {seen[info.name]}")
            seen[info.name] = path
            infos.append(info)
    for name, shard in weight_map.items():
        if name not in seen:
            raise MindcodeError(f"{directory / shard}: tensor {name!r} listed in {INDEX_FILE} is not in the shard")
    return infos


def iter_tensors(directory: Path) -> Iterator[tuple[TensorInfo, np.ndarray]]:
    """Stream ``(info, array)`` pairs, one tensor at a time."""
    for info in list_tensors(directory):
        yield info, load_tensor(info)


SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def read_ranges(path: Path, ranges: list[tuple[int, int]], name: str, chunk: int = 16 << 20) -> Iterator[bytes]:
    """Bytes of ``(offset, length)`` ranges of a file in chunks, with plain reads (memory stays one chunk)."""
    with open(path, "rb") as f:
        for offset, length in ranges:
            f.seek(offset)
            while length:
                data = f.read(min(chunk, length))
                if not data:
                    raise MindcodeError(f"{path}: truncated inside tensor {name!r}")
                length -= len(data)
                yield data


def read_chunks(info: TensorInfo, chunk: int = 16 << 20) -> Iterator[bytes]:
    """The tensor's raw bytes in chunks."""
    return read_ranges(info.path, [(info.offset, info.nbytes)], info.name, chunk)


def write_safetensors(path: Path, entries: list[tuple[str, str, tuple[int, ...], int]], chunks_of,
                      metadata: dict[str, str] | None = None) -> None:
    """Stream a safetensors file: ``entries`` are (name, dtype, shape, nbytes); ``chunks_of(name)`` yields bytes."""
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape, nbytes in entries:
        header[name] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format aligns the data to 8 bytes
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for name, _dtype, _shape, nbytes in entries:
            written = 0
            for chunk in chunks_of(name):
                f.write(chunk)
                written += len(chunk)
            if written != nbytes:
                raise MindcodeError(f"{path}: tensor {name!r} produced {written} bytes, expected {nbytes}")


def checkpoint_dtype(directory: str | Path) -> str:
    """The dtype most of an HF checkpoint's bytes are stored in: ``float32``, ``float16`` or ``bfloat16``."""
    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    counts: dict[str, int] = {}
    for info in list_tensors(Path(directory)):
        counts[info.dtype] = counts.get(info.dtype, 0) + info.nbytes
    return names.get(max(counts, key=counts.get), "float32") if counts else "float32"
