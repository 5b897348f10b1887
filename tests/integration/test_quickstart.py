"""The main job end to end: `mindcode quickstart` on both backends, its report checked in a real headless browser."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("no Chromium: `make install` installs Debian's chromium for this test")
    pytest.skip("no Chromium on this machine (make install provides it)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "run"
    result = subprocess.run([sys.executable, "-m", "mindcode", "quickstart", "--output_dir", str(out), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout), result.stderr


def test_both_backends_train_and_agree(run_dir):
    out, summary, stderr = run_dir
    # a quiet terminal: mindcode's step headers, no framework warnings (those are in RUN_DIR/logs/)
    assert not [line for line in stderr.splitlines() if "WARNING" in line or "CRITICAL" in line], stderr
    assert stderr.count("== [") == 10 and (out / "logs" / "frameworks.log").stat().st_size > 0
    assert summary["backends"] == ["ascend", "gpu"]
    parity = json.loads((out / "10_parity" / "result.json").read_text())
    assert parity["loss_max_rel_diff"] <= 1e-4 and parity["logits_rel_error_same_weights"] <= 1e-5
    for folder in ("05_train_gpu", "06_train_ascend"):
        losses = [json.loads(line)["loss"] for line in open(out / folder / "metrics.jsonl")]
        assert losses[-1] < losses[0] - 2.0
    evaluation = json.loads((out / "09_evaluate" / "result.json").read_text())
    assert evaluation["gpu"]["humaneval_tasks"] == evaluation["ascend"]["humaneval_tasks"] > 0
    assert evaluation["gpu"]["codexglue_bleu"] > 1.0  # it learned something of the translation set


def test_rerun_skips_finished_steps(run_dir):
    out, _, _ = run_dir
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mindcode", "quickstart", "--output_dir", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("done earlier") == 10 and time.monotonic() - start < 60


def test_report_renders_in_a_headless_browser(run_dir):
    out, _, _ = run_dir
    html = out / "report.html"
    assert "src='data:image/png;base64," in html.read_text() and (out / "report.md").exists()
    profile = tempfile.mkdtemp()
    result = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                             "--virtual-time-budget=5000", "--dump-dom", html.as_uri()],
                            capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-images-ok="yes"' in result.stdout  # every image decoded, set by the page's own script
    assert "<h2>Parity</h2>" in result.stdout and "<h2>Per-step cost</h2>" in result.stdout
    console_errors = [line for line in result.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line
                                                                                           or "Error" in line)]
    assert not console_errors, console_errors


def test_report_command_regenerates(run_dir, tmp_path):
    out, _, _ = run_dir
    (out / "report.md").unlink()
    result = subprocess.run([sys.executable, "-m", "mindcode", "report", str(out)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0 and (out / "report.md").read_text().startswith("# mindcode quickstart report")
