"""``mindcode report RUN_DIR``: regenerate report.md and report.html from a quickstart run's files."""

from __future__ import annotations

import argparse
from typing import Any

from mindcode.quickstart.report import write_report

HELP = "regenerate a quickstart run's report.md / report.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the quickstart's --output_dir")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return write_report(args.run_dir)


def summary(result: dict[str, Any]) -> str:
    return f"wrote {result['report_html']} and {result['report_md']}"
