"""Per-rank checkpoints through MindSpore's own transform functions: split a converted checkpoint for a
model-parallel strategy, merge the ranks back (bit-identical), and the errors of a bad layout."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mindcode.convert import ckpt_io
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from tests.conftest import tiny_config, write_hf_checkpoint

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ROW_SPLIT = (".wq.", ".wk.", ".wv.", ".w1.", ".w3.", "embedding_weight", "lm_head.")  # column-parallel: dim 0
COL_SPLIT = (".wo.", ".w2.")  # row-parallel: dim 1


def strategy(names, path, mp=2):
    """A JSON strategy file (MindSpore's format): dp 1 x mp ``mp``, Megatron-style splits, norms replicated."""
    layouts = {}
    for name in names:
        if any(k in name for k in ROW_SPLIT):
            tensor_map = [0, -1]
        elif any(k in name for k in COL_SPLIT):
            tensor_map = [-1, 0]
        else:
            tensor_map = [-1]
        layouts[name] = {"dev_matrix": [1, mp], "tensor_map": tensor_map, "field": 0, "opt_weight_shard_size": 0,
                         "opt_weight_shard_step": 0}
    path.write_text(json.dumps({"current_stage": 0, "parallel_strategy_item": {}, "parallel_layout_item": layouts}))
    return path


def mindcode(*args, ok=True):
    done = subprocess.run([sys.executable, "-m", "mindcode", "convert-weight", *map(str, args), "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode == 0) == ok, done.stderr[-2000:]
    return json.loads(done.stdout) if ok else done.stderr


def arrays(path):
    return {t.name: ckpt_io.load_array(path, t) for t in ckpt_io.index_ckpt(path)}


def test_split_then_merge_is_bit_identical(tmp_path):
    write_hf_checkpoint(tmp_path / "hf", tiny_config(num_kv_heads=2), seed=3)
    full = tmp_path / "full.ckpt"
    convert_hf_to_ms(tmp_path / "hf", full, progress=False)
    original = arrays(full)
    plan = strategy(original, tmp_path / "strategy.json")
    split = mindcode("split-ranks", "--input_path", full, "--strategy", plan, "--output_path", tmp_path / "ranks")
    assert split["ranks_written"] == 2
    for rank in (0, 1):
        shard = arrays(tmp_path / "ranks" / f"rank_{rank}" / "model.ckpt")
        q = "model.layers.0.attention.wq.weight"
        np.testing.assert_array_equal(shard[q], np.split(original[q], 2, axis=0)[rank])
        o = "model.layers.1.attention.wo.weight"
        np.testing.assert_array_equal(shard[o], np.split(original[o], 2, axis=1)[rank])
        norm = "model.norm_out.weight"
        np.testing.assert_array_equal(shard[norm], original[norm])
    merged = mindcode("merge-ranks", "--input_path", tmp_path / "ranks", "--strategy", plan,
                      "--output_path", tmp_path / "merged.ckpt")
    assert merged["ranks_read"] == 2 and merged["tensors"] == len(original)
    back = arrays(tmp_path / "merged.ckpt")
    assert set(back) == set(original) and all(np.array_equal(back[k], original[k]) for k in original)

    # a missing rank, two checkpoints in one rank folder, a bad strategy: one line each, no output left behind
    shutil.rmtree(tmp_path / "ranks" / "rank_1")
    err = mindcode("merge-ranks", "--input_path", tmp_path / "ranks", "--strategy", plan,
                   "--output_path", tmp_path / "m2.ckpt", ok=False)
    assert "needs rank_1/, which is missing" in err and not (tmp_path / "m2.ckpt").exists()
    shutil.copy(full, tmp_path / "ranks" / "rank_0" / "other.ckpt")
    err = mindcode("merge-ranks", "--input_path", tmp_path / "ranks", "--strategy", plan,
                   "--output_path", tmp_path / "m3.ckpt", ok=False)
    assert "rank_0: expected one .ckpt, found 2" in err
    (tmp_path / "bad.ckpt").write_bytes(b"not a strategy")
    err = mindcode("split-ranks", "--input_path", full, "--strategy", tmp_path / "bad.ckpt",
                   "--output_path", tmp_path / "r2", ok=False)
    assert "not a MindSpore strategy file" in err and not (tmp_path / "r2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch folders left


@pytest.mark.slow
def test_the_final_export_outlasts_a_short_default_timeout(tmp_path):
    """Rank 0 consolidates the HF files while rank 1 waits: over mindcode's own gloo group (timeout sized from the
    bytes) a consolidation longer than the default group's timeout completes; over the default group it fails."""
    import os
    import sys

    def export(out, *extra):
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--standalone", "tests/integration/launch/slow_export.py", str(out), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    done = export(tmp_path / "hf")
    assert done.returncode == 0, done.stderr[-3000:]
    from safetensors.numpy import load_file

    files = sorted((tmp_path / "hf").glob("*.safetensors"))
    assert files and "lm_head.weight" in {k for f in files for k in load_file(f)}
    failed = export(tmp_path / "hf_default", "default")
    assert failed.returncode != 0 and not (tmp_path / "hf_default").exists()
