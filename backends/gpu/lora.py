"""LoRA (and QLoRA's adapters) through PEFT, starting from mindcode's adapter values (the ascend backend's too)."""

from __future__ import annotations

from typing import Any

from mindcode.convert.keymap import lora_key
from mindcode.convert.lora import Adapter
from mindcode.errors import MindcodeError


def add_lora(model: Any, lora: Any, adapter: Adapter) -> Any:
    """``model`` wrapped by PEFT with the ``lora`` section's rank, alpha, dropout and targets; only adapters train."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    device = next(model.parameters()).device
    values = {lora_key(weight, part, "peft"): torch.from_numpy(pair[part]).to(device)
              for weight, pair in adapter.pairs.items() for part in "AB"}
    result = set_peft_model_state_dict(model, values)
    unexpected = getattr(result, "unexpected_keys", [])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if unexpected or len(trainable) != len(values):
        raise MindcodeError(f"PEFT's adapter ({len(trainable)} tensors) and mindcode's ({len(values)}) differ: "
                            f"{unexpected[:3]}")
    return model
