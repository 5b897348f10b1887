"""Weight names: transformers (HF) <-> MindFormers for the llama family, as one declarative table.

``{}`` stands for the layer index. A value of ``None`` means the HF entry is dropped on purpose (it is derived
state, not a weight). The reverse table is derived from the forward one, so the two can never drift apart.
No permutation or transpose is needed: MindFormers' Llama uses HF's rotary layout and ``[out, in]`` matrices.
"""

from __future__ import annotations

import re

from mindcode.errors import MindcodeError

HF_TO_MINDFORMERS: dict[str, str | None] = {
    "model.embed_tokens.weight": "model.tok_embeddings.embedding_weight",
    "model.layers.{}.self_attn.q_proj.weight": "model.layers.{}.attention.wq.weight",
    "model.layers.{}.self_attn.k_proj.weight": "model.layers.{}.attention.wk.weight",
    "model.layers.{}.self_attn.v_proj.weight": "model.layers.{}.attention.wv.weight",
    "model.layers.{}.self_attn.o_proj.weight": "model.layers.{}.attention.wo.weight",
    # Qwen2's q/k/v biases (MindFormers' qkv_has_bias)
    "model.layers.{}.self_attn.q_proj.bias": "model.layers.{}.attention.wq.bias",
    "model.layers.{}.self_attn.k_proj.bias": "model.layers.{}.attention.wk.bias",
    "model.layers.{}.self_attn.v_proj.bias": "model.layers.{}.attention.wv.bias",
    "model.layers.{}.mlp.gate_proj.weight": "model.layers.{}.feed_forward.w1.weight",
    "model.layers.{}.mlp.down_proj.weight": "model.layers.{}.feed_forward.w2.weight",
    "model.layers.{}.mlp.up_proj.weight": "model.layers.{}.feed_forward.w3.weight",
    "model.layers.{}.input_layernorm.weight": "model.layers.{}.attention_norm.weight",
    "model.layers.{}.post_attention_layernorm.weight": "model.layers.{}.ffn_norm.weight",
    "model.norm.weight": "model.norm_out.weight",
    "lm_head.weight": "lm_head.weight",
    # Older transformers checkpoints (CodeLlama's own among them) store the rotary frequencies; both
    # frameworks recompute them from rope_theta.
    "model.layers.{}.self_attn.rotary_emb.inv_freq": None,
}

MINDFORMERS_TO_HF: dict[str, str] = {ms: hf for hf, ms in HF_TO_MINDFORMERS.items() if ms is not None}

# What a MindSpore training checkpoint holds besides weights; dropped (and reported) when converting to HF.
TRAINING_STATE_PREFIXES = ("adam_m.", "adam_v.", "exp_avg.", "exp_avg_sq.", "moment1.", "moment2.", "accu_grads.",
                           "moments.")
TRAINING_STATE_NAMES = ("global_step", "learning_rate", "scale_sense", "loss_scale", "current_iterator_step",
                        "last_overflow_iterator_step", "epoch_num", "step_num")


def training_state(name: str) -> bool:
    return name in TRAINING_STATE_NAMES or name.startswith(TRAINING_STATE_PREFIXES)

_LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")


def abstract_key(key: str) -> tuple[str, str | None]:
    """Split ``model.layers.3.attention.wq.weight`` into (``model.layers.{}.attention.wq.weight``, ``"3"``)."""
    match = _LAYER_INDEX.search(key)
    if match is None:
        return key, None
    return key[: match.start()] + ".layers.{}." + key[match.end():], match.group(1)


def get_mapped_key(key: str, table: dict[str, str | None], source: str = "checkpoint") -> str | None:
    """Map one weight name through ``table``; ``None`` means the key is dropped on purpose.

    Raises:
        MindcodeError: the key is in neither the table nor its list of dropped keys.
    """
    abstract, layer = abstract_key(key)
    if abstract not in table:
        raise MindcodeError(f"{source}: unknown weight {key!r} (not in the llama key table)")
    mapped = table[abstract]
    if mapped is None:
        return None
    return mapped.replace("{}", layer) if layer is not None else mapped


def hf_to_ms(key: str, source: str = "HF checkpoint") -> str | None:
    """MindFormers name of an HF llama weight (``None`` if the weight is dropped)."""
    return get_mapped_key(key, HF_TO_MINDFORMERS, source)


def ms_to_hf(key: str, source: str = "MindSpore checkpoint") -> str:
    """HF name of a MindFormers llama weight."""
    mapped = get_mapped_key(key, MINDFORMERS_TO_HF, source)
    assert mapped is not None  # the reverse table has no dropped entries
    return mapped


# LoRA: an adapter pair (A: [rank, in], B: [out, rank]) belongs to one linear weight; its names in PEFT and in
# MindFormers (mindpet's LoRADense) are derived from that weight's names in the table above.
PEFT_PREFIX = "base_model.model."
LORA_PARTS = {"A": ("lora_A.weight", "mindpet_delta_lora_a"), "B": ("lora_B.weight", "mindpet_delta_lora_b")}
LINEAR_MODULES = {hf.split(".")[-2]: ms.split(".")[-2] for hf, ms in HF_TO_MINDFORMERS.items()
                  if ms is not None and ".layers.{}." in hf and hf.split(".")[-2].endswith("_proj")}


def lora_key(hf_weight: str, part: str, style: str) -> str:
    """``model.layers.0.self_attn.q_proj.weight``, ``A`` -> the PEFT (``peft``) or MindFormers (``mindformers``) name."""
    peft_suffix, ms_suffix = LORA_PARTS[part]
    if style == "peft":
        return PEFT_PREFIX + hf_weight[: -len("weight")] + peft_suffix
    return hf_to_ms(hf_weight)[: -len("weight")] + ms_suffix


def parse_lora_key(key: str, source: str = "adapter") -> tuple[str, str]:
    """A PEFT or MindFormers LoRA name -> (the HF name of the weight it adapts, ``A`` or ``B``)."""
    for part, (peft_suffix, ms_suffix) in LORA_PARTS.items():
        plain = key.replace(".default.", ".")  # PEFT's in-memory names carry the adapter name
        if plain.endswith("." + peft_suffix):
            weight = plain[len(PEFT_PREFIX):] if plain.startswith(PEFT_PREFIX) else plain
            weight = weight[: -len(peft_suffix)] + "weight"
            hf_to_ms(weight, source)  # an unknown weight is an error naming it
            return weight, part
        if key.endswith("." + ms_suffix):
            return ms_to_hf(key[: -len(ms_suffix)] + "weight", source), part
    raise MindcodeError(f"{source}: {key!r} is not a LoRA weight (lora_A/lora_B or mindpet_delta_lora_a/b)")
