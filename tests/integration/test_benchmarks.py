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
    report = bench("bench_predict.py", "--backends", "gpu,ascend", "--new_tokens", "4", "--batches", "1")
    row = report["batch_1_tokens_per_s"]
    assert row["gpu"] > 0 and row["ascend"] > 0 and row["transformers_generate"] > 0 and row["gpu_over_generate"] > 0


def test_bench_train_reports_tokens_per_second_and_mfu():
    report = bench("bench_train.py", "--steps", "3", "--warmup", "1", "--backends", "gpu", "--peak_tflops", "1")
    assert report["gpu"]["tokens_per_s"] > 0 and 0 < report["gpu"]["mfu"]
