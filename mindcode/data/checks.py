"""``mindcode data validate`` and ``inspect``: lint records before a launch; look at one tokenized row."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mindcode.data.build import FIM_FIELDS
from mindcode.data.conversations import conversation_of
from mindcode.data import preference
from mindcode.data.io import Record, RecordError, expand_inputs, read_records
from mindcode.data.templates import ConversationError, check_roles
from mindcode.data.tokenize import IGNORE
from mindcode.errors import MindcodeError
from mindcode.tokenizer import load_tokenizer


def record_kind(data: dict[str, Any]) -> str:
    if "chosen" in data or "rejected" in data:
        return "preference"
    if any(f in data for f in FIM_FIELDS):
        return "fim"
    return "conversation"


def problems_of(record: Record) -> list[tuple[str, str]]:
    """``[(reason, message)]`` for one record; empty when it is fine."""
    kind = record_kind(record.data)
    try:
        if kind == "preference":
            return [(reason, f"{record.where()}, field {name!r}: {message}")
                    for name, reason, message in preference.problems(record)]
        if kind == "fim":
            missing = [f for f in FIM_FIELDS if not isinstance(record.data.get(f), str)]
            if missing:
                return [("FIM marker field missing", f"{record.where()}: missing {', '.join(missing)}")]
            if not record.data["fim_middle"].strip():
                return [("empty FIM middle", f"{record.where()}, field 'fim_middle': empty")]
            return []
        roles = [role for role, _ in conversation_of(record)]
        check_roles(roles[1:] if roles[0] == "system" else roles)
        return []
    except ConversationError as exc:
        return [(exc.reason, f"{record.where()}: {exc}")]
    except RecordError as exc:
        return [(exc.problem.split(" (")[0], str(exc))]


def validate(input_glob: str, max_examples: int = 20) -> dict[str, Any]:
    counts: Counter = Counter()
    examples: list[str] = []
    records = 0
    for path in expand_inputs(input_glob):
        for record in read_records(path):
            records += 1
            for reason, message in problems_of(record):
                counts[reason] += 1
                if len(examples) < max_examples:
                    examples.append(message)
    return {"records": records, "problems": sum(counts.values()), "by_reason": dict(counts), "examples": examples,
            "ok": not counts}


def load_rows(path: str) -> dict[str, np.ndarray]:
    """Rows of a tokenized dataset: a MindRecord file, or a folder with one ``.npy`` per column."""
    p = Path(path)
    if p.is_dir():
        rows = {f.stem: np.load(f, mmap_mode="r") for f in sorted(p.glob("*.npy"))}
        if not rows:
            raise MindcodeError(f"{path}: no .npy columns in this folder")
        return rows
    if not p.is_file():
        raise MindcodeError(f"{path}: no such MindRecord file or .npy folder")
    from backends.ascend.mindrecord import read_mindrecord, record_columns

    return read_mindrecord(p, record_columns(p))


def inspect(path: str, model_file: str, index: int = 0, half: str = "chosen") -> dict[str, Any]:
    """Decode row ``index``: the text, and the spans that are trained (``labels != -100``); for preference data,
    the ``half`` (chosen or rejected) of pair ``index``."""
    rows = load_rows(path)
    if "chosen_input_ids" in rows:
        rows = {name[len(half) + 1:]: value for name, value in rows.items() if name.startswith(f"{half}_")}
    n = len(rows["input_ids"])
    if not 0 <= index < n:
        raise MindcodeError(f"{path}: row {index} out of range (0..{n - 1})")
    tokenizer = load_tokenizer(model_file)
    ids = [int(i) for i in rows["input_ids"][index]]
    labels = [int(i) for i in rows["labels"][index]] if "labels" in rows else [IGNORE] * len(ids)
    real = len(ids)
    while real and ids[real - 1] == 0 and labels[real - 1] == IGNORE:
        real -= 1
    segments: list[dict[str, Any]] = []
    for token, label in zip(ids[:real], labels[:real]):
        trained = label != IGNORE
        if label not in (IGNORE, token):
            raise MindcodeError(f"{path}: row {index} has label {label} under token {token} (labels must equal ids)")
        if segments and segments[-1]["trained"] == trained:
            segments[-1]["ids"].append(token)
        else:
            segments.append({"trained": trained, "ids": [token]})
    for i, seg in enumerate(segments):
        span = seg.pop("ids")
        seg["text"] = _decode(tokenizer.sp, span, leading_space=i > 0) if tokenizer.kind == "sentencepiece" \
            else tokenizer.decode_all(span)
    return {"path": path, "index": index, "rows": n, "length": len(ids), "real_tokens": real,
            "trained_tokens": sum(1 for label in labels if label != IGNORE), "segments": segments}


def _decode(sp: Any, ids: list[int], leading_space: bool) -> str:
    """Decode a span, showing control tokens as their pieces (BOS/EOS as <s>/</s>, CodeLlama's FIM markers as
    ▁<PRE>, ▁<SUF>, ▁<MID>, ▁<EOT>, which decoding drops) and keeping the space sentencepiece drops at a span's
    start."""
    text, run = [], []
    for token in ids + [None]:
        if token is None or sp.is_control(token):
            if run:
                piece = sp.decode(run)
                space = leading_space and sp.id_to_piece(run[0]).startswith("▁")
                text.append((" " if space else "") + piece)
                run = []
            if token is not None:
                text.append(sp.id_to_piece(token))
            leading_space = True
        else:
            run.append(token)
    return "".join(text)
