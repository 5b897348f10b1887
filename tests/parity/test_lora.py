"""LoRA on both backends (MindFormers' pet adapter, PEFT) from one base and one adapter init: per-step loss parity,
adapter-only training and checkpoints, resume, and the weight tool's merge (= base + scale * B @ A) and export."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.convert import ckpt_io
from mindcode.convert.keymap import hf_to_ms
from mindcode.convert.lora import read_adapter
from mindcode.convert.safetensors_io import iter_tensors
from mindcode.train.loop import train
from tests.conftest import write_training_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """20 LoRA steps on each backend from the same base; returns the work folder."""
    work = write_training_inputs(tmp_path_factory.mktemp("lora"))
    for backend in ("gpu", "ascend"):
        run(work, backend, "parity", **{"training.max_steps": 20})
    return work


def run(work, backend, name, resume=None, **extra):
    values = {"data.mindrecord": work / "train.mindrecord", "data.npy": work / "npy", "training.init": work / "init",
              "training.output_dir": work / name / backend, **extra}
    config = load_config(ROOT / f"configs/{backend}/lora_tiny_cpu.yaml", [f"{k}={v}" for k, v in values.items()])
    train(config, resume=resume, progress=False)
    return [json.loads(line)["loss"] for line in open(work / name / backend / "metrics.jsonl")]


def losses(work, name, backend):
    return [json.loads(line)["loss"] for line in open(work / name / backend / "metrics.jsonl")]


def convert(*args):
    done = subprocess.run([sys.executable, "-m", "mindcode", "convert-weight", *map(str, args), "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def hf_tensors(directory):
    return {info.name: array for info, array in iter_tensors(Path(directory))}


def test_lora_loss_parity_and_only_adapters_train(runs):
    gpu, ascend = losses(runs, "parity", "gpu"), losses(runs, "parity", "ascend")
    worst = max(abs(a - g) / abs(g) for a, g in zip(ascend, gpu))
    print(f"\nLoRA: worst per-step relative loss difference over 20 steps: {worst:.2e}")
    assert len(gpu) == 20 and worst <= 1e-4
    assert sum(gpu[-5:]) / 5 < sum(gpu[:5]) / 5  # it learns, through the adapters alone
    # checkpoints hold the adapters and their AdamW state, never the frozen base
    step = runs / "parity" / "ascend" / "checkpoints" / "step_20" / "train_state.ckpt"
    names = [t.name for t in ckpt_io.index_ckpt(step)]
    assert not [n for n in names if n.endswith(".weight") or n.endswith("embedding_weight")]
    assert sum(n.endswith("mindpet_delta_lora_a") and not n.startswith("adam") for n in names) == 8  # 2 layers x 4
    import torch.distributed.checkpoint as dcp

    saved = dcp.FileSystemReader(str(runs / "parity" / "gpu" / "checkpoints" / "step_20")).read_metadata()
    weights = [k for k in saved.state_dict_metadata if k.startswith("model.")]
    assert weights and all(".lora_" in k for k in weights)
    assert any(k.startswith("optimizer.state.") and ".lora_" in k for k in saved.state_dict_metadata)
    # both exported adapters say the same rank, alpha and targets, and hold nearly the same numbers
    peft, mf = read_adapter(runs / "parity" / "gpu" / "final"), read_adapter(runs / "parity" / "ascend" / "final" / "adapter.ckpt")
    assert (peft.rank, peft.alpha, peft.target_modules) == (mf.rank, mf.alpha, mf.target_modules) == \
        (8, 16.0, ["k_proj", "o_proj", "q_proj", "v_proj"])
    worst = max(np.abs(peft.delta(w) - mf.delta(w)).max() / np.abs(peft.delta(w)).max() for w in peft.pairs)
    assert worst < 1e-3


def test_merge_equals_base_plus_scaled_product_from_either_adapter(runs):
    base = hf_tensors(runs / "init")
    for backend, adapter_path in (("gpu", runs / "parity" / "gpu" / "final"),
                                  ("ascend", runs / "parity" / "ascend" / "final" / "adapter.ckpt")):
        adapter = read_adapter(adapter_path)
        out = runs / f"merged_{backend}"
        summary = convert("merge-lora", "--input_path", runs / "init", "--adapter", adapter_path,
                          "--output_path", out, "--verify")
        assert summary["merged_lora"]["weights"] == 8 and summary["merged_lora"]["scale"] == 2.0
        merged = hf_tensors(out)
        assert set(merged) == set(base)
        for name, value in merged.items():
            if name in adapter.pairs:
                a, b = adapter.pairs[name]["A"], adapter.pairs[name]["B"]
                np.testing.assert_allclose(value, base[name] + 16 / 8 * b @ a, rtol=0, atol=1e-6)
                assert np.abs(value - base[name]).max() > 1e-4  # the adapter did move the weight
            else:
                assert np.array_equal(value, base[name])
    # an adapter for a layer the base does not have is refused, and nothing is written
    from mindcode.convert.lora import Adapter
    from mindcode.convert.ms_to_hf import convert_ms_to_hf

    stray = Adapter(2, 4.0, {"model.layers.5.self_attn.q_proj.weight": {"A": np.zeros((2, 64), np.float32),
                                                                         "B": np.zeros((64, 2), np.float32)}})
    with pytest.raises(Exception, match="adapts 'model.layers.5.self_attn.q_proj.weight', which the base"):
        convert_ms_to_hf(runs / "init", runs / "stray", adapter=stray, progress=False)
    assert not (runs / "stray").exists()
    # the same merge written straight to a MindSpore checkpoint (MindFormers names)
    ckpt = runs / "merged.ckpt"
    convert("merge-lora", "--input_path", runs / "init", "--adapter", runs / "parity" / "gpu" / "final",
            "--output_path", ckpt)
    merged_hf = hf_tensors(runs / "merged_gpu")
    for tensor in ckpt_io.index_ckpt(ckpt):
        hf_name = next(n for n in merged_hf if hf_to_ms(n) == tensor.name)
        assert np.array_equal(ckpt_io.load_array(ckpt, tensor), merged_hf[hf_name])


def test_mindformers_adapter_exports_to_peft_and_matches_the_merged_model(runs):
    import torch
    import transformers
    from peft import PeftModel

    peft_dir = runs / "exported"
    summary = convert("export-lora", "--input_path", runs / "parity" / "ascend" / "final" / "adapter.ckpt",
                      "--output_path", peft_dir)
    assert summary["rank"] == 8 and (peft_dir / "adapter_config.json").is_file()
    convert("merge-lora", "--input_path", runs / "init", "--adapter", runs / "parity" / "ascend" / "final" / "adapter.ckpt",
            "--output_path", runs / "merged_mf")
    ids = torch.tensor(np.random.default_rng(0).integers(1, 1024, (2, 64)))
    with torch.no_grad():
        base = transformers.LlamaForCausalLM.from_pretrained(str(runs / "init"), dtype=torch.float32)
        adapted = PeftModel.from_pretrained(base, str(peft_dir)).eval()(input_ids=ids).logits
        merged = transformers.LlamaForCausalLM.from_pretrained(str(runs / "merged_mf"), dtype=torch.float32)
        reference = merged.eval()(input_ids=ids).logits
    assert float((adapted - reference).abs().max() / reference.abs().max()) < 1e-5


def test_lora_resume_reproduces_the_run_on_both_backends(runs):
    for backend in ("gpu", "ascend"):
        full = run(runs, backend, "full6", **{"training.max_steps": 6})
        run(runs, backend, "resume6", **{"training.max_steps": 6, "training.save_steps": 3})
        resumed = run(runs, backend, "resume6", resume=str(runs / "resume6" / backend / "checkpoints" / "step_3"),
                      **{"training.max_steps": 6})
        assert max(abs(a - b) / b for a, b in zip(resumed, full)) <= 1e-6, backend


def test_qlora_needs_cuda_and_says_so_on_cpu(runs):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on CUDA the QLoRA run itself is tested (test_qlora_trains_adapters_on_cuda)")
    with pytest.raises(Exception, match=r"torch\.load_in_4bit \(QLoRA\) needs a CUDA device"):
        run(runs, "gpu", "qlora_cpu", **{"torch.load_in_4bit": True, "training.max_steps": 1})


@pytest.mark.cuda
def test_qlora_trains_adapters_on_cuda(runs):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("bitsandbytes")
    steps = run(runs, "gpu", "qlora", **{"torch.load_in_4bit": True, "torch.precision": "bf16",
                                          "training.max_steps": 10})
    full = losses(runs, "parity", "gpu")[:10]
    assert abs(steps[0] - full[0]) / full[0] < 0.05  # NF4 base weights: close to the float32 run, not equal
    import torch.distributed.checkpoint as dcp

    saved = dcp.FileSystemReader(str(runs / "qlora" / "gpu" / "checkpoints" / "step_10")).read_metadata()
    assert all(".lora_" in k for k in saved.state_dict_metadata if k.startswith("model."))
