"""Shared test helpers: tiny model shapes and random HF checkpoints written the way transformers writes them."""

from __future__ import annotations

import json
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
