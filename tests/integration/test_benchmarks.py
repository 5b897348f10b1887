"""The benchmark scripts run (a smoke run each, on the tiny model), so they cannot rot between GPU sessions; their
numbers are taken with real settings and recorded in docs/benchmarks.md."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bench_predict_runs_next_to_transformers_generate():
    report = bench("bench_predict.py", "--preset", "tiny", "--backends", "gpu,ascend", "--new_tokens", "4",
                   "--batches", "1", "--bandwidth_gbs", "20", "--sampling_tasks", "2", "--n_samples", "3")
    row = report["batch_1_tokens_per_s"]
    assert row["gpu"] > 0 and row["ascend"] > 0 and row["transformers_generate"] > 0 and row["gpu_over_generate"] > 0
    assert 0 < report["batch_1_of_bound"]["gpu"] < 1  # 20 GB/s over 0.9 MB of float32 weights: 22 k tokens/s
    sampled = report["sampling"]
    assert (sampled["tasks"], sampled["n_samples"]) == (2, 3) and sampled["gpu"] > 0 and sampled["ascend"] > 0
    assert sampled["transformers_generate"] > 0


def test_bench_train_reports_full_and_lora_next_to_transformers_trainer():
    """The shipped tiny configs (full fine-tune and LoRA) on one device against transformers' Trainer (PEFT's LoRA)
    on the same init and rows: tokens/s, MFU (attention counted) and the ratio."""
    report = bench("bench_train.py", "--preset", "tiny", "--steps", "3", "--warmup", "1", "--backends", "gpu",
                   "--peak_tflops", "1")
    assert report["seq_length"] == 128 and report["batch_size"] == 4
    for mode in ("full", "lora"):
        entry = report[mode]
        assert entry["gpu"]["tokens_per_s"] > 0 and 0 < entry["gpu"]["mfu"] < 1
        assert entry["hf_trainer"]["tokens_per_s"] > 0 and entry["gpu_over_hf_trainer"] > 0
