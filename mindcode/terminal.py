"""What reaches the terminal: mindcode's own lines and progress bars; the frameworks' logs go to a file.

While a verb runs, ``quiet(log_dir)`` points file descriptors 1 and 2, Python's ``sys.stdout``/``sys.stderr``, the
``warnings`` module, GLOG (MindSpore's C++ logs) and MindFormers' log folder at ``LOG_DIR``; mindcode writes to
``stream()``, a copy of the terminal's stderr, and its progress bars come from ``progress_bar``. ``--debug`` or
``MINDCODE_LOG=info`` leaves everything on the terminal (the CLI then does not call ``quiet``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

_TERMINAL: TextIO | None = None
LOG_FILE = "frameworks.log"


def stream() -> TextIO:
    """Where mindcode's own human-facing lines go (the terminal, even while framework output is captured)."""
    return _TERMINAL or sys.stderr


def interactive() -> bool:
    return stream().isatty()


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    return tqdm(*args, file=stream(), **kwargs)


def say(text: str) -> None:
    print(text, file=stream(), flush=True)


@contextlib.contextmanager
def quiet(log_dir: Path) -> Iterator[Path]:
    """Framework output into ``log_dir/frameworks.log`` for the duration (yields the file)."""
    global _TERMINAL
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_FILE
    for key, value in (("GLOG_logtostderr", "1"), ("GLOG_stderrthreshold", "2"),
                       ("LOG_MF_PATH", str(log_dir / "mindformers")), ("LOCAL_DEFAULT_PATH", str(log_dir / "output"))):
        os.environ.setdefault(key, value)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_err), "w", buffering=1)
    log = open(path, "a", buffering=1)
    previous = sys.stdout, sys.stderr, _TERMINAL
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr, _TERMINAL = log, log, terminal
    logging.captureWarnings(True)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            yield path
        finally:
            sys.stdout.flush()
            log.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            sys.stdout, sys.stderr, _TERMINAL = previous
            logging.captureWarnings(False)
            terminal.close()
            log.close()
