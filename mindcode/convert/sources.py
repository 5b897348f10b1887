"""Where an HF checkpoint's tensors come from: safetensors (single or sharded) or ``pytorch_model*.bin``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mindcode.convert import safetensors_io
from mindcode.errors import MindcodeError

SAFETENSORS_TO_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


@dataclass
class Source:
    name: str
    dtype: str  # float32 | float16 | bfloat16 (or a safetensors name for anything else)
    shape: tuple[int, ...]
    nbytes: int
    file: Path
    chunks: Callable[[], Iterator[bytes]]


def list_sources(directory: Path) -> list[Source]:
    if list(directory.glob("*.safetensors")):
        return [Source(i.name, SAFETENSORS_TO_DTYPE.get(i.dtype, i.dtype), i.shape, i.nbytes, i.path,
                       (lambda i=i: safetensors_io.read_chunks(i))) for i in safetensors_io.list_tensors(directory)]
    bins = sorted(directory.glob("pytorch_model*.bin"))
    if bins:
        return _torch_sources(directory, bins)
    raise MindcodeError(f"{directory}: no *.safetensors or pytorch_model*.bin files")


def _torch_sources(directory: Path, bins: list[Path]) -> list[Source]:
    try:
        import torch
    except ImportError:
        raise MindcodeError(f"{directory}: reading pytorch_model*.bin needs torch (or convert to safetensors)") from None
    index = directory / "pytorch_model.bin.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        for shard in shards:
            if not (directory / shard).exists():
                raise MindcodeError(f"{directory / shard}: shard named by {index.name} is missing")
        bins = [directory / s for s in shards]
    names = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
    sources = []
    for path in bins:
        try:
            state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except Exception as exc:  # truncated or not a torch file
            raise MindcodeError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
        for name, tensor in state.items():
            if tensor.dtype not in names:
                raise MindcodeError(f"{path}: {name} has dtype {tensor.dtype}; weights must be float32/16 or bf16")

            def chunks(t=tensor) -> Iterator[bytes]:
                t = t.contiguous()
                yield (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()

            sources.append(Source(name, names[tensor.dtype], tuple(tensor.shape),
                                  tensor.numel() * tensor.element_size(), path, chunks))
    return sources
