"""HF -> MindSpore conversion: names, dtypes, shards, and every bad input named in one clear error."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from pathlib import Path

from backends import get_backend
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from mindcode.convert.keymap import hf_to_ms
from mindcode.errors import MindcodeError
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
CONFIG = tiny_config(num_layers=2, vocab_size=1003)


def hf_arrays(directory, dtype="float32"):
    import torch
    from safetensors.torch import load_file as load_torch

    tensors = {}
    for path in sorted(directory.glob("*.safetensors")):
        tensors.update({k: v.to(torch.float32).numpy() for k, v in load_torch(str(path)).items()})
    return tensors


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_source_dtype_is_kept_and_values_are_exact(dtype, hf_checkpoint, tmp_path):
    import mindspore as ms

    hf_dir = hf_checkpoint(CONFIG, dtype=dtype)
    out = tmp_path / "m.ckpt"
    summary = convert_hf_to_ms(hf_dir, out, progress=False)
    assert summary["tensors"] == 3 + 9 * CONFIG.num_layers and summary["dtypes"] == {dtype: summary["tensors"]}
    raw = ms.load_checkpoint(str(out))
    assert {str(p.dtype) for p in raw.values()} == {{"float32": "Float32", "float16": "Float16",
                                                     "bfloat16": "BFloat16"}[dtype]}
    converted = get_backend("ascend").load_checkpoint(out)
    source = hf_arrays(hf_dir)
    assert set(converted) == {hf_to_ms(k) for k in source}
    for name, array in source.items():
        np.testing.assert_array_equal(converted[hf_to_ms(name)], array, err_msg=name)


def test_dtype_flag_casts(hf_checkpoint, tmp_path):
    hf_dir = hf_checkpoint(CONFIG)
    summary = convert_hf_to_ms(hf_dir, tmp_path / "m.ckpt", dtype="fp16", progress=False)
    assert summary["dtypes"] == {"float16": summary["tensors"]}
    converted = get_backend("ascend").load_checkpoint(tmp_path / "m.ckpt")
    source = hf_arrays(hf_dir)
    for name, array in source.items():
        np.testing.assert_array_equal(converted[hf_to_ms(name)], array.astype(np.float16).astype(np.float32))


def test_sharded_checkpoint_converts_like_a_single_file(hf_checkpoint, tmp_path):
    single = hf_checkpoint(CONFIG, seed=5)
    sharded = hf_checkpoint(CONFIG, seed=5, max_shard_size="100KB")
    assert (sharded / "model.safetensors.index.json").exists()
    convert_hf_to_ms(single, tmp_path / "a.ckpt", progress=False)
    convert_hf_to_ms(sharded, tmp_path / "b.ckpt", progress=False)
    a, b = (get_backend("ascend").load_checkpoint(tmp_path / n) for n in ("a.ckpt", "b.ckpt"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def rewrite(hf_dir, edit):
    path = hf_dir / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


@pytest.mark.parametrize("case, pattern", [
    ("shape", r"model\.safetensors: model\.layers\.0\.mlp\.down_proj\.weight has shape \[64, 176\], config\.json implies \[64, 200\]"),
    ("missing", r"1 weights missing, first 'model\.layers\.1\.self_attn\.v_proj\.weight'"),
    ("unknown", r"model\.safetensors: unknown weight 'model\.layers\.0\.self_attn\.o_proj\.bias'"),
    ("bias", r"model\.safetensors: model\.layers\.0\.self_attn\.q_proj\.bias is not a weight of this 2-layer model "
             r"without biases \(qwen2 has q/k/v biases\)"),
    ("extra_layer", r"model\.layers\.7\.input_layernorm\.weight is not a weight of this 2-layer model"),
    ("not_llama", r"config\.json: model_type is 'mistral'"),
    ("no_config", r"config\.json: missing"),
])
def test_bad_input_gives_one_clear_error_and_no_output(case, pattern, hf_checkpoint, tmp_path):
    hf_dir = hf_checkpoint(CONFIG)
    config_path = hf_dir / "config.json"
    config = json.loads(config_path.read_text())
    if case == "shape":
        config_path.write_text(json.dumps({**config, "intermediate_size": 200}))
    elif case == "missing":
        rewrite(hf_dir, lambda t: t.pop("model.layers.1.self_attn.v_proj.weight"))
    elif case == "unknown":
        rewrite(hf_dir, lambda t: t.update({"model.layers.0.self_attn.o_proj.bias": np.zeros(64, np.float32)}))
    elif case == "bias":
        rewrite(hf_dir, lambda t: t.update({"model.layers.0.self_attn.q_proj.bias": np.zeros(64, np.float32)}))
    elif case == "extra_layer":
        rewrite(hf_dir, lambda t: t.update({"model.layers.7.input_layernorm.weight": np.ones(64, np.float32)}))
    elif case == "not_llama":
        config_path.write_text(json.dumps({**config, "model_type": "mistral"}))
    elif case == "no_config":
        config_path.unlink()
    out = tmp_path / "out.ckpt"
    with pytest.raises(MindcodeError, match=pattern):
        convert_hf_to_ms(hf_dir, out, progress=False)
    assert list(tmp_path.glob("*.ckpt")) == [] and list(tmp_path.glob(".*")) == []


def test_a_failed_write_leaves_no_output(hf_checkpoint, tmp_path, monkeypatch):
    from mindcode.convert import ckpt_io

    hf_dir = hf_checkpoint(CONFIG)
    real_write = ckpt_io.CkptWriter.write

    def failing(self, name, *args):
        if "layers.1" in name:
            raise OSError("disk full")
        return real_write(self, name, *args)

    monkeypatch.setattr(ckpt_io.CkptWriter, "write", failing)
    with pytest.raises(OSError, match="disk full"):
        convert_hf_to_ms(hf_dir, tmp_path / "out.ckpt", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "hf0"]


def test_ckpt_is_byte_identical_to_mindspore_save_checkpoint(hf_checkpoint, tmp_path):
    import mindspore as ms

    hf_dir = hf_checkpoint(CONFIG, dtype="bfloat16")
    convert_hf_to_ms(hf_dir, tmp_path / "ours.ckpt", progress=False)
    source = hf_arrays(hf_dir)
    from mindcode.convert.sources import list_sources

    entries = [{"name": hf_to_ms(s.name), "data": ms.Tensor(source[s.name], ms.bfloat16)}
               for s in list_sources(hf_dir) if hf_to_ms(s.name)]
    ms.save_checkpoint(entries, str(tmp_path / "theirs.ckpt"))
    assert (tmp_path / "ours.ckpt").read_bytes() == (tmp_path / "theirs.ckpt").read_bytes()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_round_trip_is_bit_identical_and_transformers_loads_it(dtype, hf_checkpoint, tmp_path):
    import torch
    import transformers
    from safetensors.torch import load_file

    from mindcode.convert.ms_to_hf import convert_ms_to_hf

    hf_dir = hf_checkpoint(CONFIG, dtype=dtype)
    convert_hf_to_ms(hf_dir, tmp_path / "m.ckpt", verify=True, progress=False)
    summary = convert_ms_to_hf(tmp_path / "m.ckpt", tmp_path / "back", config=str(hf_dir / "config.json"),
                               verify=True, progress=False)
    assert summary["verified"] and summary["dropped"] == []
    original, back = load_file(str(hf_dir / "model.safetensors")), load_file(str(tmp_path / "back" / "model.safetensors"))
    assert original.keys() == back.keys()
    for name in original:
        assert original[name].dtype == back[name].dtype and torch.equal(original[name], back[name]), name
    model = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "back"))
    assert model.config.num_key_value_heads == CONFIG.kv_heads and model.config.vocab_size == 1003
    assert (tmp_path / "back" / "generation_config.json").exists()


def test_reverse_drops_training_state_shards_and_takes_yaml_or_preset(tmp_path):
    """A checkpoint written by MindFormers' training step (AdamW moments, step, loss scale) back to HF."""
    import json as _json

    import mindspore as ms

    from mindcode.convert.ms_to_hf import convert_ms_to_hf

    model = get_backend("ascend").build_model(CONFIG.replace(vocab_size=1024), 16)
    from mindformers.core.optim import AdamW

    optimizer = AdamW(model.trainable_params(), learning_rate=1e-3)
    state = {p.name: p for p in list(model.trainable_params()) + list(optimizer.get_parameters())}
    ms.save_checkpoint([{"name": n, "data": p} for n, p in state.items()], str(tmp_path / "t.ckpt"))
    summary = convert_ms_to_hf(tmp_path / "t.ckpt", tmp_path / "hf", config="tiny", max_shard_size="100KB",
                               progress=False)
    assert summary["shards"] > 1 and any(d.startswith(("exp_avg", "adam_m")) for d in summary["dropped"])
    index = _json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == summary["shards"]
    yaml_path = Path(__file__).resolve().parents[2] / "configs" / "gpu" / "tiny_cpu.yaml"
    again = convert_ms_to_hf(tmp_path / "t.ckpt", tmp_path / "hf2", config=str(yaml_path), progress=False)
    assert again["tensors"] == summary["tensors"]


