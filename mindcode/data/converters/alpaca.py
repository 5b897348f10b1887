"""code-alpaca / alpaca rows (``instruction``, ``input``, ``output``) -> FastChat conversations.

Byte for byte what MindFormers' ``alpaca_converter.py`` writes (a JSON array, ids "1".."N", the Stanford Alpaca
prompts), except that a malformed row is reported instead of crashing or being written.
"""

from __future__ import annotations

import argparse
import itertools

from mindcode.data.io import Record, RecordError, Rejects, require

HELP = "code-alpaca rows -> FastChat conversations (MindFormers' alpaca_converter format)"

# The prompts of Stanford Alpaca's training script.
PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def make(args: argparse.Namespace):
    ids = itertools.count(1)

    def convert(record: Record, rejects: Rejects) -> list[dict]:
        instruction = require(record, "instruction")
        context = record.data.get("input") or ""
        if not isinstance(context, str):
            raise RecordError(record, "input", f"expected str, got {type(context).__name__}")
        output = require(record, "output")
        prompt = (PROMPT_INPUT if context else PROMPT_NO_INPUT).format(instruction=instruction, input=context)
        return [{"id": str(next(ids)), "conversations": [{"from": "human", "value": prompt},
                                                         {"from": "gpt", "value": output}]}]

    return convert
