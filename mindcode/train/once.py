"""Make a file or folder once per host, however many processes of a job ask for it at the same time.

The first process to take the lock (``fcntl.flock`` on ``PATH.lock``) makes ``PATH`` through a temp name renamed
into place; the others wait on the lock and then find it made. On a folder shared between hosts each host's first
process takes its turn and finds it there too. A process killed while making leaves only its temp name behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def make_once(path: Path, make: Callable[[Path], None]) -> bool:
    """``make(tmp)`` writes what belongs at ``path`` (a file or a folder) unless ``path`` exists; True if this
    process made it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return False
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}{path.suffix}"
        try:
            make(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        return True
