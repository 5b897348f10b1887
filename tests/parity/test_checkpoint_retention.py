"""``training.save_total_limit``: old step checkpoints go once a newer one is complete, on both backends, and the
newest (the one a resume uses) always stays."""

import json
import shutil
from pathlib import Path

import pytest

from mindcode.config import load_config
from mindcode.train.loop import train
from tests.conftest import write_training_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("retention"))


@pytest.mark.parametrize("backend", ["gpu", "ascend"])
def test_save_total_limit_keeps_the_newest_checkpoints_and_resume_still_works(work, backend):
    out = work / backend
    config = lambda: load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml", [  # noqa: E731
        f"data.mindrecord={work / 'train.mindrecord'}", f"data.npy={work / 'npy'}", f"training.init={work / 'init'}",
        f"training.output_dir={out}", "training.max_steps=5", "training.save_steps=1", "training.save_total_limit=2"])
    summary = train(config(), progress=False)
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == ["step_4", "step_5"] and summary["checkpoints"] == [str(out / "checkpoints" / k) for k in kept]
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(out / "checkpoints" / "step_5")  # as if killed during step 5: resume takes step_4
    resumed = train(config(), resume=True, progress=False)
    again = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert resumed["resumed_from"] == 4 and again[:4] == losses[:4]
    assert abs(again[4] - losses[4]) <= 1e-6 * abs(losses[4])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_4", "step_5"]
