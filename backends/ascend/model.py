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
from mindcode.errors import MindcodeError
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


def llama_values(config: ModelConfig, seq_length: int, batch_size: int = 1,
                 settings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The keys of MindFormers' ``LlamaConfig`` for this preset; ``settings`` from a config's ``model_config`` (see
    the module), ``extra`` for everything else (``use_past`` and its cache, ``parallel_config``)."""
    resolved, _ = model_settings(settings or {}, runtime.device_target())
    return {"batch_size": batch_size, "seq_length": seq_length, "use_past": False,
            **config.to_mindformers_config(), **resolved, **extra}


def mindformers_config(config: ModelConfig, seq_length: int, batch_size: int = 1,
                       settings: dict[str, Any] | None = None, **extra: Any) -> Any:
    """MindFormers' ``LlamaConfig`` of ``llama_values``."""
    return runtime.mindformers().LlamaConfig(**llama_values(config, seq_length, batch_size, settings, **extra))


def build_model(config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None,
                settings: dict[str, Any] | None = None, rows: int | None = None, model_parallel: int = 1,
                work_dir: str | Path | None = None, **extra: Any) -> Any:
    """``rows``: build for MindFormers' incremental inference, with a KV cache for ``rows`` sequences of
    ``seq_length`` tokens (``backends/ascend/session.py``), in one process or split ``model_parallel`` ways over
    msrun's workers (``predict_job.py``, which keeps its files in ``work_dir``); without ``rows``, for training and
    whole-sequence forwards."""
    mindformers = runtime.mindformers()
    if rows is None:
        if model_parallel > 1:
            raise MindcodeError("a model split over processes is built for prediction (rows=N) only")
        model = mindformers.LlamaForCausalLM(config=mindformers_config(config, seq_length, settings=settings, **extra))
        if checkpoint is not None:
            load_into(model, checkpoint)
        return model
    from backends.ascend.session import cache_settings

    device = runtime.device_target()
    extra = {**extra, **cache_settings(rows, seq_length, device)}
    if model_parallel > 1:
        from backends.ascend.predict_job import build_split_model

        if checkpoint is None or work_dir is None:
            raise MindcodeError("model-parallel prediction loads a checkpoint and needs a folder for its slices")
        model = build_split_model(config, checkpoint, model_parallel, work_dir,
                                  llama_values(config, seq_length, rows, settings, **extra))
    else:  # one process: the context MindFormers' predict runs with, the checkpoint loaded whole
        runtime.predict_context()
        if device == "CPU":
            from backends.ascend import cpu_kernels

            cpu_kernels.install()
        model = mindformers.LlamaForCausalLM(config=mindformers_config(config, seq_length, rows, settings, **extra))
        if checkpoint is not None:
            load_into(model, checkpoint)
    if model.config.is_dynamic:  # as MindFormers' generate does before a dynamic-shape prediction
        model.set_dynamic_inputs()
    return model
