"""A pool of pre-started sandbox workers (``mindcode.eval.sandbox``), fed over pipes, one thread per worker."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mindcode.errors import MindcodeError


class SandboxPool:
    def __init__(self, workers: int | None = None):
        self.size = workers or os.cpu_count() or 1
        self.procs = []
        for _ in range(self.size):
            proc = subprocess.Popen([sys.executable, "-s", "-m", "mindcode.eval.sandbox"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, bufsize=1, env=_worker_env())
            hello = proc.stdout.readline()
            if not hello:
                self.close()
                raise MindcodeError("the sandbox worker failed to start (python -m mindcode.eval.sandbox)")
            self.protections = json.loads(hello)["protections"]
            self.procs.append(proc)

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[int, dict[str, Any]], None]) -> None:
        """Run tasks ``{"id", "program", "timeout", "limits"?}``; ``on_result(id, result)`` is called per task."""
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
                    line = proc.stdout.readline()
                    if not line:
                        raise MindcodeError("a sandbox worker died")
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

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_env() -> dict[str, str]:
    """A small environment: programs under test see no credentials or tokens of the caller."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    # An uninstalled checkout still needs to find mindcode.
    import mindcode

    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(mindcode.__file__)))
    return env
