"""A pool of pre-started sandbox workers (``mindcode.eval.sandbox.worker``), fed over pipes, one thread per worker."""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mindcode.errors import MindcodeError

READ_MARGIN_S = 30.0  # a worker answers within a task's timeout plus this, or it is replaced


class SandboxPool:
    def __init__(self, workers: int | None = None, user: int | None = None):
        """``user``: the workers become this uid once started (root only; the sandbox then works as it does for a
        normal user, with the interpreter's modules loaded before the switch)."""
        self.size = workers or os.cpu_count() or 1
        self.user = user
        self.procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._cpus = sorted(os.sched_getaffinity(0))  # worker i runs its Python samples on core i (mod the cores)
        # the workers' sample directories go in here (their TMPDIR), removed with the pool, a killed worker's too;
        # a sample's uid may pass through it to its own directory, not list it
        self.tmp = tempfile.mkdtemp(prefix="mindcode-pool-")
        os.chmod(self.tmp, 0o711)
        if user is not None:
            os.chown(self.tmp, user, user)
        try:  # all started at once, then each one's hello awaited
            for i in range(self.size):
                self.procs.append(self._spawn(self._cpus[i % len(self._cpus)]))
            for proc in self.procs:
                self._greet(proc)
        except BaseException:
            self.close()
            raise

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[int, dict[str, Any]], None]) -> None:
        """Run tasks ``{"id", "candidate", "prelude"?, "test"?, "entry_point"?, "timeout", "limits"?}`` (see
        ``mindcode.eval.sandbox.worker``); ``on_result(id, result)`` is called per task. A worker that does not
        answer within the task's timeout plus a margin is killed and replaced, and the task reported as timed out."""
        todo: queue.Queue = queue.Queue()
        for task in tasks:
            todo.put(task)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def feed(proc: subprocess.Popen) -> None:
            try:
                while True:
                    try:
                        task = todo.get_nowait()
                    except queue.Empty:
                        return
                    proc.stdin.write(json.dumps(task) + "\n")
                    proc.stdin.flush()
                    ready, _, _ = select.select([proc.stdout], [], [], task["timeout"] + READ_MARGIN_S)
                    line = proc.stdout.readline() if ready else ""
                    if not line:  # hung or dead: it is replaced, and the sample did not pass
                        proc = self._replace(proc)
                        result = {"id": task["id"], "result": "timed out", "passed": False,
                                  "seconds": task["timeout"] + READ_MARGIN_S}
                    else:
                        result = json.loads(line)
                    with lock:
                        on_result(result.pop("id"), result)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=feed, args=(p,), daemon=True) for p in self.procs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _spawn(self, cpu: int) -> subprocess.Popen:
        user = ["--user", str(self.user)] if self.user is not None else []
        argv = [sys.executable, "-s", "-m", "mindcode.eval.sandbox.worker", "--cpu", str(cpu), *user]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                env=_worker_env(self.tmp))

    def _greet(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Wait for the worker's first line: it is ready, with what protections."""
        hello = proc.stdout.readline()
        if not hello:
            raise MindcodeError("the sandbox worker failed to start (python -m mindcode.eval.sandbox.worker)")
        self.protections = json.loads(hello)["protections"]
        return proc

    def _replace(self, proc: subprocess.Popen) -> subprocess.Popen:
        proc.kill()
        proc.wait()
        with self._lock:
            index = self.procs.index(proc)
        new = self._greet(self._spawn(self._cpus[index % len(self._cpus)]))
        with self._lock:
            self.procs[index] = new
        return new

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_env(tmp: str) -> dict[str, str]:
    """A small environment: programs under test see no credentials or tokens of the caller."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["TMPDIR"] = tmp
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"  # numpy is preloaded: no BLAS threads to fork
    # An uninstalled checkout still needs to find mindcode.
    import mindcode

    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(mindcode.__file__)))
    return env
