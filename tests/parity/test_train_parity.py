"""Training on both backends from one HF init and one tokenized dataset: step-for-step loss parity, falling loss,
and resume (after a clean stop and after SIGKILL) that reproduces the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.train.loop import train
from tests.conftest import write_training_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("train"))


def overrides(work, backend, name, **extra):
    values = {"data.mindrecord": work / "train.mindrecord", "data.npy": work / "npy", "training.init": work / "init",
              "training.output_dir": work / name / backend, **extra}
    return [f"{k}={v}" for k, v in values.items()]


def losses(path):
    return [json.loads(line)["loss"] for line in open(Path(path) / "metrics.jsonl")]


def test_loss_parity_over_20_steps(run_inputs):
    result = {}
    for backend in ("gpu", "ascend"):
        config = load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml", overrides(run_inputs, backend, "parity"))
        summary = train(config, progress=False)
        result[backend] = losses(summary["output_dir"])
        metrics = [json.loads(line) for line in open(Path(summary["output_dir"]) / "metrics.jsonl")]
        assert set(metrics[0]) == {"step", "loss", "lr", "grad_norm", "tokens_per_s", "step_time_s", "peak_rss_mb"}
    # the ascend run went through MindFormers' Trainer with this MindFormers-format config (read back here)
    from mindformers import MindFormerConfig

    ran = MindFormerConfig(str(run_inputs / "parity" / "ascend" / "mindformers.yaml"))
    assert ran.trainer.type == "CausalLanguageModelingTrainer" and ran.runner_wrapper.type == "CpuSafeTrainOneStepCell"
    assert (ran.lr_schedule.type, ran.lr_schedule.total_steps, ran.optimizer.type) == ("CosineWithWarmUpLR", 20, "AdamW")
    assert ran.model.model_config.hidden_size == 64 and ran.runner_wrapper.max_grad_norm == 1.0
    gpu, ascend = result["gpu"], result["ascend"]
    assert len(gpu) == len(ascend) == 20
    worst = max(abs(a - g) / abs(g) for a, g in zip(ascend, gpu))
    print(f"\nworst per-step relative loss difference over 20 steps: {worst:.2e}")
    assert worst <= 1e-4
    assert sum(gpu[-5:]) / 5 < sum(gpu[:5]) / 5 - 1.0  # it learns


def test_gradient_accumulation_equals_the_full_batch_on_both_backends(run_inputs):
    """4 rows as 2 micro-batches of 2 give the full batch's steps (the loss is the token-weighted mean)."""
    result = {}
    for backend, micro in (("gpu", 1), ("gpu", 2), ("ascend", 2)):
        extra = {"training.gradient_accumulation_steps": micro, "training.max_steps": 8}
        summary = train(load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml",
                                    overrides(run_inputs, backend, f"accumulate{micro}", **extra)), progress=False)
        result[(backend, micro)] = losses(summary["output_dir"])
    full = result[("gpu", 1)]
    for key in (("gpu", 2), ("ascend", 2)):
        worst = max(abs(a - g) / abs(g) for a, g in zip(result[key], full))
        assert worst <= 1e-5, f"{key}: {worst:.2e}"


