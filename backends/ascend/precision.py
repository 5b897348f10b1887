"""The ascend backend's precision policy, MindFormers' (no MindSpore import: the planner asks it too).

Parameters (and their gradients and AdamW moments, which MindFormers' AdamW allocates like its parameters) in
``param_init_type``, matrix products in ``compute_dtype``; keys a config leaves out take MindFormers' ``LlamaConfig``
defaults; MindSpore's CPU target runs everything in float32. Prediction builds MindFormers' model with its own
defaults (its predict card: float16 weights), not a training config's float32 master weights.
"""

from __future__ import annotations

from typing import Any

from mindcode.precision import Precision

MINDFORMERS_DEFAULTS = {"compute_dtype": "float16", "param_init_type": "float16", "softmax_compute_type": "float32"}


def training_precision(config: Any, device: str) -> Precision:
    if device == "cpu":
        return Precision("float32", "float32", "float32", "float32")
    values = {**MINDFORMERS_DEFAULTS, **config.model.model_config}
    stored = str(values["param_init_type"])  # MindFormers keeps frozen (LoRA base) parameters in it too
    return Precision(stored, str(values["compute_dtype"]), stored, stored)


def inference_dtype(checkpoint_dtype: str, device: str) -> str:
    return "float32" if device == "cpu" else MINDFORMERS_DEFAULTS["param_init_type"]
