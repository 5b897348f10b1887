"""A compiled (or JavaScript) sample: a forked *program process* of its own writes the files and runs the steps
(compile, run) as the candidate, each PID 1 of a PID namespace of its own with its own timeout, and is killed with
its group at the task's timeout. The verdict is the run's exit status (bigcode's), except where the run step names a
test process (every language's, ``langs/``): then the candidate serves calls of its entry point and a second,
trusted process runs the problem's test against it and decides, writing its verdict on a pipe the candidate never
holds, from outside the candidate's Landlock domain."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import time
from typing import TYPE_CHECKING, Any

from mindcode.eval.sandbox.confine import CLONE_NEWPID, PR_SET_PDEATHSIG, _libc, confine, drop_to_nobody
from mindcode.eval.sandbox.processes import least_favoured
from mindcode.eval.sandbox.protections import Protections
from mindcode.eval.sandbox.workdir import plant

if TYPE_CHECKING:
    from mindcode.eval.sandbox.worker import Worker


def _program_process(worker: Worker, task: dict[str, Any], workdir: str, result_fd: int,
                     limits: dict[str, Any]) -> None:
    """The forked process of a compiled (or JavaScript) sample: runs its steps, writes the verdict; never returns."""
    os.setsid()
    if worker.cpus:  # compilers run threads
        os.sched_setaffinity(0, worker.cpus)
    if worker.groups:  # the OOM killer of the group takes the sample's processes first
        least_favoured()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(workdir)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.write(result_fd, _run_program(task, workdir, limits, worker.protections).encode("utf-8", "replace")[:4000])
    os._exit(0)


def _run_program(task: dict[str, Any], workdir: str, limits: dict[str, Any], protections: Protections) -> str:
    """A compiled (or not Python) program: write its files, run each step (compile, run) as the candidate, in a PID
    namespace of its own and with its own timeout; the verdict comes from the steps' exit statuses, read here."""
    if task.get("seed"):  # a warm build cache, the candidate's to use and extend
        plant(task["seed"], workdir, linked=protections.as_nobody)
    for name, text in task["files"].items():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
    protections = protections.reading(task.get("reads", []))
    confine(workdir, {**limits, "processes": limits["processes"] + 4}, 4 * task["timeout"], protections.landlock_abi,
            protections.reads_allowed)
    for step in task["steps"]:
        if "test" in step:
            return _run_split(step, workdir, limits, protections, task.get("env", {}))
        status, output = _run_step(step, workdir, limits, protections, task.get("env", {}))
        if status == "timed out":
            return "timed out" if step["kind"] == "run" else f"failed: compilation timed out ({step['timeout']} s)"
        if status != 0:
            how = f"exit status {status}" if isinstance(status, int) else status
            if step["kind"] == "compile":
                return f"failed: compilation error ({how}): {output}"
            return f"failed: {how}: {output}"
        if step.get("quiet") and output:  # bigcode's rule for JavaScript: console.assert only prints
            return f"failed: the program wrote output: {output}"
    return "passed"


