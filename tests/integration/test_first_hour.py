"""A newcomer's first hour, through the CLI: a quiet terminal (framework logs in the run's folder), the twin configs
agreeing out of the box, every typical mistake answered with one specific line, and `mindcode doctor`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_training_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def mindcode(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "mindcode", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("first_hour"))


def data(work):
    return [f"data.mindrecord={work / 'train.mindrecord'}", f"data.npy={work / 'npy'}"]


def test_the_terminal_shows_mindcodes_lines_and_the_log_has_the_frameworks(work):
    done = mindcode("train", "--config", "configs/ascend/tiny_cpu.yaml", "--output_dir", work / "quiet",
                    "--max_steps", 3, *data(work))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("[ascend on CPU] 3 steps")
    assert done.stderr.strip() == f"framework logs: {work / 'quiet' / 'logs' / 'frameworks.log'}", done.stderr
    log = (work / "quiet" / "logs" / "frameworks.log").read_text()
    assert "WARNING" in log or "mindformers" in log.lower()  # MindFormers' and MindSpore's lines went here
    loud = mindcode("train", "--config", "configs/ascend/tiny_cpu.yaml", "--output_dir", work / "loud",
                    "--max_steps", 1, *data(work), env={"MINDCODE_LOG": "info"})
    assert loud.returncode == 0 and "WARNING" in loud.stderr  # MINDCODE_LOG=info brings them back


def test_the_twin_configs_agree_out_of_the_box(work):
    """training.init: "" is one random init made from the seed by mindcode, so both twins start from it."""
    losses = {}
    for backend in ("gpu", "ascend"):
        done = mindcode("train", "--config", f"configs/{backend}/tiny_cpu.yaml", "--output_dir", work / "twin" / backend,
                        "--max_steps", 5, *data(work))
        assert done.returncode == 0, done.stderr[-2000:]
        losses[backend] = [json.loads(line)["loss"] for line in open(work / "twin" / backend / "metrics.jsonl")]
    worst = max(abs(a - g) / g for a, g in zip(losses["ascend"], losses["gpu"]))
    assert worst <= 1e-4, losses


MISTAKES = [  # (arguments, the one line it must give, after "mindcode VERB: error: ")
    (["train", "--config", "configs/gpu/tiny_cpu.yaml", "data.npy=/nowhere"],
     "data.npy '/nowhere': no input_ids.npy there (write it with `mindcode data tokenize"),
    (["train", "--config", "configs/gpu/tiny_cpu.yaml", "torch.precision=fp16"],
     "torch.precision 'fp16'; valid: bf16, fp32"),
    (["train", "--config", "configs/gpu/tiny_cpu.yaml", "parallel_config.model_parallel=3", "DATA"],
     "parallel_config: model_parallel 3 x pipeline_stage 1 = 3 does not divide the 1 processes"),
    (["train", "--config", "configs/ascend/tiny_cpu.yaml", "training.max_step=3"],
     "training: unknown key 'max_step'; valid:"),
    (["train", "--config", "configs/gpu/missing.yaml"], "configs/gpu/missing.yaml: no such config file"),
    (["predict", "--config", "configs/gpu/tiny_cpu.yaml", "--checkpoint", "INIT", "--tokenizer", "tok.model",
      "--input", "INPUT", "--output", "OUT"], "tok.model"),
    (["predict", "--config", "configs/gpu/tiny_cpu.yaml", "--checkpoint", "INIT", "--tokenizer", "tok.model",
      "--input", "x.jsonl", "--output", "OUT"], "x.jsonl: no such file"),
    (["data", "tokenize", "--dataset_type", "qa", "--input_glob", "/nowhere/*.json", "--model_file",
      "mindcode/assets/tiny_code.model", "--seq_length", "16", "--torch_output", "OUT"], "/nowhere/*.json"),
    (["convert-weight", "--input_path", "/nowhere", "--output_path", "OUT"], "/nowhere"),
    (["plan", "--config", "configs/gpu/tiny_cpu.yaml", "--device", "tpu-v5"], "--device 'tpu-v5'; known:"),
]


@pytest.mark.parametrize("args, message", MISTAKES, ids=lambda a: " ".join(a[:3]) if isinstance(a, list) else None)
def test_typical_mistakes_give_one_specific_line(work, tmp_path, args, message):
    (tmp_path / "in.jsonl").write_text('{"id": "1", "prompt": "def f():"}\n')
    named = {"OUT": str(tmp_path / "out"), "INPUT": str(tmp_path / "in.jsonl"), "INIT": str(work / "init")}
    args = [named.get(a, a) for a in args]
    args = [x for a in args for x in (data(work) if a == "DATA" else [a])]
    done = mindcode(*args)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"mindcode {args[0]}: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_resume_takes_no_value_and_cannot_swallow_an_override(work):
    done = mindcode("train", "--config", "configs/gpu/tiny_cpu.yaml", "--output_dir", work / "resume", "--resume",
                    f"training.init={work / 'init'}", *data(work), "--max_steps", 2)
    assert done.returncode == 1 and "--resume: no checkpoint" in done.stderr  # training.init stayed an override


def test_doctor_checks_the_installation():
    done = mindcode("doctor", "--json")
    result = json.loads(done.stdout)
    names = {c["check"] for c in result["checks"]}
    assert {"versions and pins", "ascend backend", "gpu backend", "MindRecord write/read", "code sandbox",
            "Chromium", "free disk"} <= names
    assert done.returncode == (0 if result["ok"] else 1)
    assert all(c["ok"] for c in result["checks"] if c["check"] in ("ascend backend", "gpu backend"))
    assert all(c["fix"] for c in result["checks"] if not c["ok"])  # a failure always says what to do
