"""``mindcode quickstart``: the whole pipeline on the embedded tiny default, both backends, one report.

    mindcode quickstart                                   # runs/quickstart, both backends
    mindcode quickstart --output_dir runs/qs --backends gpu --force
"""

from __future__ import annotations

import argparse
from typing import Any

from mindcode.terminal import interactive
from mindcode.quickstart.pipeline import run_quickstart

HELP = "run the whole pipeline on the embedded tiny default and write a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output_dir", default="runs/quickstart")
    parser.add_argument("--backends", default="ascend,gpu", help="comma-separated: ascend, gpu")
    parser.add_argument("--force", action="store_true", help="redo finished steps")


def log_dir(args: argparse.Namespace) -> str:
    return args.output_dir


def run(args: argparse.Namespace) -> dict[str, Any]:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return run_quickstart(args.output_dir, backends, args.force, progress=interactive())


def summary(result: dict[str, Any]) -> str:
    total = sum(result["timings_s"].values())
    return f"quickstart done in {total:.0f} s: {result['report_html']} and {result['report_md']}"
