"""The promise: a checkpoint converted by mindcode computes the same logits and loss in MindFormers (MindSpore)
as in transformers (PyTorch). Both real frameworks, float32, on CPU."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from backends import get_backend
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from tests.conftest import tiny_config
from tests.parity.tolerances import TOLERANCES, relative_error

pytestmark = pytest.mark.slow

BATCH, SEQ = 2, 24
CASES = {
    "mha-theta1e4-vocab997": tiny_config(num_kv_heads=None, rope_theta=1e4, vocab_size=997),
    "gqa4:2-theta1e6-vocab1003": tiny_config(num_heads=4, num_kv_heads=2, rope_theta=1e6, vocab_size=1003),
    "gqa8:2-3layers": tiny_config(hidden_size=64, num_heads=8, num_kv_heads=2, num_layers=3, vocab_size=1024),
    # DeepSeek-Coder's linear RoPE scaling (HF rope_scaling linear 4.0 = MindFormers extend_method linear)
    "linear-rope-x4": tiny_config(rope_theta=1e4, rope_scaling_factor=4.0),
    # SmolLM2's and small Qwen2.5-Coder's tied embeddings: the head is the embedding matrix
    "tied-embeddings": tiny_config(tie_word_embeddings=True),
}


def batch(config, seed=0):
    """Ids avoid 0: MindFormers treats the pad id as padding and masks it out of attention (DESIGN.md)."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, config.vocab_size, size=(BATCH, SEQ + 1), dtype=np.int32)
    labels = input_ids.copy()
    labels[:, :5] = -100  # a masked prompt
    labels[1, -3:] = -100  # and a shorter answer in the second row
    return input_ids, labels


@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_and_loss_match(name, hf_checkpoint, tmp_path):
    config = CASES[name]
    hf_dir = hf_checkpoint(config, seed=len(name))
    ckpt = tmp_path / "model.ckpt"
    convert_hf_to_ms(hf_dir, ckpt, progress=False)

    gpu, ascend = get_backend("gpu"), get_backend("ascend")
    torch_model = gpu.build_model(config, SEQ, hf_dir)
    ms_model = ascend.build_model(config, SEQ, ckpt)
    input_ids, labels = batch(config)
    tol = TOLERANCES[("cpu", "float32")]

    expected = gpu.forward(torch_model, input_ids[:, :SEQ])
    actual = ascend.forward(ms_model, input_ids[:, :SEQ])
    assert actual.shape == expected.shape == (BATCH, SEQ, config.vocab_size)
    err = relative_error(actual, expected)
    print(f"\n{name}: logits relative error {err:.2e}")
    assert err <= tol["logits_rel"]
    assert np.array_equal(actual.argmax(-1), expected.argmax(-1))

    loss_gpu, loss_ascend = gpu.loss(torch_model, input_ids, labels), ascend.loss(ms_model, input_ids, labels)
    print(f"{name}: loss {loss_gpu:.7f} (gpu) vs {loss_ascend:.7f} (ascend)")
    assert loss_ascend == pytest.approx(loss_gpu, rel=tol["loss_rel"])


def test_a_wrong_mapping_is_caught(hf_checkpoint, tmp_path):
    """The parity check can fail: swapping the two RMSNorm scales of one layer moves the logits far off."""
    config = CASES["gqa4:2-theta1e6-vocab1003"]
    hf_dir = hf_checkpoint(config, seed=1)
    ckpt = tmp_path / "model.ckpt"
    convert_hf_to_ms(hf_dir, ckpt, progress=False)
    ascend, gpu = get_backend("ascend"), get_backend("gpu")
    weights = ascend.load_checkpoint(ckpt)
    a, b = "model.layers.1.attention_norm.weight", "model.layers.1.ffn_norm.weight"
    weights[a], weights[b] = weights[b], weights[a]
    ascend.save_checkpoint(((k, v, "float32") for k, v in weights.items()), ckpt)

    input_ids, _ = batch(config)
    expected = gpu.forward(gpu.build_model(config, SEQ, hf_dir), input_ids[:, :SEQ])
    actual = ascend.forward(ascend.build_model(config, SEQ, ckpt), input_ids[:, :SEQ])
    assert relative_error(actual, expected) > 1e-3


