"""Magicoder OSS-Instruct rows (``problem``, ``solution``; ``lang`` and ``seed`` kept when present)
-> ``{instruction, response}``."""

from __future__ import annotations

import argparse

from mindcode.data.io import Record, Rejects, require

HELP = "Magicoder OSS-Instruct rows -> {instruction, response}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def make(args: argparse.Namespace):
    def convert(record: Record, rejects: Rejects) -> list[dict]:
        out = {"instruction": require(record, "problem"), "response": require(record, "solution")}
        for key in ("lang", "seed", "index"):
            if key in record.data:
                out[key] = record.data[key]
        return [out]

    return convert
