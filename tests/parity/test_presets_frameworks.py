"""Every preset turns into a MindFormers LlamaConfig and a transformers LlamaConfig of the same shape."""

import pytest

from mindcode.presets import PRESETS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_builds_both_framework_configs(name):
    import transformers

    from backends.ascend.model import CPU_SETTINGS, mindformers_config

    preset = PRESETS[name]
    ms_cfg = mindformers_config(preset, seq_length=4096)
    hf_cfg = transformers.LlamaConfig(**preset.to_hf_config())
    assert (ms_cfg.hidden_size, hf_cfg.hidden_size) == (preset.hidden_size,) * 2
    assert (ms_cfg.num_layers, hf_cfg.num_hidden_layers) == (preset.num_layers,) * 2
    assert (ms_cfg.num_heads, hf_cfg.num_attention_heads) == (preset.num_heads,) * 2
    assert (ms_cfg.n_kv_heads or ms_cfg.num_heads, hf_cfg.num_key_value_heads) == (preset.kv_heads,) * 2
    assert (ms_cfg.intermediate_size, hf_cfg.intermediate_size) == (preset.intermediate_size,) * 2
    assert (ms_cfg.vocab_size, hf_cfg.vocab_size) == (preset.vocab_size,) * 2
    assert (ms_cfg.theta, hf_cfg.rope_theta) == (preset.rope_theta,) * 2
    assert ms_cfg.seq_length == 4096
    for key, value in CPU_SETTINGS.items():  # this host has no NPU, so the CPU settings apply
        assert str(getattr(ms_cfg, key)).lower() == str(value).lower(), key
