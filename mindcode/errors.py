"""The one exception type the CLI shows as a single clear line, and how any other error becomes one line too."""

from __future__ import annotations

import re
import traceback

# MindSpore's log prefix, e.g. "[ERROR] ME(1234,7f3a,python):2026-12-01-10:00:00.123.456 [file.cc:12] Func] "
_MS_PREFIX = re.compile(r"^\[[A-Z]+\] [A-Z]+\([^)]*\):\S+ \[[^\]]*\] (?:\S+\] )?")
_NOISE = ("---", "- C++ Call Stack", "- Framework Unexpected", "- The Traceback", "For more details", "(See file")


class MindcodeError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name. The message says what and where."""


def one_line(exc: BaseException) -> str:
    """``exc`` as one non-empty line: mindcode's own message as it is; a framework's reduced to its meaningful
    line (MindSpore's multi-line reports lose their log prefixes and C++ stacks), with its type and where it came
    from when it says nothing."""
    lines = []
    for raw in str(exc).splitlines():
        line = _MS_PREFIX.sub("", raw.strip()).strip()
        if line and not line.startswith(_NOISE):
            lines.append(line)
    if isinstance(exc, (MindcodeError, OSError)) and lines:
        return lines[0]
    if not lines:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        return f"{type(exc).__name__} (no message){where} (run with --debug for the traceback)"
    return f"{type(exc).__name__}: {lines[0]} (run with --debug for the traceback)"
