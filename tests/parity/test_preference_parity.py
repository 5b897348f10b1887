"""DPO and SimPO on both backends from one HF init and one tokenized preference set: ln 2 at step 0, per-step loss
parity, a growing reward margin, accumulation and resume."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.data.build import tokenize_dataset
from mindcode.presets import PRESETS
from mindcode.quickstart.dataset import translation_rows
from mindcode.tokenizer import TINY_TOKENIZER
from mindcode.train.loop import train
from tests.conftest import launch_train, write_hf_checkpoint

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
REWARDS = {"rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy", "logps/chosen", "logps/rejected"}


def toy_pairs(n):
    """Java -> C# translations: chosen is the C# method, rejected the Java source copied unchanged."""
    pairs = []
    for row in translation_rows(n):
        prompt = f"Translate the following Java code to C#.\n\n```java\n{row['java']}\n```"
        pairs.append({"id": row["id"], "prompt": prompt, "chosen": f"```csharp\n{row['cs']}\n```",
                      "rejected": f"```csharp\n{row['java']}\n```"})
    return pairs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    work = tmp_path_factory.mktemp("preference")
    (work / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in toy_pairs(48)))
    summary = tokenize_dataset("dpo", str(work / "pairs.jsonl"), str(TINY_TOKENIZER), 128,
                               output_file=str(work / "dpo.mindrecord"), torch_output=str(work / "npy"),
                               template="raw", progress=False)
    assert summary["pairs"] == 48 and summary["skipped"] == 0
    write_hf_checkpoint(work / "init", PRESETS["tiny"], seed=0)
    return work


def run(work, backend, stage, name, **extra):
    values = {"data.mindrecord": work / "dpo.mindrecord", "data.npy": work / "npy", "training.init": work / "init",
              "training.output_dir": work / name / backend, "schedule.learning_rate": 1e-3, **extra}
    config = load_config(ROOT / f"configs/{backend}/{stage}_tiny_cpu.yaml", [f"{k}={v}" for k, v in values.items()])
    summary = train(config, progress=False)
    return [json.loads(line) for line in open(Path(summary["output_dir"]) / "metrics.jsonl")]


def worst_relative(a, b):
    return max(abs(x["loss"] - y["loss"]) / abs(y["loss"]) for x, y in zip(a, b))


def test_dpo_starts_at_ln2_agrees_across_backends_and_widens_the_margin(inputs):
    metrics = {backend: run(inputs, backend, "dpo", "dpo") for backend in ("gpu", "ascend")}
    for backend, steps in metrics.items():
        assert len(steps) == 10 and REWARDS <= set(steps[0])
        assert abs(steps[0]["loss"] - math.log(2)) < 1e-5, backend  # the policy is the reference at step 0
        assert abs(steps[0]["rewards/margin"]) < 1e-5
        assert steps[-1]["rewards/margin"] > steps[0]["rewards/margin"] + 0.5, backend
        assert steps[-1]["rewards/accuracy"] == 1.0 and steps[-1]["loss"] < 0.5
    worst = worst_relative(metrics["ascend"], metrics["gpu"])
    print(f"\nDPO: worst per-step relative loss difference over 10 steps: {worst:.2e}")
    assert worst <= 1e-4
    for key in ("rewards/margin", "logps/chosen"):
        assert np.allclose([m[key] for m in metrics["ascend"]], [m[key] for m in metrics["gpu"]], rtol=1e-4, atol=1e-5)
    reference = np.load(inputs / "dpo" / "gpu" / "reference_logps.npy")
    assert reference.shape == (48, 2) and (reference < 0).all()


def test_simpo_and_dpo_variants_agree_across_backends(inputs):
    for stage, extra, name in (("simpo", {}, "simpo"),
                               ("dpo", {"preference.label_smoothing": 0.1, "preference.rpo_alpha": 0.5}, "rpo")):
        metrics = {b: run(inputs, b, stage, name, **extra) for b in ("gpu", "ascend")}
        worst = worst_relative(metrics["ascend"], metrics["gpu"])
        print(f"\n{name}: worst per-step relative loss difference over 10 steps: {worst:.2e}")
        assert worst <= 1e-4
        assert metrics["gpu"][-1]["rewards/margin"] > metrics["gpu"][0]["rewards/margin"]
    # With one pair a step, SimPO's loss follows from its logged average log-probabilities (beta 2, gamma 0.5)
    first = run(inputs, "gpu", "simpo", "simpo_check", **{"training.max_steps": 1, "training.batch_size": 1})[0]
    z = 2.0 * (first["logps/chosen"] - first["logps/rejected"]) - 0.5
    assert abs(first["loss"] - math.log1p(math.exp(-z))) < 1e-5


