"""``mindcode env``: versions, and which backends and devices are usable here."""

from __future__ import annotations

import argparse
from typing import Any

from mindcode.env import environment

HELP = "print versions and which backends/devices are usable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --json/--debug


def run(args: argparse.Namespace) -> dict[str, Any]:
    return environment()


def summary(result: dict[str, Any]) -> str:
    lines = [f"mindcode {result['mindcode']} on Python {result['python']} ({result['platform']})"]
    for name, backend in result["backends"].items():
        versions = ", ".join(f"{p} {v}" for p, v in backend["versions"].items() if v)
        if backend["available"]:
            lines.append(f"  {name:7s} available   {backend['device']} x{backend['device_count'] or 1}   ({versions})")
        else:
            lines.append(f"  {name:7s} unavailable {backend['reason']}")
    return "\n".join(lines)
