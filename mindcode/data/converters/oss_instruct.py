"""Magicoder OSS-Instruct rows (``problem``, ``solution``, ...) -> ``{instruction, response, ...}``, as Magicoder's
``preprocess_data.py`` (``--key src-instruct``) writes them: the instruction is "Write a solution to the following
coding problem:" and the problem, the response the solution, and every other column (``lang``, ``seed``,
``raw_index``, ``openai_fingerprint``, ...) kept in order. ``--instruction problem``: the problem verbatim."""

from __future__ import annotations

import argparse

from mindcode.data.io import Record, Rejects, require

HELP = "Magicoder OSS-Instruct rows -> {instruction, response} (Magicoder's preprocess_data.py)"
PROMPT = "Write a solution to the following coding problem:\n{problem}"  # Magicoder's SRC_INSTRUCT_INSTRUCTION_PROMPT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instruction", choices=["magicoder", "problem"], default="magicoder",
                        help="magicoder: Magicoder's instruction prompt around the problem (default); problem: verbatim")


def make(args: argparse.Namespace):
    def convert(record: Record, rejects: Rejects) -> list[dict]:
        problem, solution = require(record, "problem"), require(record, "solution")
        instruction = PROMPT.format(problem=problem) if args.instruction == "magicoder" else problem
        rest = {k: v for k, v in record.data.items() if k not in ("problem", "solution")}
        return [{"instruction": instruction, "response": solution, **rest}]

    return convert
