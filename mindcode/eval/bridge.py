"""The trusted test process of a language whose test runs apart from the program (``Toolchain.make_test``).

JavaScript: ``node -e split.js test``, the prompt's helpers and the test given as JSON on its stdin. C++: the test
program (``pack.split_test``: the prompt's helpers, ``split.hpp``, a proxy for the entry point, the problem's test),
compiled here, on the trusted side, once per problem and cached by content in ``~/.cache/mindcode/cpp-tests``; a
test that does not compile (its entry point takes or returns a type ``split.hpp`` cannot pass, such as
``boost::any``) raises ``CannotSplit`` and that problem's samples run bigcode's way, judged by their exit status.
Go: the test binary (``go test -c`` of the test setup, the prompt's helpers, a proxy, ``split.go``, the test), built
and cached the same way in ``~/.cache/mindcode/go-tests`` with a build cache of its own. Java: the test program's
classes (``javac`` of the prompt's class up to the entry point, a proxy method, ``split.java``, the test's ``Main``),
in ``~/.cache/mindcode/java-tests``. Rust: the test binary (``rustc --test`` of the declaration's ``use`` lines, the
helpers, a proxy, the test module, linked with ``split.rs`` built once as a library), in
``~/.cache/mindcode/rust-tests``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError

COMPILE_TIMEOUT_S = 120


class CannotSplit(MindcodeError):
    """This problem's test cannot run apart from the program (the reason is the message)."""


def js_test(node: str, bridge: str, parts: dict[str, str]) -> dict[str, Any]:
    return {"argv": [node, "-e", bridge, "test"], "stdin": json.dumps(parts), "entry_point": parts["entry_point"],
            "reads": []}


_BUILT: dict[str, dict[str, Any] | str] = {}  # per problem: the test's step, or why it cannot be built
_BUILDING: dict[str, threading.Lock] = {}
_LOCK = threading.Lock()


def cpp_test(gxx: str, version: str, flags: list[str], parts: dict[str, str]) -> dict[str, Any]:
    """The compiled test program of one C++ problem (cached); CannotSplit when it does not compile."""
    argv = [gxx, *flags, "test.cpp", "-o", "test", "-lcrypto", "-lssl"]
    return _cached("cpp-tests", [version, flags], argv, {"test.cpp": parts["program"]}, {}, ["{test}"], parts)


def go_test(go: str, version: str, env: dict[str, str], parts: dict[str, str]) -> dict[str, Any]:
    """The test binary of one Go problem (``go test -c``, cached; its build cache is the trusted side's own);
    CannotSplit when it does not compile."""
    root = cache_dir("go-tests")
    env = {**env, "GOCACHE": str(root / "gocache"), "HOME": str(root)}
    argv = [go, "test", "-c", "-o", "test", "-vet=off", "main_test.go"]
    return _cached("go-tests", [version], argv, {"main_test.go": parts["program"]}, env, ["{test}", "-test.count=1"],
                   parts)


def java_test(javac: str, version: str, compile_flags: list[str], run: list[str], parts: dict[str, str]) -> dict:
    """The test program of one Java problem (``javac -d test``, cached: its classes); CannotSplit when it does not
    compile. ``run``: the JVM's command line up to the class path."""
    argv = [javac, *compile_flags, "-d", "test", "Main.java"]
    return _cached("java-tests", [version], argv, {"Main.java": parts["program"]}, {}, [*run, "-cp", "{test}", "Main"],
                   parts)


def rust_test(argv: list[str], version: str, parts: dict[str, str]) -> dict[str, Any]:
    """The test binary of one Rust problem (``rustc --test`` against the crates, cached); CannotSplit when it does
    not compile (a type without a ``Wire`` implementation)."""
    return _cached("rust-tests", [version], argv, {"main.rs": parts["program"]}, {}, ["{test}", "--test-threads=1"],
                   parts)


@functools.lru_cache(maxsize=None)
def source(name: str) -> str:
    """The text of one of the bridges next to this module (``split.js``, ``.hpp``, ``.go``, ``.java``, ``.rs``)."""
    return (Path(__file__).parent / name).read_text()


@functools.lru_cache(maxsize=None)
def go_bridge() -> tuple[str, str]:
    """``split.go`` as the two parts that go into a program: its import declaration and its body."""
    text = source("split.go")
    start = text.index("\nimport (")
    end = text.index("\n)\n", start) + 3
    return text[start:end].strip() + "\n", text[end:].strip() + "\n"


# A build that failed for want of something on this machine (a header, a package), not for the problem's text.
MISSING = re.compile(r"No such file or directory|cannot find package|package \S+ does not exist|can't find crate")


def cache_dir(kind: str) -> Path:
    """Where mindcode keeps what it builds once on the trusted side: ``$XDG_CACHE_HOME/mindcode/KIND``."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindcode" / kind


def publish(work: Path, done: Path) -> None:
    """Move a finished build folder into place, readable by all (a worker may run as another user); when another
    evaluation got there first, its copy stays."""
    os.chmod(work, 0o755)
    try:
        os.rename(work, done)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


def _cached(kind: str, salt: list[Any], argv: list[str], files: dict[str, str], env: dict[str, str],
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
            _BUILT[f"{root}/{key}"] = _build(argv, files, env, root / key)
    built = _BUILT[f"{root}/{key}"]
    if isinstance(built, str):
        raise CannotSplit(built)
    return {"argv": [a.replace("{test}", built["test"]) for a in run], "stdin": "", "reads": built["reads"],
            "entry_point": parts["entry_point"]}


def _build(argv: list[str], files: dict[str, str], env: dict[str, str], done: Path) -> dict[str, Any] | str:
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
