"""LoRA (and QLoRA's adapters) through PEFT, starting from mindcode's adapter values (the ascend backend's too)."""

from __future__ import annotations

from typing import Any

import torch

from mindcode.convert.keymap import parse_lora_key
from mindcode.convert.lora import Adapter
from mindcode.errors import MindcodeError


def add_lora(model: Any, lora: Any) -> Any:
    """``model`` wrapped by PEFT with the ``lora`` section's rank, alpha, dropout and targets; only adapters train.
    The adapter values are set by ``set_adapter`` (after the model is materialized, when it was built on meta)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def set_adapter(model: Any, adapter: Adapter) -> None:
    """mindcode's adapter values into PEFT's parameters, each rank its own shard of them (FSDP2)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if len(trained) != 2 * len(adapter.pairs):
        raise MindcodeError(f"PEFT's adapter ({len(trained)} tensors) and mindcode's ({2 * len(adapter.pairs)}) differ")
    with torch.no_grad():
        for name, param in trained.items():
            weight, part = parse_lora_key(name, "PEFT's model")
            value = torch.from_numpy(adapter.pairs[weight][part]).to(param.device)
            if isinstance(param, DTensor):
                value = distribute_tensor(value, param.device_mesh, param.placements, src_data_rank=None).to_local()
                param.to_local().copy_(value)
            else:
                param.copy_(value)
