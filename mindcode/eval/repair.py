"""``mindcode eval repair``: exact match of predicted vs reference fixed chunks, top-1 and top-k over beams."""

from __future__ import annotations

from typing import Any

from mindcode.eval.bleu import normalise
from mindcode.eval.texts import pair


def evaluate(predictions: str, references: str, ks: list[int]) -> dict[str, Any]:
    """Predictions: ``{"id", "completions": [beam1, ...]}`` (or one ``completion``); references ``{"id", "output"}``."""
    matched = pair(predictions, references)
    hits = {k: 0 for k in ks}
    for beams, refs, _ in matched:
        beams = [beams] if isinstance(beams, str) else beams
        targets = {normalise(r) for r in refs}
        first = next((i for i, b in enumerate(beams) if normalise(b) in targets), None)
        for k in ks:
            hits[k] += first is not None and first < k
    n = len(matched)
    return {"n": n, **{f"exact_match@{k}": hits[k] / n for k in ks}}
