"""One memory + pids control group per sandbox worker, so that a sample's memory and process count are bounded for
the whole sample (every process it starts), not per process.

A worker runs one sample at a time and every process of a sample is dead before the next starts (its PID
namespace), so the worker's group is the sample's. The group is made beneath the worker's own (a child of whatever
group the evaluation runs in, so an outer limit still holds): cgroup v2 (``memory.max``, ``pids.max``) where the
unified hierarchy has both controllers, else cgroup v1's ``memory`` and ``pids`` hierarchies
(``memory.limit_in_bytes``, ``pids.max``). It needs the right to write there (root, or a delegated subtree);
without it ``SampleGroups.create`` returns None and the sandbox says so in ``protections``. Standard library only:
this runs in the worker.
"""

from __future__ import annotations

import os

ROOT = "/sys/fs/cgroup"


def _own_paths() -> dict[str, str]:
    """The worker's group in each hierarchy: {"": v2 path, "memory": v1 path, "pids": v1 path}."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _remove_stale(parent: str, prefix: str) -> None:
    """Empty groups of workers that were killed (named PREFIX-PID, the PID gone)."""
    for entry in os.listdir(parent):
        head, _, pid = entry.rpartition("-")
        if head == prefix and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(os.path.join(parent, entry))
            except OSError:
                pass


class SampleGroups:
    """The worker's groups: ``limit`` sets a sample's bounds, ``join`` moves the calling process in."""

    def __init__(self, version: str, dirs: dict[str, str]):
        self.version, self.dirs = version, dirs
        self._limits: tuple[int, int] | None = None

    @classmethod
    def create(cls, name: str) -> SampleGroups | None:
        try:
            own = _own_paths()
        except OSError:
            return None
        unified = os.path.join(ROOT, own.get("", "/").lstrip("/"))
        try:
            with open(os.path.join(unified, "cgroup.controllers")) as f:
                controllers = f.read().split()
        except OSError:
            controllers = []
        if {"memory", "pids"} <= set(controllers):
            return cls._make("v2", {"": unified}, name)
        if "memory" in own and "pids" in own:
            return cls._make("v1", {c: os.path.join(ROOT, c, own[c].lstrip("/")) for c in ("memory", "pids")}, name)
        return None

    @classmethod
    def _make(cls, version: str, parents: dict[str, str], name: str) -> SampleGroups | None:
        dirs = {}
        try:
            for controller, parent in parents.items():
                _remove_stale(parent, name.rsplit("-", 1)[0])
                if version == "v2":
                    _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +pids")
                path = os.path.join(parent, name)
                os.makedirs(path, exist_ok=True)
                dirs[controller] = path
            groups = cls(version, dirs)
            groups.limit(64, 64)  # proves the files are writable
            return groups
        except OSError:
            for path in dirs.values():
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            return None

    def limit(self, memory_mb: int, processes: int) -> None:
        if self._limits == (memory_mb, processes):
            return
        memory = str(memory_mb << 20)
        if self.version == "v2":
            _write(os.path.join(self.dirs[""], "memory.max"), memory)
            if os.path.exists(os.path.join(self.dirs[""], "memory.swap.max")):
                _write(os.path.join(self.dirs[""], "memory.swap.max"), "0")
            _write(os.path.join(self.dirs[""], "pids.max"), str(processes))
        else:
            _write(os.path.join(self.dirs["memory"], "memory.limit_in_bytes"), memory)
            _write(os.path.join(self.dirs["pids"], "pids.max"), str(processes))
        self._limits = (memory_mb, processes)

    def join(self) -> None:
        """Move the calling process (and everything it starts from now on) into the groups: the worker, once."""
        for path in self.dirs.values():
            _write(os.path.join(path, "cgroup.procs"), "0")

    def describe(self) -> str:
        return f"cgroup {self.version}: memory and processes bounded per sample"

    def remove(self) -> None:
        """Leave the groups (back to their parents) and remove them; a killed worker's are removed by the next."""
        for path in self.dirs.values():
            try:
                _write(os.path.join(os.path.dirname(path), "cgroup.procs"), "0")
                os.rmdir(path)
            except OSError:
                pass
