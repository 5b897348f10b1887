"""MindFormers' LlamaForCausalLM from a mindcode preset, with the config's MindFormers dtype and kernel settings.

On Ascend a config's ``model_config`` keys (``compute_dtype``, ``param_init_type``, ``layernorm_compute_type``,
``softmax_compute_type``, ``rotary_dtype``, ``use_flash_attention``, ``qkv_concat``, ...) reach MindFormers as
written; keys a config leaves out keep MindFormers' own defaults. On MindSpore's CPU target only what the CPU needs
is overridden (``CPU_SETTINGS``), and ``model_settings`` says which of the config's keys that changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.ascend import runtime
from backends.ascend.checkpoint import load_into
from mindcode.presets import ModelConfig

# What MindFormers needs to run on MindSpore's CPU target (see DESIGN.md): the fused RMSNorm, flash attention and the
# rotary op without slicing are Ascend kernels, and the CPU has no float16/bfloat16 matmul worth using.
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
# model_config keys that are MindFormers' dtype/kernel choices (not the shape, not mindcode's run settings)
SETTING_KEYS = ("compute_dtype", "param_init_type", "layernorm_compute_type", "softmax_compute_type", "rotary_dtype",
                "use_flash_attention", "fused_rms_norm", "use_rope_slice", "qkv_concat", "offset", "scaling_factor",
                "extend_method")


def model_settings(model_config: dict[str, Any], device: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The settings MindFormers gets on ``device`` and the config keys overridden there (``{key: [asked, used]}``)."""
    asked = {k: v for k, v in model_config.items() if k in SETTING_KEYS}
    if device != "CPU":
        return asked, {}
    overridden = {k: [v, CPU_SETTINGS[k]] for k, v in asked.items()
                  if k in CPU_SETTINGS and str(v).lower() != str(CPU_SETTINGS[k]).lower()}
    return {**asked, **CPU_SETTINGS}, overridden


def mindformers_config(config: ModelConfig, seq_length: int, batch_size: int = 1,
                       settings: dict[str, Any] | None = None, **extra: Any) -> Any:
    """MindFormers' ``LlamaConfig`` for this preset; ``settings`` from a config's ``model_config`` (see the module),
    ``extra`` for everything else (``use_past`` and its cache, ``parallel_config``)."""
    mindformers = runtime.mindformers()
    resolved, _ = model_settings(settings or {}, runtime.device_target())
    values = {"batch_size": batch_size, "seq_length": seq_length, "use_past": False,
              **config.to_mindformers_config(), **resolved, **extra}
    return mindformers.LlamaConfig(**values)


def build_model(config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None,
                settings: dict[str, Any] | None = None, rows: int | None = None, **extra: Any) -> Any:
    """``rows``: build for MindFormers' incremental inference, with a KV cache for ``rows`` sequences of
    ``seq_length`` tokens (``backends/ascend/session.py``); without it, for training and whole-sequence forwards."""
    mindformers = runtime.mindformers()
    if rows is not None:  # prediction: the context MindFormers' predict runs with
        from backends.ascend.session import cache_settings

        runtime.predict_context()
        extra = {**extra, **cache_settings(rows, seq_length, runtime.device_target())}
        if runtime.device_target() == "CPU":
            from backends.ascend import cpu_kernels

            cpu_kernels.install()
    model = mindformers.LlamaForCausalLM(config=mindformers_config(config, seq_length, batch_size=rows or 1,
                                                                   settings=settings, **extra))
    if checkpoint is not None:
        load_into(model, checkpoint)
    return model
