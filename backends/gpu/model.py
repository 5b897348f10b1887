"""transformers' LlamaForCausalLM from a mindcode preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig


def build_model(config: ModelConfig, checkpoint: str | Path | None = None, load_in_4bit: bool = False) -> Any:
    """float32 weights (the gpu backend autocasts), or with ``load_in_4bit`` (QLoRA) NF4 weights from ``checkpoint``
    via bitsandbytes, on CUDA only."""
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if load_in_4bit:
        return _load_4bit(checkpoint, device)
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


def _load_4bit(checkpoint: str | Path | None, device: str) -> Any:
    import torch
    import transformers

    if device != "cuda":
        raise MindcodeError("torch.load_in_4bit (QLoRA) needs a CUDA device (bitsandbytes' NF4 kernels)")
    if checkpoint is None:
        raise MindcodeError("torch.load_in_4bit (QLoRA) quantizes pretrained weights: set training.init")
    try:
        import bitsandbytes  # noqa: F401
        from peft import prepare_model_for_kbit_training
    except ImportError:
        raise MindcodeError("QLoRA needs bitsandbytes: pip install 'mindcode[qlora]'") from None
    quantization = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                   bnb_4bit_use_double_quant=True,
                                                   bnb_4bit_compute_dtype=torch.bfloat16)
    model = transformers.LlamaForCausalLM.from_pretrained(str(checkpoint), quantization_config=quantization,
                                                          device_map={"": 0}, dtype=torch.bfloat16)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
