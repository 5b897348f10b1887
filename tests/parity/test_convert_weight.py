"""HF -> MindSpore conversion: names, dtypes, shards, and every bad input named in one clear error."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

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
    ("unknown", r"model\.safetensors: unknown weight 'model\.layers\.0\.self_attn\.q_proj\.bias'"),
    ("extra_layer", r"model\.layers\.7\.input_layernorm\.weight is not a weight of a 2-layer model"),
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
    import mindspore as ms

    hf_dir = hf_checkpoint(CONFIG)

    def broken_save(entries, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ms, "save_checkpoint", broken_save)
    with pytest.raises(OSError, match="disk full"):
        convert_hf_to_ms(hf_dir, tmp_path / "out.ckpt", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "hf0"]
