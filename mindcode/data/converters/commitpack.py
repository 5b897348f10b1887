"""CommitPackFT rows (``old_contents``, ``new_contents``, ``subject``/``message``, ``lang``) -> OctoPack pairs.

MESSAGE is the commit's cleaned ``subject``, as OctoPack's own scripts use it (``--message_field message``: the
whole message, with its body and trailers such as ``git-svn-id:``).
``--form inputs-targets``: ``{"inputs": MESSAGE + "\\n\\n" + OLD, "targets": NEW}``.
``--form qa``: ``{"input": "Question: " + MESSAGE + "\\n\\n" + OLD + "\\n\\nAnswer:", "output": " " + NEW}`` (OctoCoder's
Question/Answer layout; train it with ``--template raw``). A new file (empty ``old_contents``) keeps only the message.
"""

from __future__ import annotations

import argparse

from mindcode.data.io import Record, Rejects, require

HELP = "CommitPackFT rows -> OctoPack inputs/targets or Question/Answer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--form", choices=["inputs-targets", "qa"], default="inputs-targets",
                        help="inputs-targets (default) or OctoCoder's Question/Answer layout")
    parser.add_argument("--message_field", choices=["subject", "message"], default="subject",
                        help="the commit text: OctoPack's cleaned subject (default) or the whole message")


def make(args: argparse.Namespace):
    def convert(record: Record, rejects: Rejects) -> list[dict]:
        message = require(record, args.message_field)
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