def test_tool_entry_point_converts_for_mindformers(hf_checkpoint, tmp_path):
    """`python tools/convert_weight/convert_weight.py` (MindFormers' flags) writes what MindFormers loads."""
    config = CASES["gqa4:2-theta1e6-vocab1003"]
    hf_dir = hf_checkpoint(config, seed=3)
    ckpt = tmp_path / "tool.ckpt"
    cmd = [sys.executable, "tools/convert_weight/convert_weight.py", "--model", "llama",
           "--input_path", str(hf_dir), "--output_path", str(ckpt), "--json"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    gpu, ascend = get_backend("gpu"), get_backend("ascend")
    input_ids, _ = batch(config, seed=7)
    expected = gpu.forward(gpu.build_model(config, SEQ, hf_dir), input_ids[:, :SEQ])
    actual = ascend.forward(ascend.build_model(config, SEQ, ckpt), input_ids[:, :SEQ])
    assert relative_error(actual, expected) <= TOLERANCES[("cpu", "float32")]["logits_rel"]


def test_qkv_concat_layout_runs_in_mindformers_and_round_trips(hf_checkpoint, tmp_path):
    """--qkv_concat: MindFormers' LlamaForCausalLM(qkv_concat=True) on the fused checkpoint gives HF's logits, and
    converting it back to HF restores every tensor bit for bit."""
    import mindformers

    from backends.ascend.checkpoint import load_into
    from backends.ascend.model import mindformers_config
    from mindcode.convert.ms_to_hf import convert_ms_to_hf
    from mindcode.convert.safetensors_io import iter_tensors

    config = CASES["gqa8:2-3layers"]
    hf_dir = hf_checkpoint(config, seed=5)
    ckpt = tmp_path / "fused.ckpt"
    summary = convert_hf_to_ms(hf_dir, ckpt, progress=False, qkv_concat=True, verify=True)
    assert summary["tensors"] == 3 + 6 * config.num_layers  # w_qkv, wo, w_gate_hidden, w2 and two norms a layer
    fused_config = mindformers_config(config, SEQ)
    fused_config.qkv_concat = True
    ms_model = mindformers.LlamaForCausalLM(config=fused_config)
    load_into(ms_model, ckpt)
    gpu, ascend = get_backend("gpu"), get_backend("ascend")
    input_ids, _ = batch(config)
    expected = gpu.forward(gpu.build_model(config, SEQ, hf_dir), input_ids[:, :SEQ])
    err = relative_error(ascend.forward(ms_model, input_ids[:, :SEQ]), expected)
    print(f"\nqkv_concat: logits relative error {err:.2e}")
    assert err <= TOLERANCES[("cpu", "float32")]["logits_rel"]

    convert_ms_to_hf(ckpt, tmp_path / "back", config=str(hf_dir / "config.json"), progress=False)
    before = {info.name: array for info, array in iter_tensors(hf_dir)}
    after = {info.name: array for info, array in iter_tensors(tmp_path / "back")}
    assert set(before) == set(after) and all(np.array_equal(before[k], after[k]) for k in before)


def test_linear_rope_scaling_changes_the_logits_on_both_backends(hf_checkpoint, tmp_path):
    """The scaled model is not the unscaled one with a label: the same weights without the factor give other logits
    on each backend (so the parity case above checks the scaling itself)."""
    scaled = CASES["linear-rope-x4"]
    hf_dir = hf_checkpoint(scaled, seed=3)
    ckpt = tmp_path / "model.ckpt"
    convert_hf_to_ms(hf_dir, ckpt, progress=False)
    plain = scaled.replace(rope_scaling_factor=None)
    plain_dir = tmp_path / "plain"  # the gpu backend reads the shape from the directory's config.json
    shutil.copytree(hf_dir, plain_dir)
    (plain_dir / "config.json").write_text(json.dumps({**json.loads((hf_dir / "config.json").read_text()),
                                                        "rope_scaling": None}))
    input_ids = batch(scaled)[0][:, :SEQ]
    for name, natives in (("gpu", (hf_dir, plain_dir)), ("ascend", (ckpt, ckpt))):
        backend = get_backend(name)
        with_factor = backend.forward(backend.build_model(scaled, SEQ, natives[0]), input_ids)
        without = backend.forward(backend.build_model(plain, SEQ, natives[1]), input_ids)
        assert relative_error(with_factor, without) > 1e-3, name
