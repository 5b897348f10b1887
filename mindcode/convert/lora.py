"""LoRA adapters: read PEFT or MindFormers ones, merge them into base weights while streaming, export MindFormers
LoRA weights as a PEFT adapter.

Merging adds ``scale * B @ A`` (``scale = lora_alpha / r``) to each adapted weight, in float32, a block of rows at a
time, and stores the result in the base weight's dtype; every other tensor is copied byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mindcode.convert import ckpt_io, safetensors_io
from mindcode.convert.casting import RAW, from_float32, to_float32
from mindcode.convert.keymap import LINEAR_MODULES, lora_key, parse_lora_key
from mindcode.convert.progress import Run
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig

CONFIG = "adapter_config.json"


@dataclass
class Adapter:
    rank: int
    alpha: float
    pairs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # HF weight name -> {"A", "B"} float32
    dropout: float = 0.0

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def target_modules(self) -> list[str]:
        return sorted({name.split(".")[-2] for name in self.pairs})

    def delta(self, weight: str) -> np.ndarray:
        return self.scale * (self.pairs[weight]["B"] @ self.pairs[weight]["A"])


def initial_adapter(model: ModelConfig, rank: int, alpha: float, targets: list[str], seed: int) -> Adapter:
    """The adapter both backends start from: A uniform in +-1/sqrt(in) (PEFT's kaiming-uniform bound), B zero, so
    the adapted model starts equal to the base."""
    from mindcode.convert.hf_to_ms import expected_weights  # hf_to_ms imports this module

    rng = np.random.default_rng(seed)
    pairs = {}
    for weight, shape in sorted(expected_weights(model).items()):
        if ".layers." in weight and weight.split(".")[-2] in targets:
            out_dim, in_dim = shape
            bound = 1.0 / np.sqrt(in_dim)
            pairs[weight] = {"A": rng.uniform(-bound, bound, (rank, in_dim)).astype(np.float32),
                             "B": np.zeros((out_dim, rank), np.float32)}
    return Adapter(rank, float(alpha), pairs)


def peft_config(rank: int, alpha: float, targets: list[str], dropout: float = 0.0, base: str = "") -> dict[str, Any]:
    """An ``adapter_config.json`` that PEFT's ``PeftModel.from_pretrained`` reads."""
    unknown = sorted(set(targets) - set(LINEAR_MODULES))
    if unknown:
        raise MindcodeError(f"LoRA target {unknown[0]!r}; valid: {', '.join(LINEAR_MODULES)}")
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": dropout,
            "target_modules": sorted(targets), "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
            "inference_mode": True, "base_model_name_or_path": base}


def read_adapter(path: str | Path, alpha: float | None = None) -> Adapter:
    """A PEFT adapter directory, or a MindFormers LoRA ``.ckpt`` (``lora_alpha`` from ``alpha`` or from an
    ``adapter_config.json`` beside it, as mindcode and MindFormers write one)."""
    path = Path(path)
    config_path = path / CONFIG if path.is_dir() else path.parent / CONFIG
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if config.get("use_rslora"):
        raise MindcodeError(f"{config_path}: rsLoRA adapters (scale alpha/sqrt(r)) are not supported")
    if path.is_dir():
        files = sorted(path.glob("adapter_model*.safetensors"))
        if not config or not files:
            raise MindcodeError(f"{path}: a PEFT adapter directory needs {CONFIG} and adapter_model.safetensors")
        tensors = {info.name: safetensors_io.load_tensor(info) for f in files for info in safetensors_io.read_header(f)}
    elif path.suffix == ".ckpt":
        if not path.is_file():
            raise MindcodeError(f"{path}: no such LoRA checkpoint")
        tensors = {t.name: ckpt_io.load_array(path, t) for t in ckpt_io.index_ckpt(path)
                   if t.name.endswith(("mindpet_delta_lora_a", "mindpet_delta_lora_b"))}
    else:
        raise MindcodeError(f"{path}: give a PEFT adapter directory or a MindFormers LoRA .ckpt")
    if not tensors:
        raise MindcodeError(f"{path}: no LoRA weights in it")
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, value in tensors.items():
        weight, part = parse_lora_key(name, str(path))
        pairs.setdefault(weight, {})[part] = np.asarray(value, dtype=np.float32)
    ranks = set()
    for weight, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise MindcodeError(f"{path}: {weight}: lora_{''.join(sorted(set('AB') - set(pair)))} missing")
        if pair["A"].shape[0] != pair["B"].shape[1]:
            raise MindcodeError(f"{path}: {weight}: A {list(pair['A'].shape)} and B {list(pair['B'].shape)} disagree")
        ranks.add(pair["A"].shape[0])
    if len(ranks) != 1:
        raise MindcodeError(f"{path}: LoRA pairs of different ranks {sorted(ranks)}")
    rank = ranks.pop()
    if config.get("r") not in (None, rank):
        raise MindcodeError(f"{config_path}: r = {config['r']} but the weights have rank {rank}")
    alpha = alpha if alpha is not None else config.get("lora_alpha")
    if alpha is None:
        raise MindcodeError(f"{path}: lora_alpha unknown (no {CONFIG} beside it); pass --lora_alpha")
    return Adapter(rank, float(alpha), pairs, float(config.get("lora_dropout", 0.0)))


