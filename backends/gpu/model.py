"""transformers' LlamaForCausalLM from a mindcode preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig


def build_model(config: ModelConfig, checkpoint: str | Path | None = None) -> Any:
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if checkpoint is None:
        hf_config = transformers.LlamaConfig(**config.to_hf_config())
        model = transformers.LlamaForCausalLM(hf_config)
    else:
        if not (Path(checkpoint) / "config.json").is_file():
            raise MindcodeError(f"{checkpoint}: not an HF checkpoint directory (no config.json)")
        model = transformers.LlamaForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
        loaded = ModelConfig.from_hf_config(model.config.to_dict(), name=config.name)
        if loaded.hf_weight_shapes() != config.hf_weight_shapes():
            raise MindcodeError(f"{checkpoint}: config.json describes a different shape than model {config.name!r}")
    return model.float().to(device).eval()
