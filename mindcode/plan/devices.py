"""Devices ``mindcode plan`` knows by name: their memory, what the runtime keeps for itself, and the default per
backend. Capacities are the memory the driver reports (GiB = 2**30 bytes)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mindcode.errors import MindcodeError

GIB = 2**30


@dataclass(frozen=True)
class Device:
    name: str
    kind: str  # cuda | ascend | cpu: which precision and kernels apply (mindcode.precision)
    capacity: float  # bytes
    reserved: float  # bytes the runtime takes before any tensor (context, workspaces, communication buffers)
    what: str
    per_node: int = 8  # devices in one server (Atlas 800T A2, DGX/HGX H100: 8)
    host_per_node: float = 1024 * GIB  # the server's host memory (both servers ship with 1-2 TB; 1 TiB assumed)


DEVICES = {
    # MindFormers' CodeLlama YAMLs give MindSpore max_device_memory 58GB of a 910B's 64 GB; the rest is its runtime's
    "ascend-910b": Device("ascend-910b", "ascend", 64 * GIB, 6 * GIB, "Atlas 800T A2 / 900 A2 (Ascend 910B), 64 GB"),
    # CUDA context, cuBLAS workspaces, NCCL buffers and allocator slack: ~2 GiB
    "h100-80g": Device("h100-80g", "cuda", 79.6 * GIB, 2 * GIB, "NVIDIA H100 80GB"),
    "h200-141g": Device("h200-141g", "cuda", 139.8 * GIB, 2 * GIB, "NVIDIA H200 141GB"),
    "a100-80g": Device("a100-80g", "cuda", 79.2 * GIB, 2 * GIB, "NVIDIA A100 80GB"),
    "a100-40g": Device("a100-40g", "cuda", 39.4 * GIB, 2 * GIB, "NVIDIA A100 40GB"),
}
DEFAULT = {"ascend": "ascend-910b", "gpu": "h100-80g"}


def host_memory() -> float:
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def get_device(name: str | None, backend: str) -> Device:
    name = name or DEFAULT[backend]
    if name == "cpu":
        return Device("cpu", "cpu", host_memory(), 1 * GIB, "this host's memory (one process per rank shares it)",
                      per_node=1, host_per_node=host_memory())
    if name not in DEVICES:
        raise MindcodeError(f"--device {name!r}; known: {', '.join([*DEVICES, 'cpu'])}")
    return DEVICES[name]


def detect_device(backend: str) -> Device | None:
    """The accelerator this host would run ``backend`` on (None on a CPU-only host: nothing to check there)."""
    from backends import get_backend

    return get_backend(backend).accelerator()