def test_data_parallel_under_torchrun_equals_one_worker(run_inputs):
    """2 torchrun workers (gloo), started by `mindcode launch`, take the single worker's steps."""
    import socket

    extra = {"training.max_steps": 8}
    single = train(load_config(ROOT / "configs/gpu/tiny_cpu.yaml", overrides(run_inputs, "gpu", "dp1", **extra)),
                   progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run([sys.executable, "-m", "mindcode", "launch", "--nproc_per_node", "2", "--master_port",
                             str(port), "--log_dir", str(run_inputs / "dp2_logs"), "--cluster_time_out", "300", "--",
                             "train", "--config", "configs/gpu/tiny_cpu.yaml",
                             *overrides(run_inputs, "gpu", "dp2", **extra)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    worst = max(abs(a - b) / abs(b) for a, b in zip(losses(run_inputs / "dp2" / "gpu"), losses(single["output_dir"])))
    assert len(losses(run_inputs / "dp2" / "gpu")) == 8 and worst <= 1e-5, f"{worst:.2e}"


@pytest.mark.parametrize("backend", ["gpu", "ascend"])
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(run_inputs, backend):
    extra = {"training.max_steps": 60, "training.save_steps": 10}
    config_path = ROOT / f"configs/{backend}/tiny_cpu.yaml"
    full = train(load_config(config_path, overrides(run_inputs, backend, "full", **extra)), progress=False)

    args = overrides(run_inputs, backend, "killed", **extra)
    out = run_inputs / "killed" / backend
    proc = subprocess.Popen([sys.executable, "-m", "mindcode", "train", "--config", str(config_path), *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        done = (out / "metrics.jsonl").read_text().count("\n") if (out / "metrics.jsonl").exists() else 0
        if done >= 23:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert (out / "checkpoints" / "step_20").is_dir()

    resumed = train(load_config(config_path, args), resume=True, progress=False)
    assert resumed["resumed_from"] >= 20
    expected, got = losses(full["output_dir"]), losses(out)
    assert len(got) == 60
    worst = max(abs(a - b) / abs(b) for a, b in zip(got, expected))
    assert worst <= 1e-6, f"resumed run drifts from the uninterrupted one by {worst:.2e}"


@pytest.mark.parametrize("backend", ["gpu", "ascend"])
def test_nan_loss_stops_with_the_step_or_is_skipped(run_inputs, backend, tmp_path):
    from safetensors.numpy import load_file, save_file

    poisoned = tmp_path / "init"
    poisoned.mkdir()
    for f in (run_inputs / "init").iterdir():
        (poisoned / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(poisoned / "model.safetensors"))
    weights["model.norm.weight"][3] = float("nan")
    save_file(weights, str(poisoned / "model.safetensors"), metadata={"format": "pt"})
    extra = {"training.init": poisoned, "training.max_steps": 3}
    config = load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml", overrides(run_inputs, backend, "nan", **extra))
    with pytest.raises(Exception, match=r"step 1: loss is nan \(no update applied\)"):
        train(config, progress=False)
    config.training.on_nan = "skip"
    assert train(config, progress=False)["skipped_steps"] == 3


def test_data_parallel_under_msrun_equals_one_worker(run_inputs):
    """2 msrun workers (MindSpore data parallel on CPU, launched by scripts/msrun_launcher.sh) take one worker's steps."""
    import socket

    extra = {"training.max_steps": 6}
    single = train(load_config(ROOT / "configs/ascend/tiny_cpu.yaml", overrides(run_inputs, "ascend", "msdp1", **extra)),
                   progress=False)
    args = " ".join(overrides(run_inputs, "ascend", "msdp2", **extra))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", "scripts/msrun_launcher.sh",
                             f"mindcode train --config configs/ascend/tiny_cpu.yaml {args}", "2", str(port),
                             str(run_inputs / "msdp2_logs"), "True", "300"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    logs = "".join(p.read_text() for p in (run_inputs / "msdp2_logs").glob("worker_*.log"))
    assert result.returncode == 0, logs[-3000:]
    got = losses(run_inputs / "msdp2" / "ascend")
    worst = max(abs(a - b) / abs(b) for a, b in zip(got, losses(single["output_dir"])))
    assert len(got) == 6 and worst <= 1e-5, f"{worst:.2e}"
    # the HF init was converted once for the node, not once per rank
    assert sorted(p.name for p in (run_inputs / "msdp2" / "ascend" / "init").glob("*.ckpt")) == ["model.ckpt"]


def test_torch_compile_compiles_each_decoder_layer_and_changes_no_number(run_inputs):
    """`torch.compile: true` on gpu compiles every decoder layer on its own (one graph for all of them; FSDP2's units
    and pipeline stages keep working), and the steps equal eager mode's."""
    from backends.gpu.parallel import decoder_layers
    from backends.gpu.train import Trainer

    runs = {}
    for compiled in (False, True):
        name = f"compile_{compiled}"
        config = load_config(ROOT / "configs/gpu/tiny_cpu.yaml",
                             overrides(run_inputs, "gpu", name, **{"training.max_steps": 4, "torch.compile": compiled}))
        train(config, progress=False)
        runs[compiled] = losses(run_inputs / name / "gpu")
    assert max(abs(a - b) / abs(b) for a, b in zip(runs[True], runs[False])) <= 1e-5
    trainer = Trainer(load_config(ROOT / "configs/gpu/tiny_cpu.yaml",
                                  overrides(run_inputs, "gpu", "compile_units", **{"torch.compile": True})))
    layers = list(decoder_layers(trainer.model))
    assert layers and all(layer._compiled_call_impl is not None for layer in layers)
    assert trainer.model._compiled_call_impl is None  # the layers, not the whole model


def test_selective_checkpointing_recomputes_every_nth_layer_and_changes_no_number(run_inputs):
    """`torch.checkpoint_every: 2` with gradient checkpointing on 3 decoder layers: layers 0 and 2 run their forward
    again in the backward (recomputed), layer 1 keeps its activations; the steps equal no checkpointing and full
    checkpointing, and `mindcode plan` counts the one kept layer in full."""
    from backends.gpu.parallel import decoder_layers
    from backends.gpu.train import Trainer
    from mindcode.plan.devices import get_device
    from mindcode.plan.memory import plan

    shape = {"model.model_config.num_layers": 3, "training.init": "''", "training.max_steps": 3}
    runs = {}
    for name, extra in {"none": {}, "every1": {"torch.gradient_checkpointing": True},
                        "every2": {"torch.gradient_checkpointing": True, "torch.checkpoint_every": 2}}.items():
        config = load_config(ROOT / "configs/gpu/tiny_cpu.yaml", overrides(run_inputs, "gpu", f"sac_{name}",
                                                                           **shape, **extra))
        train(config, progress=False)
        runs[name] = losses(run_inputs / f"sac_{name}" / "gpu")
        if name == "every2":
            trainer = Trainer(config)
            calls = [0, 0, 0]
            for i, layer in enumerate(decoder_layers(trainer.model)):  # counted in forward itself: module hooks
                layer.mlp.forward = counted(layer.mlp.forward, calls, i)  # do not fire while checkpoint recomputes
            trainer.step(*trainer.batches(np.arange(config.training.batch_size)))
            assert calls[1] == 1 and calls[0] > 1 and calls[2] > 1, calls  # layers 0 and 2 recomputed
            device = get_device("cpu", "gpu")
            terms = {n: plan(load_config(ROOT / "configs/gpu/tiny_cpu.yaml", overrides(run_inputs, "gpu", n, **shape,
                                                                                        **e)), device)
                     ["rank_shapes"][0]["terms"]["activations"] for n, e in
                     (("full", {"torch.gradient_checkpointing": True}), ("sac", extra), ("none", {}))}
            assert terms["full"] < terms["sac"] < terms["none"]
    for name in ("every1", "every2"):
        assert max(abs(a - b) / abs(b) for a, b in zip(runs[name], runs["none"])) <= 1e-6, name


def counted(forward, calls, index):
    def wrapper(*args, **kwargs):
        calls[index] += 1
        return forward(*args, **kwargs)
    return wrapper
