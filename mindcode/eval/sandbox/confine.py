"""The kernel's confinement mechanisms the sandbox uses, one function each: rlimits, no-new-privs and Landlock
(``confine``), the switch to ``nobody`` keeping only the capability to traverse (``drop_to_nobody``), an empty
network namespace (``isolate_network``). Standard library and ctypes only: this runs in the sandbox worker."""

from __future__ import annotations

import ctypes
import math
import os
import resource
import sys
from typing import Any

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


# capset's arguments, made once in the worker (a sample's process then touches fewer of its objects)
_CAP_HEADER = ctypes.byref(_CapHeader(LINUX_CAPABILITY_VERSION_3, 0))
_CAP_DATA = {ambient: ctypes.byref((_CapData * 2)(_CapData(1 << CAP_DAC_READ_SEARCH, 1 << CAP_DAC_READ_SEARCH,
                                                           1 << CAP_DAC_READ_SEARCH if ambient else 0),
                                                  _CapData(0, 0, 0)))
             for ambient in (False, True)}


def drop_to_nobody(across_exec: bool = False) -> None:
    """setuid(nobody) keeping CAP_DAC_READ_SEARCH alone (effective and permitted); ``across_exec`` makes it ambient,
    so that a toolchain it then runs can traverse into a root-owned prefix too (Landlock bounds where)."""
    _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    if _libc.capset(_CAP_HEADER, _CAP_DATA[across_exec]) != 0:
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


def landlock_ruleset(directory: str, reads: list[str], abi: int) -> int:
    """A Landlock ruleset (its fd): writes only beneath ``directory``; reads only there and beneath ``reads``; with
    ABI >= 4 no TCP bind/connect, with ABI >= 6 no abstract UNIX sockets and no signals out of the sandbox. The
    rules hold the inodes, not the paths."""
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
    return ruleset


def landlock_confine(directory: str, reads: list[str], abi: int) -> None:
    """Confine this process by ``landlock_ruleset(directory, reads, abi)``."""
    ruleset = landlock_ruleset(directory, reads, abi)
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


def set_limits(limits: dict[str, Any], timeout: float) -> None:
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # per uid, so shared by every sample running as that uid: a sample's own bound is its control group's when it
    # has one (then the caller gives a wider ``processes_per_uid``), else this
    nproc = limits.get("processes_per_uid", limits["processes"])
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def confine(workdir: str, limits: dict[str, Any], timeout: float, landlock_abi: int, reads: tuple[str, ...],
            ruleset: int | None = None) -> None:
    """rlimits, no-new-privs, and Landlock: ``ruleset`` when given (made by ``landlock_ruleset`` for ``workdir``
    beforehand), else one made here for ``workdir`` and ``reads``."""
    set_limits(limits, timeout)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if ruleset is not None:
        _syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    elif landlock_abi:
        landlock_confine(workdir, list(reads), landlock_abi)


def pid_namespace_available() -> bool:
    """Whether this process may give a child a PID namespace of its own (tried in a throw-away child)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _libc.unshare(CLONE_NEWPID) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
