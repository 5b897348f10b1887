"""The gpu backend's precision policy (no torch import: the planner asks it too).

Float32 master weights, gradients and AdamW moments always; ``torch.precision: bf16`` computes in bf16 on every
layout and device (FSDP2's mixed-precision policy, or autocast, on CUDA and on the CPU alike, so a CPU run shows what
a CUDA run computes); ``fp32`` in float32 (TF32 matrix products on CUDA). Inference runs in the checkpoint's dtype on
CUDA and in float32 on the CPU.
"""

from __future__ import annotations

from typing import Any

from mindcode.precision import Precision


def training_precision(config: Any, device: str) -> Precision:
    return Precision("float32", "bfloat16" if config.torch.precision == "bf16" else "float32", "float32")


def inference_dtype(checkpoint_dtype: str, device: str) -> str:
    return "float32" if device == "cpu" else checkpoint_dtype
