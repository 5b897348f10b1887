"""The random start both backends share when ``training.init`` is empty: one HF checkpoint made by mindcode from
``training.seed`` (numpy, no framework), which either backend then loads like any other init. So a config and its
twin start from the same weights out of the box, and their per-step losses agree as the parity tests show.

Weights are drawn as transformers initialises Llama (normal, std 0.02; RMSNorm scales one), tensor by tensor from
``numpy.random.default_rng([seed, index])``, so the file is the same on every machine and is written streaming.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mindcode.convert import safetensors_io
from mindcode.convert.hf_to_ms import expected_weights
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig
from mindcode.train.once import make_once

STD = 0.02  # transformers' LlamaConfig.initializer_range
MARKER = "mindcode_init.json"


def random_tensor(name: str, shape: tuple[int, ...], seed: int, index: int) -> np.ndarray:
    if name.endswith("norm.weight"):
        return np.ones(shape, np.float32)
    return np.random.default_rng([seed, index]).normal(0.0, STD, shape).astype(np.float32)


def random_init(model: ModelConfig, seed: int, directory: Path) -> Path:
    """``directory`` holding the random HF checkpoint for ``(model, seed)``, written unless it is already there
    (once per host, however many processes of a job ask: ``mindcode.train.once``)."""
    directory = Path(directory)
    note = {"seed": seed, "shape": model.to_hf_config()}
    make_once(directory, lambda tmp: _write(model, seed, note, tmp))
    marker = directory / MARKER
    if not marker.is_file() or json.loads(marker.read_text()) != json.loads(json.dumps(note)):
        raise MindcodeError(f"{directory}: holds another random init (model or seed differ); remove it")
    return directory


def _write(model: ModelConfig, seed: int, note: dict, tmp: Path) -> None:
    tmp.mkdir()
    shapes = sorted(expected_weights(model).items())
    index = {name: i for i, (name, _) in enumerate(shapes)}
    entries = [(name, "float32", shape, 4 * int(np.prod(shape))) for name, shape in shapes]
    safetensors_io.write_safetensors(
        tmp / safetensors_io.SINGLE_FILE, entries,
        lambda name: iter([random_tensor(name, dict(shapes)[name], seed, index[name]).tobytes()]))
    (tmp / "config.json").write_text(json.dumps({**model.to_hf_config(), "torch_dtype": "float32"}, indent=2))
    (tmp / MARKER).write_text(json.dumps(note, indent=2))
