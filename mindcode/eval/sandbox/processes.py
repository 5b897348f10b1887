"""Process plumbing of the sandbox worker: forking into a PID namespace, descriptors, the OOM killer's choice, and
reaping what a sample left. Standard library only: this runs in the sandbox worker."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from mindcode.eval.sandbox.confine import CLONE_NEWPID, _libc


def fork_contained(start: Callable[[], None], own_pid_ns: int | None, pid_namespace: bool) -> int:
    """Fork ``start()`` as PID 1 of a PID namespace of its own; the pid returned ends it all when killed. Where the
    worker may return to its own namespace (``own_pid_ns``: root) it forks it directly; otherwise a helper makes the
    namespace (when ``pid_namespace``)."""
    if own_pid_ns is not None:
        _libc.unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            start()
        _libc.setns(own_pid_ns, CLONE_NEWPID)  # the worker's next child starts outside that namespace
        return pid
    pid = os.fork()
    if pid == 0:
        try:
            if pid_namespace:
                _libc.unshare(CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                start()
            os.waitpid(child, 0)
        finally:
            os._exit(0)
    return pid


def own_pid_namespace() -> int | None:
    """The worker's own PID namespace (a descriptor) when it may make a PID namespace for its next child and return
    to its own after (root); tried in a throw-away child, since a worker that made one and could not return would
    fork into it from then on."""
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _libc.unshare(CLONE_NEWPID) == 0 and _libc.setns(fd, CLONE_NEWPID) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return fd
    os.close(fd)
    return None


def least_favoured() -> None:
    """Make this process (and what it starts) the OOM killer's first choice."""
    fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    os.write(fd, b"1000")
    os.close(fd)


def close_all_but(keep: set[int]) -> None:
    """Close every descriptor from 3 on except ``keep``."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def kill_descendants() -> None:
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
