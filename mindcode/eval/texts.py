"""Pairing predictions with references: plain text (one per line) or JSONL with ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcode.data.io import RecordError, read_records
from mindcode.errors import MindcodeError

PREDICTION_FIELDS = ("completions", "completion", "prediction", "translation", "output", "text")
REFERENCE_FIELDS = ("reference", "target", "output", "text", "fixed")


def _text_of(record, fields) -> str | list[str]:
    for field in fields:
        if field in record.data:
            value = record.data[field]
            if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return value
            raise RecordError(record, field, "expected a string or a list of strings")
    raise RecordError(record, None, f"no text field (one of {', '.join(fields)})")


def load(path: str, fields: tuple[str, ...]) -> list[tuple[str | None, Any, dict[str, Any]]]:
    """``[(id, text or list of texts, record)]``; plain-text files give one line per entry and no ids."""
    p = Path(path)
    if not p.is_file():
        raise MindcodeError(f"{path}: no such file")
    if p.suffix not in (".jsonl", ".json"):
        return [(None, line.rstrip("\n"), {}) for line in p.read_text(encoding="utf-8").splitlines()]
    rows = []
    for record in read_records(p):
        rid = record.data.get("id", record.data.get("task_id"))
        rows.append((None if rid is None else str(rid), _text_of(record, fields), record.data))
    return rows


def pair(pred_path: str, ref_path: str) -> list[tuple[Any, list[str], dict[str, Any]]]:
    """Match predictions to references by id when both carry ids, else by position."""
    preds, refs = load(pred_path, PREDICTION_FIELDS), load(ref_path, REFERENCE_FIELDS)
    if all(p[0] is not None for p in preds) and all(r[0] is not None for r in refs):
        by_id = {r[0]: r for r in refs}
        missing = [p[0] for p in preds if p[0] not in by_id]
        if missing:
            raise MindcodeError(f"{pred_path}: {len(missing)} predictions have no reference, first id {missing[0]!r}")
        matched = [(p[1], by_id[p[0]][1], {**by_id[p[0]][2], **p[2]}) for p in preds]
    else:
        if len(preds) != len(refs):
            raise MindcodeError(f"{pred_path} has {len(preds)} entries, {ref_path} has {len(refs)}")
        matched = [(p[1], r[1], {**r[2], **p[2]}) for p, r in zip(preds, refs)]
    return [(p, [r] if isinstance(r, str) else list(r), meta) for p, r, meta in matched]