def _spawn(argv: list[str], workdir: str, limits: dict[str, Any], protections: Protections, env: dict[str, str],
           fds: dict[int, int], timeout: float, candidate: bool = True) -> int:
    """Fork ``argv`` as PID 1 of a PID namespace (and process group) of its own, with ``fds`` (target: source) and
    nothing else open. ``candidate``: confined again (CPU seconds: 4 x ``timeout``, for compilers' threads) and run
    as the candidate; else a trusted process of the sample (its test) in the program process's own Landlock domain
    and limits, run in ``/``."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            if protections.pid_namespace:
                _libc.unshare(CLONE_NEWPID)
            child = os.fork()  # PID 1 of the new namespace: everything it leaves dies with it
            if child:
                os.closerange(0, 65536)  # it holds no pipe end open past the process's own
                _, status = os.waitpid(child, 0)
                os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
            high = {target: fcntl.fcntl(source, fcntl.F_DUPFD, max(fds) + 1) for target, source in fds.items()}
            for target, source in high.items():
                os.dup2(source, target)
            os.closerange(max(fds) + 1, 65536)
            if candidate:
                confine(workdir, limits, 4 * timeout, protections.landlock_abi, protections.reads_allowed)
                if protections.as_nobody:
                    drop_to_nobody(across_exec=True)
            else:
                os.chdir("/")  # no module or file of the candidate's directory is the test's by accident
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
            os.execve(argv[0], argv, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
                                      **{k: v.replace("{workdir}", workdir) for k, v in env.items()}})
        except BaseException as exc:
            os.write(2, f"cannot run {argv[0]}: {exc}".encode())
        finally:
            os._exit(127)
    return pid


def _wait(pid: int, timeout: float) -> int | str:
    """The exit status of a spawned process (or "signal X"), or "timed out" after killing its group."""
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], max(timeout, 0))
    os.close(pidfd)
    if not ready:
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not ready:
        return "timed out"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if code > 128 and code - 128 < signal.NSIG:
        try:
            return f"signal {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return code


def _log_tail(log: str, workdir: str) -> str:
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - 1000), os.SEEK_SET)
        output = os.read(fd, 1000).decode("utf-8", "replace").replace(workdir + "/", "").strip()  # stable text
        os.close(fd)
    except OSError:
        output = ""
    return output


def _run_step(step: dict[str, Any], workdir: str, limits: dict[str, Any], protections: Protections,
              env: dict[str, str]) -> tuple[int | str, str]:
    """Run ``step["argv"]`` as the candidate: (exit status or "signal X" or "timed out", the tail of its output)."""
    log = f".{step['kind']}.log"
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    pid = _spawn(step["argv"], workdir, limits, protections, env, {1: out, 2: out}, step["timeout"])
    os.close(out)
    status = _wait(pid, step["timeout"])
    return status, _log_tail(log, workdir)


def _run_split(step: dict[str, Any], workdir: str, limits: dict[str, Any], protections: Protections,
               env: dict[str, str]) -> str:
    """A program and its test in two processes (``split.js``, ``split.hpp``): the candidate runs the program and
    serves calls of its entry point on fds 3 and 4; the test process (trusted: the problem's test; ``stdin``, its
    text for node; its own ``reads``, which the candidate may not read) calls it through them, its output on a pipe
    only it holds; the sample passes when the test process exits 0."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    stdin_r, stdin_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    out = os.open(".run.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    own = protections.hiding(step["test"]["reads"])
    candidate = _spawn(step["argv"], workdir, limits, own, env, {1: out, 2: out, 3: requests_r, 4: replies_w},
                       step["timeout"])  # it may not read the test program
    test = _spawn(step["test"]["argv"], workdir, limits, protections, {},
                  {0: stdin_r, 1: verdict_w, 2: verdict_w, 3: replies_r, 4: requests_w}, step["timeout"],
                  candidate=False)
    for fd in (out, requests_r, requests_w, replies_r, replies_w, stdin_r, verdict_w):
        os.close(fd)
    deadline = time.monotonic() + step["timeout"]
    try:
        data = step["test"]["stdin"].encode()
        while data:
            data = data[os.write(stdin_w, data):]
    except BrokenPipeError:
        pass
    os.close(stdin_w)
    text = b""
    while (left := deadline - time.monotonic()) > 0 and select.select([verdict_r], [], [], left)[0]:
        chunk = os.read(verdict_r, 65536)
        if not chunk:
            break
        text = (text + chunk)[:4000]
    os.close(verdict_r)
    status = _wait(test, deadline - time.monotonic())
    try:
        os.killpg(candidate, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(candidate, 0)
    verdict = text.decode("utf-8", "replace").replace(workdir + "/", "").strip()
    if status == "timed out":
        return "timed out"
    if status != 0:
        how = f"exit status {status}" if isinstance(status, int) else status
        return verdict if verdict.startswith("failed: ") else f"failed: {how}: {verdict}"
    output = _log_tail(".run.log", workdir)
    if step.get("quiet") and output:  # bigcode's rule for JavaScript, kept for the program's own output
        return f"failed: the program wrote output: {output}"
    return "passed"


def run(worker: Worker, task: dict[str, Any], workdir: str, limits: dict[str, Any]) -> str:
    """The verdict of a compiled sample, run in ``workdir`` by a forked process of its own, killed with its group at
    the task's timeout."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _program_process(worker, task, workdir, write_fd, limits)
        finally:
            os._exit(70)
    os.close(write_fd)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], task["timeout"])
    try:
        os.killpg(pid, signal.SIGKILL)  # the whole group, whether it finished or not
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    message = b""
    while len(message) < 4096 and (chunk := os.read(read_fd, 4096)):
        message += chunk
    os.close(read_fd)
    if not ready:
        return "timed out"
    if message and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return message.decode("utf-8", "replace")
    how = (f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
           else f"signal {signal.Signals(os.WTERMSIG(status)).name}")
    return f"error: the sample's process ended without a verdict ({how})"


