import pytest

from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS, ModelConfig, get_preset

# Sizes as published on the CodeLlama model cards.
PUBLISHED_PARAMS = {"codellama-7b": 6.7e9, "codellama-13b": 13.0e9, "codellama-34b": 33.7e9,
                    "deepseek-coder-6.7b": 6.74e9, "qwen2.5-coder-7b": 7.62e9, "smollm2-135m": 0.135e9}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_published_size(name):
    assert get_preset(name).num_params() == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)


@pytest.mark.parametrize("name", ["codellama-7b", "codellama-34b", "tiny"])
def test_parameter_count_equals_transformers_model_on_meta_device(name):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = get_preset(name)
    with torch.device("meta"):  # shapes only, no memory
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config.to_hf_config()))
    assert config.num_params() == sum(p.numel() for p in model.parameters())
    assert {n: tuple(p.shape) for n, p in model.named_parameters() if ".layers.0." in n or ".layers." not in n} == {
        k.replace("{}", "0"): v for k, v in config.hf_weight_shapes().items()
    }


def test_codellama_shapes():
    assert PRESETS["codellama-7b"].vocab_size == PRESETS["codellama-13b"].vocab_size == 32016
    big = PRESETS["codellama-34b"]
    assert (big.vocab_size, big.kv_heads, big.num_heads, big.head_dim) == (32000, 8, 64, 128)
    for name, preset in PRESETS.items():
        if name.startswith("codellama"):
            assert preset.rope_theta == 1e6 and preset.max_position_embeddings == 16384, name
    assert PRESETS["codellama-34b-instruct"].num_params() == PRESETS["codellama-34b"].num_params()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_hf_config_round_trip(name):
    """Every field but the pad id, which config.json does not give reliably (SmolLM2's names <|im_end|>, a token of
    every chat): MindFormers' pad comes from the preset or the training config (docs/models.md, "Pad ids")."""
    preset = PRESETS[name]
    assert ModelConfig.from_hf_config(preset.to_hf_config(), name=name) == preset.replace(pad_token_id=0)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(MindcodeError, match=r"unknown model preset 'codellama-70b'; valid: .*codellama-7b"):
        get_preset("codellama-70b")


def test_inconsistent_shapes_are_rejected():
    with pytest.raises(MindcodeError, match="not divisible by num_heads"):
        PRESETS["tiny"].replace(hidden_size=66)
    with pytest.raises(MindcodeError, match="not divisible by num_kv_heads 3"):
        PRESETS["tiny"].replace(num_kv_heads=3)


def test_non_llama_config_is_rejected():
    with pytest.raises(MindcodeError, match="model_type is 'gpt2'"):
        ModelConfig.from_hf_config({"model_type": "gpt2"})
    with pytest.raises(MindcodeError, match="missing field 'vocab_size'"):
        ModelConfig.from_hf_config({"model_type": "llama", "num_attention_heads": 4})


# config.json as transformers 4.57 writes it for CodeLlama-7b (the fields of CodeLlama's own file, as published)
CODELLAMA_7B_JSON = {
    "_name_or_path": "codellama/CodeLlama-7b-hf", "architectures": ["LlamaForCausalLM"], "attention_bias": False,
    "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 16384,
    "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 1000000,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.57.1", "use_cache": True,
    "vocab_size": 32016}


def test_every_field_of_a_llama_config_is_mapped_or_harmless_or_refused():
    """Each field of CodeLlama's config.json is read; linear rope scaling and tied embeddings are mapped; biases,
    another head_dim or an unknown field are refused with one line naming the field, never silently ignored."""
    assert ModelConfig.from_hf_config(CODELLAMA_7B_JSON) == PRESETS["codellama-7b"].replace(name="hf")
    refused = {
        "rope_scaling": ({"type": "dynamic", "factor": 2.0}, r"rope_scaling=\{\"type\": \"dynamic\", \"factor\": 2\.0\} "
                                                             r"is not supported \(linear scaling"),
        "attention_bias": (True, "attention_bias=true is not supported"),
        "mlp_bias": (True, "mlp_bias=true"),
        "head_dim": (64, r"head_dim=64 is not supported \(both backends compute with head_dim=128\)"),
        "hidden_act": ("gelu", "hidden_act=\"gelu\""),
        "sliding_window": (4096, "field 'sliding_window' is not one mindcode knows"),
    }
    deepseek = ModelConfig.from_hf_config({**CODELLAMA_7B_JSON, "rope_scaling": {"type": "linear", "factor": 4.0}})
    assert deepseek.rope_scaling_factor == 4.0  # DeepSeek-Coder's: mapped on both backends
    assert deepseek.to_mindformers_config()["extend_method"] == "PI"  # MindFormers' position interpolation
    assert ModelConfig.from_mindformers_config(deepseek.to_mindformers_config(), name="hf") == deepseek
    assert ModelConfig.from_hf_config(deepseek.to_hf_config()) == deepseek
    tied = ModelConfig.from_hf_config({**CODELLAMA_7B_JSON, "tie_word_embeddings": True})
    assert tied.tie_word_embeddings and "lm_head.weight" not in tied.hf_weight_shapes()
    assert ModelConfig.from_mindformers_config(tied.to_mindformers_config(), name="hf") == tied
    for key, (value, message) in refused.items():
        with pytest.raises(MindcodeError, match=message):
            ModelConfig.from_hf_config({**CODELLAMA_7B_JSON, key: value})


# Qwen2.5-Coder-0.5B-Instruct's config.json as published (qwen2: q/k/v biases, tied embeddings), layer_types as
# transformers 4.57 adds it
QWEN25_CODER_05B_JSON = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
    "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
    "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": None,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    "layer_types": ["full_attention"] * 24}


def test_every_field_of_a_qwen2_config_is_mapped_or_harmless_or_refused():
    qwen = ModelConfig.from_hf_config(QWEN25_CODER_05B_JSON)
    assert qwen.qkv_bias and qwen.tie_word_embeddings and qwen.kv_heads == 2
    assert qwen.num_params() == 494_032_768  # Qwen2.5-Coder-0.5B's published parameter count
    shapes = qwen.hf_weight_shapes()
    assert shapes["model.layers.{}.self_attn.k_proj.bias"] == (128,) and "model.layers.{}.self_attn.o_proj.bias" not in shapes
    assert qwen.to_mindformers_config()["qkv_has_bias"] is True
    assert ModelConfig.from_mindformers_config(qwen.to_mindformers_config(), name="hf") == qwen
    assert ModelConfig.from_hf_config(qwen.to_hf_config()) == qwen
    for key, value, message in (("use_sliding_window", True, "use_sliding_window=true is not supported"),
                                ("layer_types", ["sliding_attention"] * 24, "layer_types other than full_attention"),
                                ("attention_bias", True, "attention_bias=true")):
        with pytest.raises(MindcodeError, match=message):
            ModelConfig.from_hf_config({**QWEN25_CODER_05B_JSON, key: value})
    with pytest.raises(MindcodeError, match="sliding_window"):  # a llama config has no window to ignore
        ModelConfig.from_hf_config({**CODELLAMA_7B_JSON, "sliding_window": 4096})
