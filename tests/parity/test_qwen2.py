"""Qwen2-shaped models (model_type qwen2: biased q/k/v projections, tied embeddings at small sizes, as Qwen2.5-Coder):
transformers' Qwen2ForCausalLM on the gpu backend, MindFormers' Llama with ``qkv_has_bias`` on the ascend backend."""

import json
from pathlib import Path

import numpy as np
import pytest

from backends import get_backend
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from mindcode.convert.ms_to_hf import convert_ms_to_hf
from mindcode.convert import ckpt_io
from mindcode.convert.safetensors_io import iter_tensors
from mindcode.predict.decode import GenerationConfig
from mindcode.predict.run import Generator
from mindcode.presets import PRESETS
from tests.conftest import write_hf_checkpoint
from tests.parity.tolerances import TOLERANCES, relative_error

pytestmark = pytest.mark.slow
QWEN2 = PRESETS["tiny"].replace(qkv_bias=True, tie_word_embeddings=True, rope_theta=1e6)
SEQ = 32


def prompts(count=4, seed=2):
    rng = np.random.default_rng(seed)
    return [[1, *rng.integers(7, QWEN2.vocab_size, size=8 + i).tolist()] for i in range(count)]


def test_a_qwen2_checkpoint_converts_both_ways_and_computes_the_same_logits(tmp_path):
    hf = write_hf_checkpoint(tmp_path / "qwen2", QWEN2, seed=3)
    written = json.loads((hf / "config.json").read_text())
    assert written["model_type"] == "qwen2" and written["architectures"] == ["Qwen2ForCausalLM"]
    convert_hf_to_ms(hf, tmp_path / "model.ckpt", progress=False, verify=True)
    names = {t.name for t in ckpt_io.index_ckpt(tmp_path / "model.ckpt")}
    assert {f"model.layers.0.attention.{w}.bias" for w in ("wq", "wk", "wv")} <= names
    assert not any("wo.bias" in n for n in names)
    convert_ms_to_hf(tmp_path / "model.ckpt", tmp_path / "back", str(hf / "config.json"), progress=False)
    before = {info.name: array for info, array in iter_tensors(hf)}
    after = {info.name: array for info, array in iter_tensors(tmp_path / "back")}
    assert set(before) == set(after) and all(np.array_equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "back" / "config.json").read_text())["model_type"] == "qwen2"

    gpu, ascend = get_backend("gpu"), get_backend("ascend")
    ids = np.random.default_rng(1).integers(7, QWEN2.vocab_size, size=(4, SEQ)).astype(np.int32)
    expected = gpu.forward(gpu.build_model(QWEN2, SEQ, hf), ids)
    actual = ascend.forward(ascend.build_model(QWEN2, SEQ, tmp_path / "model.ckpt"), ids)
    err = relative_error(actual, expected)
    print(f"\nqwen2: logits relative error {err:.2e}")
    assert err <= TOLERANCES[("cpu", "float32")]["logits_rel"]
    # negative control: the same weights without their biases compute other logits on both backends
    unbiased = ascend.forward(ascend.build_model(QWEN2.replace(qkv_bias=False), SEQ, _without_bias(tmp_path)), ids)
    assert relative_error(unbiased, expected) > 1e-3


def _without_bias(tmp_path: Path) -> Path:
    source = tmp_path / "model.ckpt"
    weights = {t.name: ckpt_io.load_array(source, t) for t in ckpt_io.index_ckpt(source) if not t.name.endswith(".bias")}
    out = tmp_path / "unbiased.ckpt"
    get_backend("ascend").save_checkpoint(((k, v, "float32") for k, v in weights.items()), out)
    return out


def test_qwen2_greedy_tokens_equal_transformers_and_both_backends(tmp_path):
    import torch
    import transformers

    hf = write_hf_checkpoint(tmp_path / "qwen2", QWEN2, seed=4)
    model = transformers.Qwen2ForCausalLM.from_pretrained(hf, dtype=torch.float32)
    expected = []
    for prompt in prompts():
        ids = torch.tensor([prompt])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False,
                             eos_token_id=None, pad_token_id=0, suppress_tokens=[0])
        expected.append([out[0, len(prompt):].tolist()])
    config = GenerationConfig(max_new_tokens=16, eos_token_id=-1)
    for backend in ("gpu", "ascend"):
        tokens = Generator(backend, str(hf), None, max_length=64, max_rows=4).run(prompts(), config)
        assert tokens == expected, backend


