import pytest

from mindcode.convert.hf_to_ms import expected_weights
from mindcode.convert.keymap import HF_TO_MINDFORMERS, MINDFORMERS_TO_HF, hf_to_ms, ms_to_hf
from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS


def test_round_trip_is_exact_for_every_weight():
    names = expected_weights(PRESETS["tiny"].replace(num_layers=12))
    ms_names = {hf_to_ms(name) for name in names}
    assert len(ms_names) == len(names)  # injective
    assert {ms_to_hf(name) for name in ms_names} == set(names)


def test_mindformers_names():
    assert hf_to_ms("model.embed_tokens.weight") == "model.tok_embeddings.embedding_weight"
    assert hf_to_ms("model.layers.10.self_attn.k_proj.weight") == "model.layers.10.attention.wk.weight"
    assert hf_to_ms("model.layers.3.mlp.gate_proj.weight") == "model.layers.3.feed_forward.w1.weight"
    assert hf_to_ms("model.layers.3.mlp.down_proj.weight") == "model.layers.3.feed_forward.w2.weight"
    assert hf_to_ms("model.layers.3.mlp.up_proj.weight") == "model.layers.3.feed_forward.w3.weight"
    assert hf_to_ms("model.layers.0.post_attention_layernorm.weight") == "model.layers.0.ffn_norm.weight"
    assert hf_to_ms("model.norm.weight") == "model.norm_out.weight"
    assert hf_to_ms("lm_head.weight") == "lm_head.weight"


def test_every_model_weight_is_in_the_table_and_reverse_is_derived():
    assert set(PRESETS["tiny"].hf_weight_shapes()) <= set(HF_TO_MINDFORMERS)
    assert MINDFORMERS_TO_HF == {v: k for k, v in HF_TO_MINDFORMERS.items() if v is not None}


def test_rotary_buffers_are_dropped_on_purpose():
    assert hf_to_ms("model.layers.5.self_attn.rotary_emb.inv_freq") is None


@pytest.mark.parametrize("key", ["model.layers.0.self_attn.o_proj.bias", "transformer.h.0.attn.c_attn.weight", "lm_head"])
def test_unknown_key_raises_naming_it(key):
    with pytest.raises(MindcodeError, match=f"unknown weight '{key}'"):
        hf_to_ms(key, source="shard-1.safetensors")


def test_unknown_mindformers_key_raises():
    with pytest.raises(MindcodeError, match=r"MindSpore checkpoint: unknown weight 'adam_m\.lm_head\.weight'"):
        ms_to_hf("adam_m.lm_head.weight")
