"""A sample's working directory: made, filled (``plant``) and emptied by descriptor only, never through a symlink a
sample may have left in its place. Standard library only: this runs in the sandbox worker."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from mindcode.eval.sandbox.confine import NOBODY, landlock_ruleset
from mindcode.eval.sandbox.protections import Protections


class SampleDir:
    """The directory a Python sample runs in: one per worker, emptied after each sample, so that its Landlock ruleset
    (which holds the directory's inode) is made once, not per sample (~0.5 ms each). The worker keeps it open and
    works in it by descriptor only: a sample (or, without Landlock, another worker's) may rename it and leave a
    symlink in its place."""

    def __init__(self, protections: Protections):
        self.path = tempfile.mkdtemp(prefix="mindcode-sample-")  # the worker's own, mode 0700, until the chown
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        abi = protections.landlock_abi
        self.ruleset = landlock_ruleset(self.path, list(protections.reads_allowed), abi) if abi else None
        if protections.as_nobody:
            os.fchown(self.fd, NOBODY, NOBODY)

    def empty(self) -> bool:
        """Give the directory back its mode and remove what the sample left in it (its processes are gone by now);
        False when it cannot be emptied: it is then discarded, and the next sample gets a new one."""
        try:
            os.fchmod(self.fd, 0o700)
            remove_entries(self.fd)
            return True
        except Exception:  # noqa: BLE001 - never carry a half-emptied directory to the next sample
            self.discard()
            return False

    def discard(self) -> None:
        """Remove the directory as far as may be, and close it."""
        try:
            remove_entries(self.fd)
            if os.path.samestat(os.lstat(self.path), os.fstat(self.fd)):  # the name is still the directory's
                os.rmdir(self.path)
        except Exception:  # noqa: BLE001 - what cannot be removed stays, in a directory no sample uses again
            pass
        if self.ruleset is not None:
            os.close(self.ruleset)
        os.close(self.fd)


def remove_entries(top: int) -> None:
    """Empty the directory open as ``top``, by descriptor, never through a symlink and without recursion: each
    subdirectory gets its rights back (a sample of the worker's own uid may have taken them away), its entries are
    moved up into ``top`` and it is removed, so a tree of any depth takes two descriptors."""
    moved = 0
    while entries := list(os.scandir(top)):
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.name, dir_fd=top)
                continue
            sub = _writable_dir(top, entry.name)
            try:
                for inner in list(os.scandir(sub)):
                    if inner.is_dir(follow_symlinks=False):
                        os.close(_writable_dir(sub, inner.name))  # moving a directory rewrites its ".."
                    while True:  # to a name no entry of ``top`` has
                        moved += 1
                        try:
                            os.rename(inner.name, f".mindcode-{moved}", src_dir_fd=sub, dst_dir_fd=top)
                            break
                        except OSError as exc:
                            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                                raise
            finally:
                os.close(sub)
            os.rmdir(entry.name, dir_fd=top)


def _writable_dir(parent: int, name: str) -> int:
    """The directory ``name`` beneath ``parent`` (never a symlink), made ``0700``, open for reading. One without
    rights can be opened with ``O_PATH`` only, and chmodded through ``/proc/self/fd``."""
    handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.chmod(f"/proc/self/fd/{handle}", 0o700)
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=handle)
    finally:
        os.close(handle)


def program_dir(protections: Protections) -> str:
    """A fresh directory for one compiled sample, the candidate's (``nobody``'s as root)."""
    workdir = tempfile.mkdtemp(prefix="mindcode-sample-")
    if protections.as_nobody:
        os.chown(workdir, NOBODY, NOBODY)
    return workdir


def plant(seed: str, workdir: str, linked: bool) -> None:
    """Put a copy of ``seed`` in the sample's directory. As root: its directories made anew and owned by the
    candidate, its files hard links to the seed's own, which stay root's and read-only to the candidate (it may
    replace one in its directory, never change the seed's); otherwise a copy of every file."""
    if not linked:
        shutil.copytree(seed, workdir, dirs_exist_ok=True, symlinks=True)
        return
    for root, dirs, files in os.walk(seed):
        target = os.path.join(workdir, os.path.relpath(root, seed))
        for name in dirs:
            os.mkdir(os.path.join(target, name), 0o755)
            os.chown(os.path.join(target, name), NOBODY, NOBODY)
        for name in files:
            os.link(os.path.join(root, name), os.path.join(target, name))
