"""Each backend from its own extra alone: `make test` builds `.venv-gpu` (torch, then `.[gpu]`: no MindSpore) and
`.venv-ascend` (`.[ascend]`: no torch), and the tiny model trains (and on gpu predicts) there. This is what a CUDA
host or an Atlas host installs; the main `.[all]` environment cannot show a combination that breaks alone."""

import json
import subprocess
from pathlib import Path

import pytest

from mindcode.tokenizer import TINY_TOKENIZER
from tests.conftest import write_training_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def python(name: str) -> Path:
    path = ROOT / f".venv-{name}" / "bin" / "python"
    assert path.exists(), f"{path} is missing: `make test` (or `make backend-venvs`) builds it"
    return path


def run(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python(name)), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("installs"))


def test_the_gpu_extra_alone_trains_and_predicts(work):
    versions = run("gpu", "-c", "import importlib.util as u, transformers, torch; print(transformers.__version__, "
                                "u.find_spec('mindspore') is None, u.find_spec('mindformers') is None)")
    assert versions.returncode == 0, versions.stderr[-2000:]
    transformers, no_ms, no_mf = versions.stdout.splitlines()[-1].split()
    assert int(transformers.split(".")[0]) < 5 and no_ms == no_mf == "True"
    out = work / "gpu_only"
    done = run("gpu", "-m", "mindcode", "train", "--config", "configs/gpu/tiny_cpu.yaml", "--output_dir", str(out),
               "--max_steps", "3", f"data.npy={work / 'npy'}", f"training.init={work / 'init'}", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["steps"] == 3
    (work / "prompts.jsonl").write_text('{"id": "1", "prompt": "def add(a, b):"}\n')
    done = run("gpu", "-m", "mindcode", "predict", "--config", "configs/gpu/tiny_cpu.yaml", "--checkpoint",
               str(out / "final"), "--tokenizer", str(TINY_TOKENIZER), "--input", str(work / "prompts.jsonl"),
               "--output", str(work / "gpu_only.jsonl"), "--max_new_tokens", "8", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((work / "gpu_only.jsonl").read_text())["id"] == "1"


def test_the_ascend_extra_alone_trains(work):
    versions = run("ascend", "-c", "import importlib.util as u, mindspore, mindformers; "
                                   "print(mindspore.__version__, mindformers.__version__, u.find_spec('torch') is None)")
    assert versions.returncode == 0, versions.stderr[-2000:]
    assert versions.stdout.splitlines()[-1].split() == ["2.9.0", "1.9.0", "True"]  # after MindFormers' warnings
    done = run("ascend", "-m", "mindcode", "train", "--config", "configs/ascend/tiny_cpu.yaml", "--output_dir",
               str(work / "ascend_only"), "--max_steps", "3", f"data.mindrecord={work / 'train.mindrecord'}",
               f"training.init={work / 'init'}", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["steps"] == 3
