"""CommitPackFT rows (``old_contents``, ``new_contents``, ``message``/``subject``, ``lang``) -> OctoPack pairs.

``--form inputs-targets``: ``{"inputs": MESSAGE + "\\n\\n" + OLD, "targets": NEW}``.
``--form qa``: ``{"input": "Question: " + MESSAGE + "\\n\\n" + OLD + "\\n\\nAnswer:", "output": " " + NEW}`` (OctoCoder's
Question/Answer layout; train it with ``--template raw``). A new file (empty ``old_contents``) keeps only the message.
"""

from __future__ import annotations

import argparse

from mindcode.data.io import Record, Rejects, require

HELP = "CommitPackFT rows -> OctoPack inputs/targets or Question/Answer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--form", choices=["inputs-targets", "qa"], default="inputs-targets")


def make(args: argparse.Namespace):
    def convert(record: Record, rejects: Rejects) -> list[dict]:
        message = record.data.get("message") or record.data.get("subject")
        if not isinstance(message, str) or not message.strip():
            message = require(record, "message")  # raises naming the field
        old = require(record, "old_contents", allow_empty=True)
        new = require(record, "new_contents")
        if old == new:
            rejects.add(record, "unchanged contents")
            return []
        instruction = message.strip() + (f"\n\n{old}" if old.strip() else "")
        meta = {k: record.data[k] for k in ("commit", "lang", "license") if k in record.data}
        if args.form == "qa":
            return [{**meta, "input": f"Question: {instruction}\n\nAnswer:", "output": f" {new}"}]
        return [{**meta, "inputs": instruction, "targets": new}]

    return convert
