"""Which dtype each kind of tensor has in a run. Each backend states its own policy
(``Backend.training_precision`` / ``inference_dtype``: ``backends/gpu/precision.py``, ``backends/ascend/precision.py``);
the backends follow it and ``mindcode plan`` sizes it. This module holds what both share."""

from __future__ import annotations

from dataclasses import dataclass

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "nf4": 0.5}


@dataclass(frozen=True)
class Precision:
    master: str  # parameters as stored, and their gradients
    compute: str  # activations and the weight copies matrix products use
    moments: str  # AdamW's two moments
    frozen: str  # parameters that do not train (LoRA's base), as stored
