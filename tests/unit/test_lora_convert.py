"""LoRA adapters in the weight tool, without a framework: reading PEFT and MindFormers files, their errors, and the
streamed merge arithmetic."""

import json

import numpy as np
import pytest

from mindcode.convert import ckpt_io
from mindcode.convert.casting import from_float32, to_float32
from mindcode.convert.keymap import lora_key
from mindcode.convert.lora import initial_adapter, merged_chunks, read_adapter
from mindcode.convert.safetensors_io import write_safetensors
from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS

Q = "model.layers.1.self_attn.q_proj.weight"


def write_peft(directory, pairs, config=True, r=2, alpha=4):
    directory.mkdir()
    arrays = {lora_key(w, p, "peft"): v for w, pair in pairs.items() for p, v in pair.items()}
    entries = [(n, "float32", a.shape, a.nbytes) for n, a in arrays.items()]
    write_safetensors(directory / "adapter_model.safetensors", entries, lambda n: iter([arrays[n].tobytes()]))
    if config:
        (directory / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": alpha, "peft_type": "LORA"}))
    return directory


def write_mindformers(path, pairs):
    with path.open("wb") as f:
        writer = ckpt_io.CkptWriter(f)
        for weight, pair in pairs.items():
            for part, value in pair.items():
                writer.write(lora_key(weight, part, "mindformers"), value.shape, "Float32", iter([value.tobytes()]))
    return path


def pair(rank=2, out=64, into=64, seed=0):
    rng = np.random.default_rng(seed)
    return {"A": rng.normal(size=(rank, into)).astype(np.float32), "B": rng.normal(size=(out, rank)).astype(np.float32)}


def test_peft_and_mindformers_adapters_read_the_same(tmp_path):
    pairs = {Q: pair()}
    peft = read_adapter(write_peft(tmp_path / "peft", pairs))
    mf = read_adapter(write_mindformers(tmp_path / "a.ckpt", pairs), alpha=4)
    assert peft.scale == mf.scale == 2.0 and peft.target_modules == ["q_proj"]
    np.testing.assert_array_equal(peft.delta(Q), mf.delta(Q))
    np.testing.assert_allclose(peft.delta(Q), 2.0 * pairs[Q]["B"] @ pairs[Q]["A"], rtol=1e-6)


def test_adapter_errors_name_the_problem(tmp_path):
    with pytest.raises(MindcodeError, match="needs adapter_config.json"):
        read_adapter(write_peft(tmp_path / "noconf", {Q: pair()}, config=False))
    with pytest.raises(MindcodeError, match="lora_alpha unknown .*pass --lora_alpha"):
        read_adapter(write_mindformers(tmp_path / "b.ckpt", {Q: pair()}))
    with pytest.raises(MindcodeError, match="r = 4 but the weights have rank 2"):
        read_adapter(write_peft(tmp_path / "rank", {Q: pair()}, r=4))
    bad = {Q: {"A": pair()["A"], "B": np.zeros((64, 3), np.float32)}}
    with pytest.raises(MindcodeError, match="A \\[2, 64\\] and B \\[64, 3\\] disagree"):
        read_adapter(write_peft(tmp_path / "shapes", bad))
    with pytest.raises(MindcodeError, match="half: model.layers.1.self_attn.q_proj.weight: lora_B missing"):
        read_adapter(write_peft(tmp_path / "half", {Q: {"A": pair()["A"]}}))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_merge_streams_whole_rows_in_any_chunking(dtype):
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(7, 5)).astype(np.float32)
    raw = from_float32(weight, dtype)
    delta = rng.normal(size=(7, 5)).astype(np.float32)
    expected = from_float32(to_float32(raw, dtype).reshape(7, 5) + delta, dtype)
    for size in (1, 3, 11, len(raw)):
        chunks = lambda: (raw[i:i + size] for i in range(0, len(raw), size))  # noqa: E731
        assert b"".join(merged_chunks(chunks, dtype, (7, 5), delta)) == expected
    with pytest.raises(MindcodeError, match="delta of shape \\[5, 7\\]"):
        list(merged_chunks(lambda: iter([raw]), dtype, (7, 5), delta.T))


def test_initial_adapter_starts_at_the_base_model():
    adapter = initial_adapter(PRESETS["tiny"], 4, 8, ["q_proj", "down_proj"], seed=0)
    assert len(adapter.pairs) == 2 * PRESETS["tiny"].num_layers
    assert all(not pair["B"].any() and pair["A"].shape[0] == 4 for pair in adapter.pairs.values())
    again = initial_adapter(PRESETS["tiny"], 4, 8, ["q_proj", "down_proj"], seed=0)
    assert all(np.array_equal(adapter.pairs[w]["A"], again.pairs[w]["A"]) for w in adapter.pairs)