def test_dpo_accumulation_and_resume_reuse_the_reference(inputs):
    full = run(inputs, "gpu", "dpo", "full", **{"training.max_steps": 4})
    micro = run(inputs, "gpu", "dpo", "micro", **{"training.max_steps": 4, "training.gradient_accumulation_steps": 2})
    assert worst_relative(micro, full) <= 1e-5
    out = inputs / "resume" / "gpu"
    run(inputs, "gpu", "dpo", "resume", **{"training.max_steps": 4, "training.save_steps": 2})
    stamp = (out / "reference_logps.npy").stat().st_mtime_ns
    config = load_config(ROOT / "configs/gpu/dpo_tiny_cpu.yaml",
                         [f"{k}={v}" for k, v in {"data.npy": inputs / "npy", "training.init": inputs / "init",
                                                  "training.output_dir": out, "schedule.learning_rate": 1e-3,
                                                  "training.max_steps": 4}.items()])
    train(config, resume=str(out / "checkpoints" / "step_2"), progress=False)
    resumed = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert (out / "reference_logps.npy").stat().st_mtime_ns == stamp  # read back, not recomputed
    assert worst_relative(resumed, full) <= 1e-6


def test_a_stored_reference_leaves_the_init_to_mindformers_load(inputs, monkeypatch):
    """ascend dpo given the reference a first run stored (``preference.reference_logps``): no reference pass, so
    mindcode loads no weights and they come through MindFormers' own load of the init (which reads slices under a
    split layout, see test_mindformers_job.py); the steps are the first run's."""
    import backends.ascend.train as ascend_train

    loads, load_into = [], ascend_train.load_into
    monkeypatch.setattr(ascend_train, "load_into", lambda model, path: loads.append(path) or load_into(model, path))
    first = run(inputs, "ascend", "dpo", "stored", **{"training.max_steps": 3})
    assert len(loads) == 1  # the first run's reference pass, on the init mindcode loaded
    stored = inputs / "stored" / "ascend" / "reference_logps.npy"
    second = run(inputs, "ascend", "dpo", "reused", **{"training.max_steps": 3, "preference.reference_logps": stored})
    assert len(loads) == 1 and not (inputs / "reused" / "ascend" / "reference_logps.npy").exists()
    assert worst_relative(second, first) <= 1e-6


