"""The gpu backend's precision policy (no torch import: the planner asks it too).

Float32 master weights, gradients and AdamW moments always (LoRA's frozen base in the compute dtype); ``torch.precision: bf16`` computes in bf16 on every
layout and device (FSDP2's mixed-precision policy, or autocast, on CUDA and on the CPU alike, so a CPU run shows what
a CUDA run computes); ``fp32`` in float32 (TF32 matrix products on CUDA). Inference runs in the checkpoint's dtype on
CUDA and in float32 on the CPU.
"""

from __future__ import annotations

from typing import Any

from mindcode.precision import Precision


def training_precision(config: Any, device: str) -> Precision:
    """LoRA's frozen base is stored in the compute dtype (bf16): it is never updated, so a float32 copy would only
    double its memory and FSDP2's all-gathers. QLoRA's base matrices are NF4 and PEFT's k-bit preparation keeps the
    rest of it in float32."""
    compute = "bfloat16" if config.torch.precision == "bf16" else "float32"
    lora_base = config.lora is not None and not config.torch.load_in_4bit
    return Precision("float32", compute, "float32", compute if lora_base else "float32")


def inference_dtype(checkpoint_dtype: str, device: str) -> str:
    return "float32" if device == "cpu" else checkpoint_dtype
