"""qa tokenization throughput: mindcode vs MindFormers' ``llama_preprocess.py``, same input, tokenizer, machine.

    python scripts/bench_data.py --conversations 20000                          # mindcode alone
    python scripts/bench_data.py --reference PATH/TO/mindformers/tools/dataset_preprocess/llama
    python scripts/bench_data.py --large 0.2,2     # peak RSS of streaming a 0.2 GB and a 2 GB JSONL (flat = streamed)

``--reference`` is a folder holding a copy of MindFormers' ``llama_preprocess.py`` (and its ``conversation.py``);
it is run as its own process, then both MindRecord files are read back and compared row for row.
Prints one JSON object with tokens/s of each, the speed-up, and whether ``input_ids``/``labels`` are identical.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.tokenizer import TINY_TOKENIZER  # noqa: E402

VERBS = ["Write", "Implement", "Refactor", "Explain then write", "Optimise"]
TASKS = ["a function that sums a list", "a class for a stack", "binary search over a sorted list",
         "a parser for key=value lines", "a memoised fibonacci", "a function that reverses words"]


# How code answers start: right at the code, after a newline, inside a fence, indented (the template's trailing
# space then stays a token of its own, which MindFormers trains)
STARTS = ["", "\n", "```python\n", "\n\n", "    "]


def make_conversations(n: int, seed: int = 0) -> list[dict]:
    """Code-instruction conversations (a third of them two turns), answers starting with code in the ways real code
    answers do."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        body = "\n".join(f"    {rng.choice(['x', 'y', 'total'])} = {rng.choice(['x', 'y'])} + {rng.randint(0, 99)}"
                         for _ in range(rng.randint(2, 12)))
        turns = [{"from": "human", "value": f"{rng.choice(VERBS)} {rng.choice(TASKS)} (task {i})."},
                 {"from": "gpt", "value": f"{STARTS[i % len(STARTS)]}def task_{i}(x, y):\n{body}\n    return x"}]
        if i % 3 == 0:
            turns += [{"from": "human", "value": "Add type hints."},
                      {"from": "gpt", "value": f"def task_{i}(x: int, y: int) -> int:\n{body}\n    return x"}]
        rows.append({"id": str(i), "conversations": turns})
    return rows


def run(cmd: list[str], repeat: int, output: Path, cwd: Path | None = None) -> float:
    """Best wall time of ``repeat`` runs of a whole process (imports included, caches warm after the first)."""
    best = float("inf")
    for _ in range(repeat):
        for old in output.parent.glob(output.name + "*"):  # MindFormers' script will not overwrite
            old.unlink()
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--seq_length", type=int, default=1024)
    parser.add_argument("--model_file", default=str(TINY_TOKENIZER))
    parser.add_argument("--reference", help="folder with MindFormers' llama_preprocess.py and conversation.py")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best time counts")
    parser.add_argument("--large", help="comma-separated sizes in GB: peak RSS of validate/convert/tokenize on each")
    args = parser.parse_args()
    if args.large:
        print(json.dumps(large_inputs([float(x) for x in args.large.split(",")], args.model_file)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    data = work / "conversations.json"
    data.write_text(json.dumps(make_conversations(args.conversations)))
    common = ["--dataset_type", "qa", "--input_glob", str(data), "--model_file", args.model_file,
              "--seq_length", str(args.seq_length)]
    ours = work / "mindcode.mindrecord"
    seconds = run([sys.executable, "-m", "mindcode", "data", "tokenize", *common, "--output_file", str(ours)],
                  args.repeat, ours, cwd=ROOT)
    summary = json.loads(Path(f"{ours}.summary.json").read_text())  # written by the last run
    report = {"conversations": args.conversations, "seq_length": args.seq_length, "tokens": summary["tokens"],
              "repeat": args.repeat,
              "mindcode_s": round(seconds, 2), "mindcode_tokens_per_s": round(summary["tokens"] / seconds)}
    if args.reference:
        theirs = work / "reference.mindrecord"
        ref = Path(args.reference).resolve()
        seconds = run([sys.executable, str(ref / "llama_preprocess.py"), *common, "--output_file", str(theirs)],
                      args.repeat, theirs, cwd=ref)
        from backends.ascend.mindrecord import read_mindrecord

        a = read_mindrecord(ours, ["input_ids", "labels"])
        b = read_mindrecord(theirs, ["input_ids", "labels"])
        report.update({
            "reference_s": round(seconds, 2),
            "reference_tokens_per_s": round(summary["tokens"] / seconds),
            "speedup": round(seconds / report["mindcode_s"], 2),
            "identical_input_ids": bool(a["input_ids"].shape == b["input_ids"].shape
                                        and (a["input_ids"] == b["input_ids"]).all()),
            "identical_labels": bool(a["labels"].shape == b["labels"].shape and (a["labels"] == b["labels"]).all()),
        })
    print(json.dumps(report))
    return 0 if report.get("identical_labels", True) and report.get("identical_input_ids", True) else 1


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one whole process."""
    import resource

    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/env", "python3", "-c", "import resource, subprocess, sys; "
                           "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
                           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", *cmd],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    del resource
    return time.perf_counter() - start, int(done.stdout.strip()) / 1024


def large_inputs(sizes_gb: list[float], model_file: str) -> dict:
    """JSONL files of code conversations of each size, read whole by `data validate` (the streaming readers) and,
    up to 0.25 GB (tokenizing 2 GB takes half an hour here), by `data tokenize`: a peak RSS that does not grow with
    the input means nothing is held whole."""
    work = Path(tempfile.mkdtemp(prefix="bench_large_"))
    block = "".join(json.dumps(r) + "\n" for r in make_conversations(2000)).encode()
    report: dict = {"block_bytes": len(block)}
    for size in sizes_gb:
        path = work / f"c{size}.jsonl"
        with path.open("wb") as f:
            for _ in range(max(1, int(size * 1e9 / len(block)))):
                f.write(block)
        seconds, rss = peak_rss_mb([sys.executable, "-m", "mindcode", "data", "validate", "--input", str(path)])
        entry = {"bytes": path.stat().st_size, "validate_s": round(seconds, 1), "validate_peak_rss_mb": round(rss)}
        if size <= 0.25:
            seconds, rss = peak_rss_mb([sys.executable, "-m", "mindcode", "data", "tokenize", "--dataset_type", "qa",
                                        "--input_glob", str(path), "--model_file", model_file, "--seq_length", "512",
                                        "--torch_output", str(work / f"npy{size}")])
            entry.update({"tokenize_s": round(seconds, 1), "tokenize_peak_rss_mb": round(rss)})
            shutil.rmtree(work / f"npy{size}", ignore_errors=True)
        report[f"{size}_GB"] = entry
        path.unlink()
    return report


if __name__ == "__main__":
    sys.exit(main())
