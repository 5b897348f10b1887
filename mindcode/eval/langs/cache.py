"""The trusted side's test programs: a problem's test, built once by the language's compiler from the problem's
text alone and kept by content under ``~/.cache/mindcode/KIND`` (``built_test``); a test that does not build raises
``CannotSplit`` and that problem's samples run bigcode's way, judged by their exit status."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError
from mindcode.eval.langs.base import cache_dir, publish


COMPILE_TIMEOUT_S = 120


class CannotSplit(MindcodeError):
    """This problem's test cannot run apart from the program (the reason is the message)."""


_BUILT: dict[str, dict[str, Any] | str] = {}  # per problem: the test's step, or why it cannot be built
_BUILDING: dict[str, threading.Lock] = {}
_LOCK = threading.Lock()


# A build that failed for want of something on this machine (a header, a package), not for the problem's text.
MISSING = re.compile(r"No such file or directory|cannot find package|package \S+ does not exist|can't find crate")


def built_test(kind: str, salt: list[Any], argv: list[str], files: dict[str, str], env: dict[str, str],
               run: list[str], parts: dict[str, str]) -> dict[str, Any]:
    """The test step of one problem, built once by ``argv`` from ``files`` (into ``test``: a binary, or Java's
    classes) and kept by content under ``~/.cache/mindcode/KIND``, run by ``run`` ("{test}": what was built);
    CannotSplit when it does not build."""
    root = cache_dir(kind)
    key = hashlib.sha256(json.dumps([salt, argv[1:], files]).encode()).hexdigest()[:24]
    with _LOCK:
        lock = _BUILDING.setdefault(f"{root}/{key}", threading.Lock())
    with lock:  # one build per problem, however many threads ask
        if f"{root}/{key}" not in _BUILT:
            _BUILT[f"{root}/{key}"] = build(argv, files, env, root / key)
    built = _BUILT[f"{root}/{key}"]
    if isinstance(built, str):
        raise CannotSplit(built)
    return {"argv": [a.replace("{test}", built["test"]) for a in run], "stdin": "", "reads": built["reads"],
            "entry_point": parts["entry_point"]}


def build(argv: list[str], files: dict[str, str], env: dict[str, str], done: Path) -> dict[str, Any] | str:
    if (done / "error.txt").is_file() and MISSING.search((done / "error.txt").read_text()):
        shutil.rmtree(done, ignore_errors=True)  # kept by an earlier version: the machine may have it by now
    if not (done / "test").exists() and not (done / "error.txt").is_file():
        done.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=done.parent))
        for name, text in files.items():
            (work / name).write_text(text)
        try:
            out = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                                 env={"PATH": "/usr/bin:/bin", **env} if env else None)
        except subprocess.TimeoutExpired:  # not the problem's fault: not kept, tried again next time
            shutil.rmtree(work, ignore_errors=True)
            return f"compiling the test took more than {COMPILE_TIMEOUT_S} s"
        if out.returncode < 0:  # killed (memory, a signal): likewise
            shutil.rmtree(work, ignore_errors=True)
            return f"compiling the test was killed by signal {-out.returncode}"
        failure = None if out.returncode == 0 else (out.stderr or out.stdout)
        if failure is not None:
            errors = [line for line in failure.splitlines() if "error" in line or re.search(r":\d+:\d+: ", line)]
            errors = errors or failure.splitlines()[-1:]
            message = f"its test does not compile apart from the program: {errors[0][:300]}"
            if MISSING.search(failure):  # this machine lacks a header or package: not kept, tried again next time
                shutil.rmtree(work, ignore_errors=True)
                return message
            (work / "error.txt").write_text(message)  # a compiler's verdict on the problem's text: kept
        publish(work, done)
    if (done / "error.txt").is_file():
        return (done / "error.txt").read_text()
    return {"test": str(done / "test"), "reads": [str(done)]}
