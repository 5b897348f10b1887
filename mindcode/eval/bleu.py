"""Translation/repair text metrics, in both conventions people publish, plus exact match and CodeBLEU.

- ``sacrebleu``: sacreBLEU corpus BLEU with its default 13a tokenizer (the seed notebooks' convention).
- ``codexglue_bleu``: CodeXGLUE's code-to-code BLEU-4: whitespace tokens, add-one smoothing of every n-gram
  precision (Lin & Och), brevity penalty against the shortest reference; reported x100 like the others.
- ``exact_match``: CodeXGLUE's "Acc" (its ``evaluator.py``): a prediction equal to a reference once both are
  stripped of leading and trailing whitespace; inner whitespace counts.
- ``exact_match_normalised``: equal after every run of whitespace is collapsed to one space (layout ignored).
- ``codebleu``: through the maintained ``codebleu`` package when it is installed (and a ``--lang`` is given).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from mindcode.errors import MindcodeError

FENCE = re.compile(r"(`{3,})[^\n`]*\n(.*?)\n?(?:\1(?!`)|\Z)", re.DOTALL)  # closed by a fence as long as its opener


def extract_code(text: str) -> str:
    """The first fenced code block of a chat answer, or the text itself when there is none."""
    match = FENCE.search(text)
    return match.group(2).rstrip("\n") if match else text.strip()


def normalise(text: str) -> str:
    return " ".join(text.split())


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def codexglue_bleu(predictions: list[str], references: list[list[str]], max_order: int = 4) -> float:
    """Smoothed corpus BLEU-4 on whitespace tokens, x100."""
    matches, possible = [0] * max_order, [0] * max_order
    pred_len = ref_len = 0
    for prediction, refs in zip(predictions, references):
        tokens = prediction.split()
        ref_tokens = [r.split() for r in refs]
        pred_len += len(tokens)
        ref_len += min(len(r) for r in ref_tokens)
        for n in range(1, max_order + 1):
            counts = _ngrams(tokens, n)
            best: Counter = Counter()
            for r in ref_tokens:
                best |= _ngrams(r, n)
            matches[n - 1] += sum((counts & best).values())
            possible[n - 1] += max(len(tokens) - n + 1, 0)
    precisions = [(m + 1.0) / (p + 1.0) for m, p in zip(matches, possible)]
    geo_mean = math.exp(sum(math.log(p) for p in precisions) / max_order)
    ratio = pred_len / ref_len if ref_len else 0.0
    bp = 1.0 if ratio > 1.0 else (math.exp(1 - 1.0 / ratio) if ratio > 0 else 0.0)
    return 100.0 * geo_mean * bp


def sacrebleu_score(predictions: list[str], references: list[list[str]]) -> float:
    try:
        import sacrebleu
    except ImportError:
        raise MindcodeError("sacreBLEU is not installed: pip install 'mindcode[eval]'") from None
    streams = [list(refs) for refs in zip(*references)]
    return float(sacrebleu.corpus_bleu(predictions, streams).score)


def codebleu_score(predictions: list[str], references: list[list[str]], lang: str) -> dict[str, float] | None:
    try:
        from codebleu import calc_codebleu
    except ImportError:
        return None
    try:
        return {k: float(v) for k, v in calc_codebleu(references, predictions, lang=lang).items()}
    except Exception as exc:  # a language without a tree-sitter grammar installed
        raise MindcodeError(f"CodeBLEU failed for language {lang!r}: {exc}") from None


def score(predictions: list[str], references: list[list[str]], lang: str | None = None) -> dict[str, Any]:
    if len(predictions) != len(references):
        raise MindcodeError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise MindcodeError("no predictions to score")
    exact = sum(p.strip() in {r.strip() for r in refs} for p, refs in zip(predictions, references))
    loose = sum(normalise(p) in {normalise(r) for r in refs} for p, refs in zip(predictions, references))
    out: dict[str, Any] = {
        "n": len(predictions),
        "sacrebleu": sacrebleu_score(predictions, references),
        "codexglue_bleu": codexglue_bleu(predictions, references),
        "exact_match": exact / len(predictions),
        "exact_match_normalised": loose / len(predictions),
    }
    if lang:
        out["codebleu"] = codebleu_score(predictions, references, lang)
    return out
