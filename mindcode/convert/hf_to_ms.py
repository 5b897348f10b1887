"""HF checkpoint directory -> MindSpore checkpoint with MindFormers parameter names, streamed tensor by tensor.

Every source tensor is mapped through the key table or dropped on purpose, checked against the shape that
``config.json`` implies, and every weight the model needs must be present; anything else is an error naming the
file and key. Memory stays at about one copy chunk (16 MiB): bytes go from the source file to the output file,
through a dtype conversion only when ``--dtype`` asks for one. The output appears only when the whole write (and,
with ``verify``, the re-read) succeeded. Writes ``.ckpt`` (byte-identical to ``mindspore.save_checkpoint``) or
safetensors with MindFormers names (``mindspore.load_checkpoint(..., format="safetensors")``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from mindcode.convert import ckpt_io, safetensors_io
from mindcode.convert.casting import cast_chunks
from mindcode.convert.fused import fuse_plan
from mindcode.convert.keymap import hf_to_ms
from mindcode.convert.lora import Adapter, check_adapter, lora_summary, merged_chunks
from mindcode.convert.progress import Run
from mindcode.convert.sources import list_sources
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig

log = logging.getLogger(__name__)

DTYPE_FLAGS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
FORMATS = ("ckpt", "safetensors")


def read_hf_config(directory: Path) -> ModelConfig:
    path = directory / "config.json"
    if not path.is_file():
        raise MindcodeError(f"{path}: missing (an HF checkpoint directory needs its config.json)")
    try:
        return ModelConfig.from_hf_config(json.loads(path.read_text()), name=directory.name)
    except ValueError as exc:
        raise MindcodeError(f"{path}: not valid JSON ({exc})") from None


def expected_weights(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Concrete HF weight names (layer index filled in) with their shapes."""
    shapes = {}
    for key, shape in config.hf_weight_shapes().items():
        layers = range(config.num_layers) if "{}" in key else [None]
        for layer in layers:
            shapes[key.replace("{}", str(layer)) if layer is not None else key] = shape
    return shapes


def convert_hf_to_ms(input_path: str | Path, output_path: str | Path, dtype: str | None = None,
                     fmt: str = "ckpt", verify: bool = False, progress: bool = True,
                     adapter: Adapter | None = None, qkv_concat: bool = False) -> dict[str, Any]:
    """Convert and return a summary (tensors, bytes, dtypes, dropped, seconds, bytes/s, peak RSS).

    Args:
        dtype: ``fp32``/``fp16``/``bf16`` to cast to; ``None`` keeps each tensor's source dtype.
        fmt: ``ckpt`` or ``safetensors``.
        verify: re-read the output and compare every tensor's bytes with what was converted.
        adapter: a LoRA adapter merged into the weights it adapts.
        qkv_concat: write MindFormers' fused ``w_qkv`` / ``w_gate_hidden`` (see ``mindcode.convert.fused``).
    """
    directory, output_path = Path(input_path), Path(output_path)
    if dtype is not None and dtype not in DTYPE_FLAGS:
        raise MindcodeError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPE_FLAGS)}")
    if fmt not in FORMATS:
        raise MindcodeError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    config = read_hf_config(directory)
    plan, dropped, dtypes = conversion_plan(directory, config, dtype)
    merged = check_adapter(adapter, {source.name for _, source, _ in plan})
    plan = [(name, replace(source, chunks=partial(merged_chunks, source.chunks, source.dtype, source.shape,
                                                  adapter.delta(source.name))) if source.name in merged else source,
             target) for name, source, target in plan]
    if qkv_concat:
        if config.qkv_bias:
            raise MindcodeError(f"{directory}: --qkv_concat fuses weights only; this model's q/k/v biases (qwen2) "
                                f"would need MindFormers' fused bias too: convert without --qkv_concat")
        plan = fuse_plan(plan, config)
    run = Run(total=sum(s.nbytes for _, s, _ in plan), desc="hf->ms", progress=progress)
    with run.atomic_file(output_path) as tmp:
        digests = _write(tmp, fmt, plan, run)
        if verify:
            run.verify(tmp, fmt, digests, {name: source for name, source, target in plan
                                           if source.dtype == target and source.name not in merged})
    summary = run.summary(input_path=str(directory), output_path=str(output_path), tensors=len(plan), dtypes=dtypes,
                          dropped=dropped, format=fmt, verified=verify, qkv_concat=qkv_concat, **lora_summary(adapter))
    log.info("converted %d tensors to %s", len(plan), output_path)
    return summary


def conversion_plan(directory: Path, config: ModelConfig, dtype: str | None) -> tuple[list, list[str], dict]:
    """``[(MindFormers name, source tensor, target dtype)]`` for every weight of the model, each checked against its
    ``config.json`` (name, shape, dtype); the HF names that have no MindFormers weight (dropped); target dtype counts."""
    expected = expected_weights(config)
    plan, dropped, dtypes = [], [], {}
    for source in list_sources(directory):
        where = str(source.file)
        ms_name = hf_to_ms(source.name, source=where)
        if ms_name is None:
            dropped.append(source.name)
            continue
        want = expected.get(source.name)
        if want is None:
            kind = "with q/k/v biases" if config.qkv_bias else "without biases (qwen2 has q/k/v biases)"
            raise MindcodeError(f"{where}: {source.name} is not a weight of this {config.num_layers}-layer model "
                                f"{kind}, as its config.json describes it")
        if source.shape != want:
            raise MindcodeError(f"{where}: {source.name} has shape {list(source.shape)}, config.json implies {list(want)}")
        if source.dtype not in ckpt_io.DTYPE_TO_MS:
            raise MindcodeError(f"{where}: {source.name} has dtype {source.dtype}; weights must be F32, F16 or BF16")
        target = DTYPE_FLAGS[dtype] if dtype else source.dtype
        dtypes[target] = dtypes.get(target, 0) + 1
        plan.append((ms_name, source, target))
    missing = sorted(set(expected) - {source.name for _, source, _ in plan})
    if missing:
        raise MindcodeError(f"{directory}: {len(missing)} weights missing, first {missing[0]!r}")
    return plan, dropped, dtypes


def _write(tmp: Path, fmt: str, plan: list, run: Run) -> dict:
    """The converted tensors into ``tmp`` (``ckpt`` or ``safetensors``), streamed and cast chunk by chunk; their
    digests."""
    by_name = {name: (source, target) for name, source, target in plan}

    def chunks(name: str):
        source, target = by_name[name]
        for chunk in cast_chunks(source.chunks(), source.dtype, target):
            run.advance(len(chunk))
            yield chunk

    digests: dict = {}
    if fmt == "ckpt":
        with tmp.open("wb") as f:
            writer = ckpt_io.CkptWriter(f)
            for name, source, target in plan:
                writer.write(name, source.shape, ckpt_io.DTYPE_TO_MS[target], chunks(name))
            return writer.digests
    entries = [(name, target, source.shape, source.nbytes // ckpt_io.itemsize(source.dtype) * ckpt_io.itemsize(target))
               for name, source, target in plan]
    safetensors_io.write_safetensors(tmp, entries, lambda name: run.digest(name, chunks(name), digests),
                                     metadata={"format": "ms"})
    return digests
