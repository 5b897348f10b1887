"""What confines a sample on this machine: found once by the worker at start (``detect``), used as control data by
the sandbox (typed fields), and reported to the caller as ``describe()`` (the summary's ``protections``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

RLIMITS = ("address space", "cpu", "processes", "file size", "open files", "core")


@dataclass(frozen=True)
class Protections:
    network: str  # "namespace", "user+network namespace" or "none" (``confine.isolate_network``)
    landlock_abi: int  # 0: no Landlock
    reads_allowed: tuple[str, ...]  # what a sample's processes may read (with Landlock)
    as_nobody: bool  # root: samples run as ``nobody``, keeping only the capability to traverse
    pid_namespace: bool  # each sample is PID 1 of a namespace of its own
    pid_namespace_by_worker: bool  # the worker makes it and returns to its own (root), else a helper process does
    sample_group: str  # the control group bounding a whole sample (``SampleGroups.describe()``), or "none"

    def reading(self, paths: list[str]) -> Protections:
        """These protections with ``paths`` readable too (a toolchain's prefix)."""
        return dataclasses.replace(self, reads_allowed=tuple(sorted({*self.reads_allowed, *paths})))

    def hiding(self, paths: list[str]) -> Protections:
        """These protections without ``paths`` readable (a test program the candidate may not read)."""
        return dataclasses.replace(self, reads_allowed=tuple(p for p in self.reads_allowed if p not in paths))

    def open_gaps(self) -> list[str]:
        """What the kernel here leaves open, each in a sentence."""
        abi = self.landlock_abi
        gaps = ["chmod/chown within the sample's directory (Landlock has no right for them)"]
        if self.sample_group == "none":
            gaps.append("memory and processes are limited per process and per uid, not per sample (no writable "
                        "cgroup memory and pids controllers)")
        if abi < 3:
            gaps.append(f"truncate (Landlock ABI {abi} < 3)")
        if abi < 4:
            gaps.append(f"TCP inside the empty network namespace (Landlock ABI {abi} < 4)")
        if abi < 6:
            gaps.append(f"abstract UNIX sockets and signals to other processes (Landlock ABI {abi} < 6)")
        if not abi:
            gaps.append("reads and writes outside the sample's directory (no Landlock)")
        if not self.pid_namespace:
            gaps.append("descendants that leave the process group (no PID namespace)")
        return gaps

    def describe(self) -> dict:
        """The report: each protection in words, and what is open."""
        abi = self.landlock_abi
        return {
            "network": self.network,
            "filesystem_writes": f"landlock (ABI {abi})" if abi else "none",
            "filesystem_reads": "landlock: the interpreter's prefix, system libraries, the sample's directory" if abi
            else "none",
            "reads_allowed": list(self.reads_allowed),
            "landlock_abi": abi,
            "tcp": "landlock denies bind/connect" if abi >= 4 else "network namespace only",
            "unix_sockets_and_signals": "landlock scoped" if abi >= 6 else "not scoped",
            "privileges": "nobody (+ traverse, bounded by landlock)" if self.as_nobody else "unchanged (not root)",
            "verdict": "decided by the worker, which runs the test; the candidate has no descriptor to it",
            "test_process": "the worker: another uid than the candidate, not dumpable" if self.as_nobody else
            "the worker: not dumpable, outside the candidate's PID namespace and Landlock domain",
            "pid_namespace": self.pid_namespace,
            "pid_namespace_made_by": "the worker" if self.pid_namespace_by_worker else "a helper process",
            "rlimits": list(RLIMITS),
            "sample_group": self.sample_group,
            "process_group_kill": True,
            "stdin": "closed",
            "seccomp": "not used",
            "open": self.open_gaps(),
        }
