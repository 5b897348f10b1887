"""LoRA on MindFormers: its pet_config adapter (mindpet's ``LoRADense`` in place of the targeted linears), the
base frozen as MindFormers' Trainer freezes it, and the adapter's starting values loaded from mindcode's."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.ascend import runtime
from mindcode.convert.keymap import LINEAR_MODULES, lora_key
from mindcode.convert.lora import Adapter
from mindcode.errors import MindcodeError


def pet_config(lora: Any) -> dict[str, Any]:
    """MindFormers' ``model_config.pet_config`` for a mindcode ``lora`` section (HF module names -> MindFormers')."""
    return {"pet_type": "lora", "lora_rank": lora.rank, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
            "target_modules": "|".join(f".*{LINEAR_MODULES[m]}" for m in lora.target_modules)}


def add_lora(model: Any, lora: Any, adapter: Adapter) -> None:
    """Put the adapters into ``model`` (MindFormers' LlamaForCausalLM) in place; only they stay trainable."""
    ms = runtime.mindspore()
    from mindformers.pet.constants import PetType
    from mindformers.pet.pet_config import LoraConfig
    from mindformers.pet.tuners.lora_adapter import LoraAdapter
    from mindformers.pet.tuners.pet_adapter import PetAdapter

    config = {k: v for k, v in pet_config(lora).items() if k != "pet_type"}
    model.model = LoraAdapter.get_pet_model(model.model, LoraConfig(**config))
    PetAdapter.freeze_pretrained_model(model, PetType.LORA)
    values = {lora_key(weight, part, "mindformers"): ms.Parameter(ms.Tensor(pair[part]))
              for weight, pair in adapter.pairs.items() for part in "AB"}
    trainable = {p.name for p in model.trainable_params()}
    if trainable != set(values):
        raise MindcodeError(f"LoRA parameters {sorted(trainable ^ set(values))[:3]} differ between MindFormers' "
                            "adapter and mindcode's")
    ms.load_param_into_net(model, values, strict_load=True)


def adapter_arrays(model: Any) -> list[tuple[str, np.ndarray, str]]:
    """The trained adapter weights with MindFormers names, for ``final/adapter.ckpt``."""
    return [(p.name, p.asnumpy(), "float32") for p in model.trainable_params()]
