"""Model architecture presets: one typed dataclass, named CodeLlama presets and tiny test presets.

A preset is pure data. The backends turn it into a MindFormers ``LlamaConfig`` (ascend) or a transformers
``LlamaConfig`` (gpu); :meth:`ModelConfig.to_hf_config` and :meth:`ModelConfig.to_mindformers_config` give the
framework-free dictionaries both are built from, so the two backends can never disagree on a shape.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from mindcode.errors import MindcodeError


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a Llama-family decoder (CodeLlama is Llama 2 with rope theta 1e6 and 16k positions)."""

    name: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int | None = None  # None: multi-head attention (as many KV heads as query heads)
    rope_theta: float = 1e6
    max_position_embeddings: int = 16384
    rms_norm_eps: float = 1e-5
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0
    # linear RoPE scaling (position interpolation): every rotary frequency divided by this factor, as
    # DeepSeek-Coder's rope_scaling {"type": "linear", "factor": 4.0}; HF rope_scaling / MindFormers extend_method
    rope_scaling_factor: float | None = None
    # the output head shares the embedding matrix (SmolLM2, small Qwen2.5-Coder): no lm_head.weight of its own
    tie_word_embeddings: bool = False
    # biases on the query/key/value projections (not the output one): Qwen2's attention, model_type qwen2
    qkv_bias: bool = False

    def __post_init__(self) -> None:
        if self.rope_scaling_factor is not None and self.rope_scaling_factor < 1:
            raise MindcodeError(f"model {self.name!r}: rope_scaling_factor must be >= 1, got {self.rope_scaling_factor}")
        for field in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads"):
            if getattr(self, field) <= 0:
                raise MindcodeError(f"model {self.name!r}: {field} must be positive, got {getattr(self, field)}")
        if self.hidden_size % self.num_heads:
            raise MindcodeError(
                f"model {self.name!r}: hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.num_heads % self.kv_heads:
            raise MindcodeError(
                f"model {self.name!r}: num_heads {self.num_heads} is not divisible by num_kv_heads {self.kv_heads}"
            )

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def hf_weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter of transformers' ``LlamaForCausalLM`` with its shape (layer index as ``{}``)."""
        h, kv = self.hidden_size, self.kv_heads * self.head_dim
        return {
            "model.embed_tokens.weight": (self.vocab_size, h),
            "model.layers.{}.self_attn.q_proj.weight": (h, h),
            "model.layers.{}.self_attn.k_proj.weight": (kv, h),
            "model.layers.{}.self_attn.v_proj.weight": (kv, h),
            **({"model.layers.{}.self_attn.q_proj.bias": (h,), "model.layers.{}.self_attn.k_proj.bias": (kv,),
                "model.layers.{}.self_attn.v_proj.bias": (kv,)} if self.qkv_bias else {}),
            "model.layers.{}.self_attn.o_proj.weight": (h, h),
            "model.layers.{}.mlp.gate_proj.weight": (self.intermediate_size, h),
            "model.layers.{}.mlp.down_proj.weight": (h, self.intermediate_size),
            "model.layers.{}.mlp.up_proj.weight": (self.intermediate_size, h),
            "model.layers.{}.input_layernorm.weight": (h,),
            "model.layers.{}.post_attention_layernorm.weight": (h,),
            "model.norm.weight": (h,),
            **({} if self.tie_word_embeddings else {"lm_head.weight": (self.vocab_size, h)}),
        }

    def num_params(self) -> int:
        """Parameter count, computed from the shapes alone (nothing is allocated)."""
        total = 0
        for key, shape in self.hf_weight_shapes().items():
            size = 1
            for dim in shape:
                size *= dim
            total += size * (self.num_layers if "{}" in key else 1)
        return total

    def to_hf_config(self) -> dict[str, Any]:
        """The ``config.json`` transformers writes for this model (``Qwen2ForCausalLM``'s with ``qkv_bias``)."""
        return {
            "architectures": ["Qwen2ForCausalLM" if self.qkv_bias else "LlamaForCausalLM"],
            "model_type": "qwen2" if self.qkv_bias else "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.kv_heads,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": self.tie_word_embeddings,
            **({"use_sliding_window": False} if self.qkv_bias else {"attention_bias": False}),
            **({"rope_scaling": {"type": "linear", "factor": self.rope_scaling_factor}}
               if self.rope_scaling_factor else {}),
        }

    def to_mindformers_config(self) -> dict[str, Any]:
        """Keyword arguments of MindFormers' ``LlamaConfig`` for this shape (no device or dtype settings). Linear
        RoPE scaling is MindFormers' position interpolation, ``extend_method: PI`` with ``scaling_factor: F``
        (positions divided by F: the same rotation as HF's frequencies divided by F). Its ``linear`` method would be
        the literal twin, but MindFormers 1.9 refuses every numeric factor there (an inverted check in
        ``_check_linear_scaling_factor``)."""
        values = {mf: getattr(self, ours) for ours, mf in TO_MINDFORMERS.items()}
        if self.rope_scaling_factor:
            values.update(extend_method="PI", scaling_factor=float(self.rope_scaling_factor))
        if self.tie_word_embeddings:  # MindFormers' LlamaForCausalLM then shares the embedding as lm_head.weight
            values["tie_word_embeddings"] = True
        if self.qkv_bias:  # MindFormers' Llama attention with biased wq/wk/wv (its Qwen2 configs do the same)
            values["qkv_has_bias"] = True
        return values

    @classmethod
    def from_mindformers_config(cls, config: dict[str, Any], name: str = "model") -> ModelConfig:
        """Read the shape keys of a MindFormers ``model_config`` (other keys are the caller's business)."""
        values = {ours: config[mf] for mf, ours in FROM_MINDFORMERS.items() if mf in config}
        if config.get("tie_word_embeddings"):
            values["tie_word_embeddings"] = True
        if config.get("qkv_has_bias"):
            values["qkv_bias"] = True
        if config.get("attn_proj_has_bias"):
            raise MindcodeError(f"{name}: attn_proj_has_bias is not supported (both backends compute an output "
                                f"projection without bias)")
        method, factor = str(config.get("extend_method", "None")), config.get("scaling_factor")
        if method == "linear" and isinstance(factor, dict):
            factor = factor.get("factor")
        if method in ("PI", "linear"):  # both are linear RoPE scaling
            if not isinstance(factor, (int, float)) or isinstance(factor, bool):
                raise MindcodeError(f"{name}: extend_method {method} needs a numeric scaling_factor")
            values["rope_scaling_factor"] = float(factor)
        elif method != "None":
            raise MindcodeError(f"{name}: extend_method {method!r} is not supported (both backends compute 'None', "
                                f"and 'PI'/'linear' as linear RoPE scaling)")
        missing = [TO_MINDFORMERS[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_layers",
                                               "num_heads") if k not in values]
        if missing:
            raise MindcodeError(f"{name}: model_config lacks {', '.join(missing)}")
        return cls(name=name, **values)

    @classmethod
    def from_hf_config(cls, config: dict[str, Any], name: str = "hf") -> ModelConfig:
        """Read a transformers ``config.json`` dictionary (``llama``, or ``qwen2``: Llama with biased q/k/v
        projections). Every field is either mapped (``HF_MAPPED``), known to leave the computation alone
        (``HF_NO_EFFECT``), or accepted only at the value both backends compute with (``HF_REQUIRED``, and
        ``QWEN2_REQUIRED`` for qwen2); anything else is refused with one line naming it, so a config that asks for
        something mindcode does not compute (other rope scalings, sliding windows) never trains or predicts silently
        without it."""
        model_type = config.get("model_type")
        if model_type not in ("llama", "qwen2"):
            raise MindcodeError(f"config.json: model_type is {model_type!r}; supported: 'llama' (CodeLlama, "
                                f"DeepSeek-Coder, SmolLM2) and 'qwen2' (Qwen2.5-Coder)")
        required_values = {**HF_REQUIRED, **QWEN2_REQUIRED} if model_type == "qwen2" else HF_REQUIRED
        for key, value in config.items():
            _check_hf_field(config, key, value, required_values, model_type)
        try:
            heads = config["num_attention_heads"]
            kv = config.get("num_key_value_heads", heads)
            return cls(
                name=name,
                vocab_size=config["vocab_size"],
                hidden_size=config["hidden_size"],
                intermediate_size=config["intermediate_size"],
                num_layers=config["num_hidden_layers"],
                num_heads=heads,
                num_kv_heads=None if kv == heads else kv,
                rope_theta=float(config.get("rope_theta", 10000.0)),
                max_position_embeddings=config.get("max_position_embeddings", 2048),
                rms_norm_eps=config.get("rms_norm_eps", 1e-6),
                bos_token_id=config.get("bos_token_id", 1),
                eos_token_id=config.get("eos_token_id", 2),
                rope_scaling_factor=float(config["rope_scaling"]["factor"]) if config.get("rope_scaling") else None,
                tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                qkv_bias=model_type == "qwen2",
            )
        except KeyError as exc:
            raise MindcodeError(f"config.json: missing field {exc.args[0]!r}") from None

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def _check_hf_field(config: dict[str, Any], key: str, value: Any, required_values: dict[str, Any],
                    model_type: str) -> None:
    """One ``config.json`` field: mapped, without effect, or at the value both backends compute with (see
    ``ModelConfig.from_hf_config``); anything else raises one line naming it."""
    if key == "rope_scaling" and value is not None:
        kind = value.get("rope_type", value.get("type")) if isinstance(value, dict) else None
        if kind != "linear" or not isinstance(value.get("factor"), (int, float)) or \
                set(value) - {"type", "rope_type", "factor"}:
            raise MindcodeError(f"config.json: rope_scaling={json.dumps(value)} is not supported (linear "
                                f"scaling with a factor is; both backends compute it)")
        return
    if key in HF_MAPPED or key in HF_NO_EFFECT or key.startswith("_"):
        return  # a leading underscore: transformers' bookkeeping (``_name_or_path``, GGUF's model name)
    if model_type == "qwen2" and key in QWEN2_UNUSED:
        return
    if key == "layer_types":
        if not isinstance(value, list) or set(value) - {"full_attention"}:
            raise MindcodeError("config.json: layer_types other than full_attention are not supported "
                                "(both backends compute full causal attention in every layer)")
        return
    if key not in required_values:
        raise MindcodeError(f"config.json: field {key!r} is not one mindcode knows; it may change the "
                            f"computation, so the checkpoint is refused (docs/models.md lists the fields)")
    required = required_values[key]
    if key == "head_dim":
        if not isinstance(config.get("hidden_size"), int) or not config.get("num_attention_heads"):
            return  # the missing field is named by from_hf_config
        required = config["hidden_size"] // config["num_attention_heads"]
    if value != required:
        raise MindcodeError(f"config.json: {key}={json.dumps(value)} is not supported (both backends compute "
                            f"with {key}={json.dumps(required)})")


# transformers LlamaConfig fields (config.json): read into ModelConfig ...
HF_MAPPED = {"model_type", "rope_scaling", "tie_word_embeddings", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "rope_theta", "max_position_embeddings", "rms_norm_eps",
             "bos_token_id", "eos_token_id"}
# ... that do not change what the model computes (bookkeeping, initialisation, outputs, the pad id) ...
HF_NO_EFFECT = {"architectures", "dtype", "torch_dtype", "transformers_version", "_name_or_path", "use_cache",
                "pad_token_id", "unk_token_id", "initializer_range", "output_attentions", "output_hidden_states", "return_dict",
                "id2label", "label2id", "problem_type", "tokenizer_class", "prefix", "task_specific_params",
                "finetuning_task", "chunk_size_feed_forward", "is_encoder_decoder", "add_cross_attention"}
# ... and accepted only at the value both backends compute with (head_dim: hidden_size / num_attention_heads)
HF_REQUIRED = { "attention_bias": False, "mlp_bias": False,
               "hidden_act": "silu", "pretraining_tp": 1, "attention_dropout": 0.0, "head_dim": None}

# qwen2 (Qwen2ForCausalLM: Llama's computation with biased q/k/v): no sliding window ...
QWEN2_REQUIRED = {"use_sliding_window": False}
# ... so the window's size and the layers it would apply to do not change the computation; layer_types lists
# "full_attention" (transformers >= 4.56 writes it) and is checked against that
QWEN2_UNUSED = {"sliding_window", "max_window_layers", "use_mrope"}

# mindcode field -> MindFormers LlamaConfig key; the reverse is derived.
TO_MINDFORMERS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_layers": "num_layers",
    "num_heads": "num_heads",
    "num_kv_heads": "n_kv_heads",
    "rope_theta": "theta",
    "max_position_embeddings": "max_position_embedding",
    "rms_norm_eps": "rms_norm_eps",
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id",
}
FROM_MINDFORMERS = {mf: ours for ours, mf in TO_MINDFORMERS.items()}