def test_safetensors_format_loads_in_mindspore(hf_checkpoint, tmp_path):
    import mindspore as ms

    hf_dir = hf_checkpoint(CONFIG)
    convert_hf_to_ms(hf_dir, tmp_path / "m.safetensors", fmt="safetensors", verify=True, progress=False)
    params = ms.load_checkpoint(str(tmp_path / "m.safetensors"), format="safetensors")
    assert "model.tok_embeddings.embedding_weight" in params


def test_pytorch_bin_input(hf_checkpoint, tmp_path):
    import torch
    import transformers

    src = hf_checkpoint(CONFIG)
    model = transformers.LlamaForCausalLM.from_pretrained(str(src))
    bin_dir = tmp_path / "bin"
    model.save_pretrained(str(bin_dir), safe_serialization=False)
    assert list(bin_dir.glob("pytorch_model*.bin"))
    convert_hf_to_ms(bin_dir, tmp_path / "a.ckpt", progress=False)
    convert_hf_to_ms(src, tmp_path / "b.ckpt", progress=False)
    a, b = (get_backend("ascend").load_checkpoint(tmp_path / n) for n in ("a.ckpt", "b.ckpt"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    del torch


def test_bad_mindspore_checkpoints(tmp_path, hf_checkpoint):
    from mindcode.convert.ms_to_hf import convert_ms_to_hf

    hf_dir = hf_checkpoint(CONFIG)
    convert_hf_to_ms(hf_dir, tmp_path / "m.ckpt", progress=False)
    data = (tmp_path / "m.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) - 100])
    with pytest.raises(MindcodeError, match=r"cut\.ckpt: truncated"):
        convert_ms_to_hf(tmp_path / "cut.ckpt", tmp_path / "o1", config=str(hf_dir / "config.json"), progress=False)
    with pytest.raises(MindcodeError, match="config implies"):
        convert_ms_to_hf(tmp_path / "m.ckpt", tmp_path / "o2", config="codellama-7b", progress=False)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
