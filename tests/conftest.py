"""Shared test helpers: tiny model shapes, random HF checkpoints written the way transformers writes them, and
training jobs launched on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mindcode.presets import PRESETS, ModelConfig


def tiny_config(**changes) -> ModelConfig:
    return PRESETS["tiny"].replace(**changes)


def write_hf_checkpoint(directory: Path, config: ModelConfig, seed: int = 0, dtype: str = "float32",
                        max_shard_size: str | None = None) -> Path:
    """A random transformers ``LlamaForCausalLM`` (``Qwen2ForCausalLM`` with ``qkv_bias``) saved with
    ``save_pretrained`` (safetensors).

    Every weight is random, the RMSNorm scales and biases too (a norm left at ones would hide a swapped mapping).
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    values = config.to_hf_config()
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**values))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            else:
                param.normal_(0.0, 0.05)
    model = model.to(getattr(torch, dtype))
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(str(directory), safe_serialization=True, **kwargs)
    return directory


def write_training_inputs(work: Path) -> Path:
    """What the training tests start from: 96 tokenized conversations (``train.mindrecord`` and ``npy/``, 128 tokens
    a row) and a random tiny HF checkpoint (``init/``)."""
    from mindcode.data.build import tokenize_dataset
    from mindcode.tokenizer import TINY_TOKENIZER
    from scripts.bench_data import make_conversations

    (work / "c.json").write_text(json.dumps(make_conversations(96)))
    tokenize_dataset("qa", str(work / "c.json"), str(TINY_TOKENIZER), 128, output_file=str(work / "train.mindrecord"),
                     torch_output=str(work / "npy"), progress=False)
    write_hf_checkpoint(work / "init", PRESETS["tiny"], seed=0)
    return work


@pytest.fixture
def hf_checkpoint(tmp_path):
    """``hf_checkpoint(config, **kw)`` -> directory of a random HF checkpoint under tmp_path."""
    counter = iter(range(1000))

    def make(config: ModelConfig = PRESETS["tiny"], **kwargs) -> Path:
        return write_hf_checkpoint(tmp_path / f"hf{next(counter)}", config, **kwargs)

    return make


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(config: str, args: list[str], log_dir: Path, nproc: int = 2) -> list[str]:
    """``mindcode launch`` of ``train --config CONFIG ARGS`` on ``nproc`` local processes (torchrun or msrun, by the
    config's backend)."""
    return [sys.executable, "-m", "mindcode", "launch", "--nproc_per_node", str(nproc), "--master_port",
            str(free_port()), "--log_dir", str(log_dir), "--cluster_time_out", "120", "--", "train", "--config", config,
            *args]


def launch_train(config: str, args: list[str], log_dir: Path, nproc: int = 2, cwd: Path | None = None) -> None:
    """Run ``launch_command`` to the end; a failure shows the workers' logs."""
    result = subprocess.run(launch_command(config, args, log_dir, nproc), cwd=cwd, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHON": sys.executable})
    logs = "".join(p.read_text() for p in Path(log_dir).rglob("*.log") if "worker" in p.name or p.name == "stderr.log")
    assert result.returncode == 0, (result.stderr + logs)[-4000:]
