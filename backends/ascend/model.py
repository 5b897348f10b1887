"""MindFormers' LlamaForCausalLM from a mindcode preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.ascend import runtime
from backends.ascend.checkpoint import load_into
from mindcode.presets import ModelConfig

# What MindFormers needs to run on MindSpore's CPU target (see DESIGN.md): the fused RMSNorm and the rotary op
# without slicing are Ascend kernels, and CPU has no float16 matmul worth using.
CPU_SETTINGS: dict[str, Any] = {
    "fused_rms_norm": False,
    "use_rope_slice": True,
    "use_flash_attention": False,
    "compute_dtype": "float32",
    "param_init_type": "float32",
    "layernorm_compute_type": "float32",
    "softmax_compute_type": "float32",
    "rotary_dtype": "float32",
    # MindFormers' @lazy_inline graphs fail to compile on the CPU backend in data-parallel mode.
    "disable_lazy_inline": True,
}
FLOAT32_SETTINGS: dict[str, Any] = {"compute_dtype": "float32", "param_init_type": "float32"}


def mindformers_config(config: ModelConfig, seq_length: int, batch_size: int = 1) -> Any:
    """MindFormers' ``LlamaConfig`` for this preset; device-specific settings as described in the module."""
    mindformers = runtime.mindformers()
    settings = CPU_SETTINGS if runtime.device_target() == "CPU" else FLOAT32_SETTINGS
    return mindformers.LlamaConfig(
        batch_size=batch_size, seq_length=seq_length, use_past=False, **config.to_mindformers_config(), **settings
    )


def build_model(config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None) -> Any:
    mindformers = runtime.mindformers()
    model = mindformers.LlamaForCausalLM(config=mindformers_config(config, seq_length))  # keyword: see CPU_SETTINGS
    if checkpoint is not None:
        load_into(model, checkpoint)
    return model
