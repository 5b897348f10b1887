"""The output folder of a multi-process job must be one folder for every rank: rank 0 renames the step checkpoints
every rank writes into, and merges their slices into the final export. On several nodes that means a shared
filesystem; this check makes a node-local folder fail at start, in one line, instead of at the first checkpoint.

Every rank writes ``OUTPUT_DIR/.ranks/rank_N`` (its host name); rank 0 waits until it sees every rank's marker,
written since the job started, or names the ranks it cannot see.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from mindcode.errors import MindcodeError

TIMEOUT_S = float(os.environ.get("MINDCODE_SHARED_OUTPUT_TIMEOUT", 120))
STALE_S = 600  # a marker older than the job's start by more than this is a previous run's


def check_shared_output(out: Path, rank: int, world_size: int, timeout: float = TIMEOUT_S) -> None:
    if world_size == 1:
        return
    folder = out / ".ranks"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".rank_{rank}.{os.getpid()}"
    tmp.write_text(socket.gethostname() + "\n")
    os.replace(tmp, folder / f"rank_{rank}")
    if rank != 0:
        return
    since = time.time() - STALE_S
    deadline = time.monotonic() + timeout
    while True:
        missing = [r for r in range(world_size) if not _fresh(folder / f"rank_{r}", since)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if missing:
        raise MindcodeError(f"{out}: rank 0 ({socket.gethostname()}) does not see the output of rank"
                            f"{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing[:8]))} after "
                            f"{timeout:.0f} s: training.output_dir must be on a filesystem every node shares")


def _fresh(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since
    except FileNotFoundError:
        return False