PRESETS: dict[str, ModelConfig] = {
    # https://huggingface.co/codellama/CodeLlama-7b-hf/blob/main/config.json (also -Python-hf, -Instruct-hf)
    "codellama-7b": ModelConfig(
        name="codellama-7b", vocab_size=32016, hidden_size=4096, intermediate_size=11008,
        num_layers=32, num_heads=32,
    ),
    # https://huggingface.co/codellama/CodeLlama-13b-hf/blob/main/config.json (also -Python-hf, -Instruct-hf)
    "codellama-13b": ModelConfig(
        name="codellama-13b", vocab_size=32016, hidden_size=5120, intermediate_size=13824,
        num_layers=40, num_heads=40,
    ),
    # https://huggingface.co/codellama/CodeLlama-34b-hf/blob/main/config.json (also -Python-hf, -Instruct-hf)
    "codellama-34b": ModelConfig(
        name="codellama-34b", vocab_size=32000, hidden_size=8192, intermediate_size=22016,
        num_layers=48, num_heads=64, num_kv_heads=8,
    ),
    # https://huggingface.co/deepseek-ai/deepseek-coder-6.7b-base/blob/main/config.json (Magicoder-S-DS's base):
    # Llama with linear RoPE scaling 4.0 over 16k positions; BOS/EOS <｜begin▁of▁sentence｜>/<｜end▁of▁sentence｜>
    "deepseek-coder-6.7b": ModelConfig(
        name="deepseek-coder-6.7b", vocab_size=32256, hidden_size=4096, intermediate_size=11008,
        num_layers=32, num_heads=32, rope_theta=100000.0, rms_norm_eps=1e-6, rope_scaling_factor=4.0,
        bos_token_id=32013, eos_token_id=32014, pad_token_id=32014,  # MindFormers' DeepSeek pad (0 is "!")
    ),
    # https://huggingface.co/Qwen/Qwen2.5-Coder-7B/blob/main/config.json: qwen2 (q/k/v biases), 4 KV heads
    "qwen2.5-coder-7b": ModelConfig(
        name="qwen2.5-coder-7b", vocab_size=152064, hidden_size=3584, intermediate_size=18944,
        num_layers=28, num_heads=28, num_kv_heads=4, rope_theta=1e6, max_position_embeddings=32768,
        rms_norm_eps=1e-6, bos_token_id=151643, eos_token_id=151643, qkv_bias=True,
        pad_token_id=151643,  # <|endoftext|>, MindFormers' Qwen2.5 pad (0 is "!")
    ),
    # https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct (the real test model, `make smollm2`): tied
    # embeddings, 3 KV heads
    "smollm2-135m": ModelConfig(
        name="smollm2-135m", vocab_size=49152, hidden_size=576, intermediate_size=1536, num_layers=30,
        num_heads=9, num_kv_heads=3, rope_theta=100000.0, max_position_embeddings=8192, rms_norm_eps=1e-5,
        bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
    ),
    # Tiny CodeLlama-shaped model for tests and the quickstart; vocab matches mindcode's tiny tokenizer.
    "tiny": ModelConfig(
        name="tiny", vocab_size=1024, hidden_size=64, intermediate_size=176,
        num_layers=2, num_heads=4, num_kv_heads=2, max_position_embeddings=512,
    ),
}

# Base, Python and Instruct variants share their shapes.
for _size in ("7b", "13b", "34b"):
    for _variant in ("python", "instruct"):
        PRESETS[f"codellama-{_size}-{_variant}"] = PRESETS[f"codellama-{_size}"].replace(
            name=f"codellama-{_size}-{_variant}"
        )
# the instruct variants end their turns with their own EOS
PRESETS["deepseek-coder-6.7b-instruct"] = PRESETS["deepseek-coder-6.7b"].replace(
    name="deepseek-coder-6.7b-instruct", eos_token_id=32021)
PRESETS["qwen2.5-coder-7b-instruct"] = PRESETS["qwen2.5-coder-7b"].replace(
    name="qwen2.5-coder-7b-instruct", eos_token_id=151645)


def get_preset(name: str) -> ModelConfig:
    """Return the preset called ``name``; an unknown name raises listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise MindcodeError(f"unknown model preset {name!r}; valid: {', '.join(sorted(PRESETS))}") from None
