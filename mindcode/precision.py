"""Which dtype each kind of tensor has in a run: the one policy the backends follow and ``mindcode plan`` sizes.

gpu (``torch.precision``): float32 master weights, gradients and AdamW moments always; ``bf16`` computes in bf16
on every layout and device (FSDP2's mixed-precision policy, or autocast, on CUDA and on the CPU alike, so a CPU run
shows what a CUDA run computes); ``fp32`` in float32 (TF32 matrix products on CUDA). Inference runs in the
checkpoint's dtype on CUDA and in float32 on the CPU.
ascend (MindFormers' ``model_config``): parameters (and their gradients and AdamW moments, which MindFormers'
AdamW allocates like its parameters) in ``param_init_type``, matrix products in ``compute_dtype``; keys a config
leaves out take MindFormers' ``LlamaConfig`` defaults; MindSpore's CPU target runs everything in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "nf4": 0.5}
MINDFORMERS_DEFAULTS = {"compute_dtype": "float16", "param_init_type": "float16", "softmax_compute_type": "float32"}


@dataclass(frozen=True)
class Precision:
    master: str  # parameters as stored, and their gradients
    compute: str  # activations and the weight copies matrix products use
    moments: str  # AdamW's two moments


def training_precision(config: Any, device: str) -> Precision:
    """``device``: ``cuda``, ``cpu`` or ``ascend`` (the kind of device the run is on)."""
    if config.backend == "gpu":
        return Precision("float32", "bfloat16" if config.torch.precision == "bf16" else "float32", "float32")
    if device == "cpu":
        return Precision("float32", "float32", "float32")
    values = {**MINDFORMERS_DEFAULTS, **config.model.model_config}
    return Precision(str(values["param_init_type"]), str(values["compute_dtype"]), str(values["param_init_type"]))


def inference_dtype(backend: str, checkpoint_dtype: str, device: str, model_config: dict | None = None) -> str:
    if device == "cpu":
        return "float32"
    if backend == "gpu":
        return checkpoint_dtype
    # ascend prediction builds MindFormers' model with its own defaults (its predict card: float16 weights); a
    # training config's float32 master weights are not what it loads
    return MINDFORMERS_DEFAULTS["param_init_type"]