def test_mindformers_row_slicing_gives_each_micro_batch_whole_pairs(inputs):
    """MindSpore's accumulation and pipeline cells feed micro-batch i rows ``[i*n/k, (i+1)*n/k)`` of every input.
    With the rows in ``pair_rows`` order, the ascend DPO cell on each slice (and its slice of the reference rows)
    averages to the loss of the whole batch, and every pair's chosen and rejected row stay together."""
    import mindspore as ms

    from backends.ascend.model import build_model
    from backends.ascend.preference import PreferenceLoss, SequenceLogps
    from mindcode.convert.hf_to_ms import convert_hf_to_ms
    from mindcode.train.preference import as_pairs, pair_rows

    convert_hf_to_ms(str(inputs / "init"), str(inputs / "init.ckpt"), progress=False)
    config = load_config(ROOT / "configs/ascend/dpo_tiny_cpu.yaml")
    model = build_model(PRESETS["tiny"], 128, inputs / "init.ckpt")
    rng = np.random.default_rng(0)
    pairs, k = 4, 2
    ids = rng.integers(7, 1024, size=(2, pairs, 129))
    labels = ids.copy()
    labels[:, :, :64] = -100
    rows_ids, rows_labels = pair_rows(ids[0], ids[1]), pair_rows(labels[0], labels[1])
    reference = rng.normal(-300.0, 5.0, size=(pairs, 2)).astype(np.float32)
    tensor = lambda a: ms.Tensor(a, ms.int32)  # noqa: E731
    whole = float(PreferenceLoss(model, config, pairs)(tensor(rows_ids), tensor(rows_labels),
                                                      ms.Tensor(reference)).asnumpy())
    cell, n = PreferenceLoss(model, config, pairs // k), 2 * pairs // k
    parts = [float(cell(tensor(rows_ids[i * n:(i + 1) * n]), tensor(rows_labels[i * n:(i + 1) * n]),
                        ms.Tensor(reference[i * pairs // k:(i + 1) * pairs // k])).asnumpy()) for i in range(k)]
    assert abs(np.mean(parts) - whole) <= 1e-5 * abs(whole)
    sums, _counts = SequenceLogps(model)(tensor(rows_ids), tensor(rows_labels))
    logps = as_pairs(sums.asnumpy())  # [pairs, 2]: chosen, rejected, as the loss pairs them
    z = config.preference.beta * ((logps[:, 0] - reference[:, 0]) - (logps[:, 1] - reference[:, 1]))
    assert abs(float(np.mean(np.logaddexp(0.0, -z))) - whole) <= 1e-5 * abs(whole)


@pytest.mark.parametrize("backend", ["gpu", "ascend"])
def test_the_reference_pass_is_shared_out_over_data_parallel_ranks(inputs, backend):
    """DPO on 2 data-parallel processes (torchrun / msrun): each computes half of the reference batches and the
    framework's all-reduce joins them; the reference equals one process's and the steps follow it."""
    single = run(inputs, backend, "dpo", "ref1", **{"training.max_steps": 2})
    values = {"data.mindrecord": inputs / "dpo.mindrecord", "data.npy": inputs / "npy", "training.init": inputs / "init",
              "training.output_dir": inputs / "ref2" / backend, "schedule.learning_rate": 1e-3, "training.max_steps": 2}
    launch_train(f"configs/{backend}/dpo_tiny_cpu.yaml", [f"{k}={v}" for k, v in values.items()],
                 inputs / f"ref2_{backend}_logs", cwd=ROOT)
    one = np.load(inputs / "ref1" / backend / "reference_logps.npy")
    two = np.load(inputs / "ref2" / backend / "reference_logps.npy")
    assert one.shape == two.shape == (48, 2) and (one < 0).all()  # every pair filled, by one rank or the other
    reference = np.abs(two - one).max() / np.abs(one).max()
    shared = [json.loads(line) for line in open(inputs / "ref2" / backend / "metrics.jsonl")]
    print(f"\n{backend}: reference {reference:.2e}, loss {worst_relative(shared, single):.2e} (2 processes vs 1)")
    assert reference <= 1e-6
    assert worst_relative(shared, single) <= 1e-5


@pytest.mark.ascend
def test_dpo_under_model_parallel_reads_slices_and_gives_the_stand_alone_steps_on_ascend(inputs):
    """dpo on 2 NPUs with model parallel 2: the reference pass on the sliced reference model equals one device's
    reference, and the steps follow (bf16/fp16 kernels on the NPU)."""
    from backends.ascend.runtime import ascend_device_count

    if ascend_device_count() < 2:
        pytest.skip("needs 2 Ascend NPUs (semi-auto parallel does not run on MindSpore's CPU target)")
    single = run(inputs, "ascend", "dpo", "npu1", **{"training.max_steps": 4})
    values = {"data.mindrecord": inputs / "dpo.mindrecord", "training.init": inputs / "init",
              "training.output_dir": inputs / "npu_mp2" / "ascend", "schedule.learning_rate": 1e-3,
              "training.max_steps": 4, "parallel_config.model_parallel": 2}
    launch_train("configs/ascend/dpo_tiny_cpu.yaml", [f"{k}={v}" for k, v in values.items()], inputs / "npu_mp2_logs",
                 cwd=ROOT)
    one = np.load(inputs / "npu1" / "ascend" / "reference_logps.npy")
    two = np.load(inputs / "npu_mp2" / "ascend" / "reference_logps.npy")
    assert np.abs(two - one).max() / np.abs(one).max() <= 1e-3
    split = [json.loads(line) for line in open(inputs / "npu_mp2" / "ascend" / "metrics.jsonl")]
    assert worst_relative(split, single) <= 1e-3
