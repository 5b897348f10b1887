"""MindFormers' fused layout (``qkv_concat: True``): ``attention.w_qkv`` and ``feed_forward.w_gate_hidden``.

The rows are arranged as MindFormers' own converter arranges them (Megatron style): for each key/value head group,
that group's query rows, then its key rows, then its value rows; and the gate (w1) and up (w3) rows interleaved
one by one. Only rows move, so the bytes of every element are kept exactly (any dtype).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import numpy as np

from mindcode.convert.casting import RAW
from mindcode.convert.keymap import abstract_key
from mindcode.convert.sources import Source
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig

# fused MindFormers name (after "model.layers.N.") -> the MindFormers names it is made of, in order
FUSED = {
    "attention.w_qkv.weight": ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight"),
    "feed_forward.w_gate_hidden.weight": ("feed_forward.w1.weight", "feed_forward.w3.weight"),
}
PART_OF = {part: fused for fused, parts in FUSED.items() for part in parts}


def fuse(fused: str, parts: list[np.ndarray], config: ModelConfig) -> np.ndarray:
    """The fused tensor from its parts (in ``FUSED`` order), row for row as MindFormers lays it out."""
    if fused.startswith("attention."):
        groups = config.kv_heads
        return np.concatenate([p.reshape(groups, -1, p.shape[-1]) for p in parts], axis=1).reshape(-1, parts[0].shape[-1])
    gate, up = parts
    return np.stack([gate, up], axis=1).reshape(-1, gate.shape[-1])


def split(fused: str, value: np.ndarray, config: ModelConfig) -> list[np.ndarray]:
    """The parts of a fused tensor (the inverse of ``fuse``)."""
    columns = value.shape[-1]
    if fused.startswith("attention."):
        groups, head_dim = config.kv_heads, config.head_dim
        per_group = value.reshape(groups, -1, columns)
        q_rows = per_group.shape[1] - 2 * head_dim
        cuts = [q_rows, q_rows + head_dim]
        return [p.reshape(-1, columns) for p in np.split(per_group, cuts, axis=1)]
    pairs = value.reshape(-1, 2, columns)
    return [pairs[:, 0], pairs[:, 1]]


def _fused_suffix(name: str) -> tuple[str, str | None]:
    abstract, layer = abstract_key(name)
    return abstract.split("{}.", 1)[-1], layer


def _array(chunks: Callable[[], Iterator[bytes]], dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks()), dtype=RAW[dtype]).reshape(shape)


def fuse_plan(plan: list[tuple[str, Source, str]], config: ModelConfig) -> list[tuple[str, Source, str]]:
    """hf->ms plan entries ``(ms_name, source, target dtype)`` with each group of parts replaced by one fused entry
    (its bytes built from the parts' bytes when it is written: one layer's parts in memory at a time)."""
    out, groups = [], {}
    for ms_name, source, target in plan:
        suffix, layer = _fused_suffix(ms_name)
        if layer is not None and suffix in PART_OF:
            groups.setdefault((int(layer), PART_OF[suffix]), {})[suffix] = (source, target)
        else:
            out.append((ms_name, source, target))
    for (layer, fused), members in sorted(groups.items()):
        sources = [members[part][0] for part in FUSED[fused]]
        if len({s.dtype for s in sources}) != 1:
            raise MindcodeError(f"layer {layer}: the parts of {fused} have different dtypes")

        def chunks(sources=sources, fused=fused) -> Iterator[bytes]:
            yield fuse(fused, [_array(s.chunks, s.dtype, s.shape) for s in sources], config).tobytes()

        name = f"model.layers.{layer}.{fused}"
        shape = (sum(s.shape[0] for s in sources), sources[0].shape[1])
        out.append((name, Source(name, sources[0].dtype, shape, sum(s.nbytes for s in sources), sources[0].file,
                                 chunks), members[FUSED[fused][0]][1]))
    return out


def split_index(entries: list[tuple], config: ModelConfig) -> list[tuple]:
    """ms->hf index entries ``(name, dtype, shape, nbytes, chunks)`` with each fused tensor replaced by its parts."""
    out = []
    for name, dtype, shape, nbytes, chunks in entries:
        suffix, layer = _fused_suffix(name)
        if layer is None or suffix not in FUSED:
            out.append((name, dtype, shape, nbytes, chunks))
            continue
        cache: dict[str, list[np.ndarray]] = {}

        def part(i: int, fused=suffix, chunks=chunks, dtype=dtype, shape=shape, cache=cache) -> Iterator[bytes]:
            if "parts" not in cache:  # the parts are written one after the other: read the fused tensor once
                cache["parts"] = split(fused, _array(chunks, dtype, tuple(shape)), config)
            yield np.ascontiguousarray(cache["parts"][i]).tobytes()
            if i == len(FUSED[fused]) - 1:
                cache.clear()

        pieces = split(suffix, np.empty((shape[0], 1), np.uint8), config)  # only the row counts
        for i, (member, piece) in enumerate(zip(FUSED[suffix], pieces)):
            rows = piece.shape[0]
            out.append((f"model.layers.{layer}.{member}", dtype, (rows, shape[1]), nbytes // shape[0] * rows,
                        partial(part, i)))
    return out