def test_qwen2_trains_alike_on_both_backends(tmp_path):
    """The tiny twins with a Qwen2 init: the biases and tie come from its config.json; 6 steps, losses and the
    exported biases agree."""
    from mindcode.config import load_config
    from mindcode.train.loop import train
    from tests.conftest import write_training_inputs

    root = Path(__file__).resolve().parents[2]
    work = write_training_inputs(tmp_path)
    write_hf_checkpoint(work / "qwen2", QWEN2, seed=5)
    losses = {}
    for backend in ("gpu", "ascend"):
        config = load_config(root / f"configs/{backend}/tiny_cpu.yaml", [
            f"data.mindrecord={work / 'train.mindrecord'}", f"data.npy={work / 'npy'}",
            f"training.init={work / 'qwen2'}", f"training.output_dir={work / backend}", "training.max_steps=6"])
        assert config.model.shape().qkv_bias
        train(config, progress=False)
        losses[backend] = [json.loads(line)["loss"] for line in (work / backend / "metrics.jsonl").read_text().splitlines()]
    worst = max(abs(a - g) / g for a, g in zip(losses["ascend"], losses["gpu"]))
    print(f"\nqwen2: worst per-step relative loss difference over 6 steps: {worst:.2e}")
    assert len(losses["gpu"]) == 6 and worst <= TOLERANCES[("cpu", "float32")]["loss_rel"]
    gpu = {info.name: array for info, array in iter_tensors(work / "gpu" / "final")}
    convert_ms_to_hf(work / "ascend" / "final" / "model.ckpt", work / "ascend_hf", str(work / "qwen2" / "config.json"),
                     progress=False)
    back = {info.name: array for info, array in iter_tensors(work / "ascend_hf")}
    assert set(back) == set(gpu) and "model.layers.1.self_attn.v_proj.bias" in gpu
    initial = {info.name: array for info, array in iter_tensors(work / "qwen2")}
    bias = "model.layers.0.self_attn.q_proj.bias"
    assert not np.array_equal(gpu[bias], initial[bias])  # the biases train
    assert max(relative_error(back[k], gpu[k]) for k in gpu) <= 1e-4


def test_a_pad_id_other_than_0_lets_id_0_be_text_on_both_backends(tmp_path):
    """In Qwen2.5's and DeepSeek-Coder's vocabularies id 0 is "!": with the config's pad id (MindFormers masks its
    pad in attention), prompts holding id 0 decode alike on both backends; with the default pad 0 the ascend
    backend masks them and its tokens part from the gpu's (the negative control)."""
    hf = write_hf_checkpoint(tmp_path / "qwen2", QWEN2, seed=7)
    text = (Path(__file__).resolve().parents[2] / "configs/gpu/tiny_cpu.yaml").read_text()
    (tmp_path / "pad5.yaml").write_text(text.replace("    rms_norm_eps: 1.0e-5\n",
                                                     "    rms_norm_eps: 1.0e-5\n    pad_token_id: 5\n"))
    rng = np.random.default_rng(3)
    with_zeros = [[1, *[int(t) if t % 3 else 0 for t in rng.integers(7, QWEN2.vocab_size, size=10 + i)]]
                  for i in range(4)]
    assert all(0 in p for p in with_zeros)
    config = GenerationConfig(max_new_tokens=12, eos_token_id=-1, suppress_tokens=[5])
    tokens = {(b, pad): Generator(b, str(hf), None, config=cfg, max_length=64, max_rows=4).run(with_zeros, config)
              for b in ("gpu", "ascend") for pad, cfg in ((5, str(tmp_path / "pad5.yaml")), (0, None))}
    assert tokens[("gpu", 5)] == tokens[("ascend", 5)] == tokens[("gpu", 0)]
    assert tokens[("ascend", 0)] != tokens[("gpu", 0)]
