"""HF safetensors directory -> MindSpore ``.ckpt`` with MindFormers parameter names.

Every source tensor is mapped through the key table or dropped on purpose, checked against the shape that
``config.json`` implies, and every weight the model needs must be present; anything else is an error naming
the file and key. The output appears only when the whole write succeeded.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mindcode.convert.keymap import hf_to_ms
from mindcode.convert.safetensors_io import list_tensors, load_tensor
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig

log = logging.getLogger(__name__)

DTYPE_FLAGS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
SAFETENSORS_TO_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


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
                     progress: bool = True) -> dict[str, Any]:
    """Convert and return a summary ``{tensors, bytes, dtypes, dropped, seconds, output_path}``.

    Args:
        dtype: ``fp32``/``fp16``/``bf16`` to cast to; ``None`` keeps each tensor's source dtype.
    """
    start = time.perf_counter()
    from backends import get_backend  # the writer is MindSpore's; imported only when converting

    directory, output_path = Path(input_path), Path(output_path)
    if dtype is not None and dtype not in DTYPE_FLAGS:
        raise MindcodeError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPE_FLAGS)}")
    config = read_hf_config(directory)
    expected = expected_weights(config)
    infos = list_tensors(directory)

    tensors, dropped, seen, dtypes = [], [], set(), {}
    total_bytes = sum(info.nbytes for info in infos)
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="convert", disable=not progress)
    for info in infos:
        source = str(info.path)
        ms_name = hf_to_ms(info.name, source=source)
        bar.update(info.nbytes)
        if ms_name is None:
            dropped.append(info.name)
            continue
        want = expected.get(info.name)
        if want is None:
            raise MindcodeError(f"{source}: {info.name} is not a weight of a {config.num_layers}-layer model")
        if info.shape != want:
            raise MindcodeError(f"{source}: {info.name} has shape {list(info.shape)}, config.json implies {list(want)}")
        if info.dtype not in SAFETENSORS_TO_DTYPE:
            raise MindcodeError(f"{source}: {info.name} has dtype {info.dtype}; weights must be F32, F16 or BF16")
        target = DTYPE_FLAGS[dtype] if dtype else SAFETENSORS_TO_DTYPE[info.dtype]
        dtypes[target] = dtypes.get(target, 0) + 1
        tensors.append((ms_name, load_tensor(info), target))
        seen.add(info.name)
    bar.close()
    missing = sorted(set(expected) - seen)
    if missing:
        raise MindcodeError(f"{directory}: {len(missing)} weights missing, first {missing[0]!r}")

    output_path.parent.mkdir(parents=True, exist_ok=True)
    get_backend("ascend").save_checkpoint(tensors, output_path)
    summary = {
        "input_path": str(directory),
        "output_path": str(output_path),
        "tensors": len(tensors),
        "bytes": total_bytes,
        "dtypes": dtypes,
        "dropped": dropped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    log.info("converted %d tensors (%.1f MB) to %s", len(tensors), total_bytes / 1e6, output_path)
    return summary