def check_adapter(adapter: Adapter | None, weights: set[str]) -> set[str]:
    """The weights an adapter changes; an adapter naming a weight the base lacks is an error."""
    if adapter is None:
        return set()
    unknown = sorted(set(adapter.pairs) - weights)
    if unknown:
        raise MindcodeError(f"the LoRA adapter adapts {unknown[0]!r}, which the base checkpoint does not have")
    return set(adapter.pairs)


def lora_summary(adapter: Adapter | None) -> dict[str, Any]:
    if adapter is None:
        return {}
    return {"merged_lora": {"weights": len(adapter.pairs), "rank": adapter.rank, "lora_alpha": adapter.alpha,
                            "scale": adapter.scale, "target_modules": adapter.target_modules}}


def merged_chunks(chunks: Callable[[], Iterator[bytes]], dtype: str, shape: tuple[int, ...],
                  delta: np.ndarray) -> Iterator[bytes]:
    """The bytes of ``weight + delta`` in ``dtype``, computed a block of whole rows at a time."""
    if tuple(delta.shape) != tuple(shape):
        raise MindcodeError(f"LoRA delta of shape {list(delta.shape)} for a weight of shape {list(shape)}")
    row_bytes = int(np.prod(shape[1:])) * RAW[dtype].itemsize
    rest, row = b"", 0
    for chunk in chunks():
        chunk = rest + chunk
        rows = len(chunk) // row_bytes
        rest = chunk[rows * row_bytes:]
        if rows:
            block = to_float32(chunk[: rows * row_bytes], dtype).reshape(rows, *shape[1:])
            yield from_float32(block + delta[row:row + rows], dtype)
            row += rows
    if rest or row != shape[0]:
        raise MindcodeError(f"weight stream ended after {row} of {shape[0]} rows")


def export_peft(input_path: str | Path, output_path: str | Path, alpha: float | None = None,
                base: str = "", progress: bool = True) -> dict[str, Any]:
    """MindFormers LoRA weights (``.ckpt``) -> a PEFT adapter directory (``adapter_model.safetensors`` +
    ``adapter_config.json``), float32."""
    adapter = read_adapter(input_path, alpha)
    entries, arrays = [], {}
    for weight in sorted(adapter.pairs):
        for part in "AB":
            name = lora_key(weight, part, "peft")
            arrays[name] = adapter.pairs[weight][part]
            entries.append((name, "float32", arrays[name].shape, arrays[name].nbytes))
    run = Run(total=sum(e[3] for e in entries), desc="lora->peft", progress=progress)

    def chunks(name: str) -> Iterator[bytes]:
        run.advance(arrays[name].nbytes)
        yield arrays[name].astype("<f4").tobytes()

    out = Path(output_path)
    with run.atomic_dir(out) as tmp:
        safetensors_io.write_safetensors(tmp / "adapter_model.safetensors", entries, chunks)
        config = peft_config(adapter.rank, adapter.alpha, adapter.target_modules, adapter.dropout, base)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return run.summary(input_path=str(input_path), output_path=str(out), tensors=len(entries), rank=adapter.rank,
                       lora_alpha=adapter.alpha, target_modules=adapter.target_modules, dtypes={"float32": len(entries)},
                       dropped=[])
