"""Preference pairs for DPO from transcoder-geeksforgeeks (``id``, ``cpp``, ``java``, ``python``) or
CodeXGLUE-style rows (``id``, ``java``, ``cs``).

Step 1 (``dpo``): ``{id, prompt, chosen}`` where the prompt asks to translate ``--source_lang`` code to
``--target_lang`` and ``chosen`` is the reference translation. Step 2 (``dpo-attach``): attach ``rejected`` from a
model's predictions JSONL (``{id, completion}``), refusing rows where chosen == rejected (exactly; ``--ignore_trailing_whitespace`` for that only) or
whose prediction is missing. TRL's layout, plain strings or (``--conversational``) message lists.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mindcode.data.converters.translation import translation_messages
from mindcode.data.preference import same_answer
from mindcode.data.io import Record, RecordError, Rejects, read_records, require
from mindcode.errors import MindcodeError

HELP = "transcoder-geeksforgeeks rows -> DPO {prompt, chosen} (attach rejected with dpo-attach)"
LANGS = {"cpp": "C++", "cs": "C#", "java": "Java", "python": "Python"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source_lang", choices=sorted(LANGS), default="python", help="(default: python)")
    parser.add_argument("--target_lang", choices=sorted(LANGS), default="java", help="(default: java)")
    parser.add_argument("--conversational", action="store_true", help="message lists instead of plain strings")


def make(args: argparse.Namespace):
    if args.source_lang == args.target_lang:
        raise MindcodeError("--source_lang and --target_lang must differ")
    src, tgt = LANGS[args.source_lang], LANGS[args.target_lang]

    def convert(record: Record, rejects: Rejects) -> list[dict]:
        code, target = require(record, args.source_lang), require(record, args.target_lang)
        prompt, chosen = (m["content"] for m in translation_messages(code, target, src, tgt))
        row = {"id": str(require(record, "id", (str, int))), "source_lang": src, "target_lang": tgt}
        if args.conversational:
            return [{**row, "prompt": [{"role": "user", "content": prompt}],
                     "chosen": [{"role": "assistant", "content": chosen}]}]
        return [{**row, "prompt": prompt, "chosen": chosen}]

    return convert


def add_attach_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", required=True, help="JSONL of {id, completion} from mindcode predict")
    parser.add_argument("--ignore_trailing_whitespace", action="store_true",
                        help="a rejected answer equal to the chosen one but for trailing whitespace is dropped too "
                             "(by default only an identical one is)")


def make_attach(args: argparse.Namespace):
    predictions: dict[str, str] = {}
    for record in read_records(Path(args.predictions)):
        completion = record.data.get("completion")
        if not isinstance(completion, str):
            raise RecordError(record, "completion", "missing or not a string")
        pair_id = str(require(record, "id", (str, int)))
        if pair_id in predictions:
            raise RecordError(record, "id", f"{pair_id!r} appears twice (one prediction per pair)")
        predictions[pair_id] = completion

    def convert(record: Record, rejects: Rejects) -> list[dict]:
        pair_id = str(require(record, "id", (str, int)))
        chosen = record.data.get("chosen")
        if chosen is None:
            raise RecordError(record, "chosen", "missing")
        if pair_id not in predictions:
            rejects.add(record, "no prediction for this id")
            return []
        rejected_text = predictions[pair_id]
        if not rejected_text.strip():
            rejects.add(record, "empty prediction")
            return []
        conversational = isinstance(chosen, list)
        chosen_text = chosen[-1]["content"] if conversational else chosen
        if same_answer(chosen_text, rejected_text, args.ignore_trailing_whitespace):
            rejects.add(record, "chosen == rejected")
            return []
        rejected = [{"role": "assistant", "content": rejected_text}] if conversational else rejected_text
        return [{**record.data, "rejected": rejected}]

    return convert
