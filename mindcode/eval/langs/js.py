"""JavaScript: node runs the program (``split.js candidate``) and the problem's test (``split.js test``, the
prompt's helpers and the test given as JSON on its stdin) in two processes."""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

from mindcode.eval.langs.base import Language, Toolchain, brace_postprocess, source, version_of, which

LANGUAGE = Language("js", "JavaScript", "main.js", "nodejs")
ENTRY_POINT = re.compile(r"^\s*(?:const|let|var)\s+(\w+)\s*=|^\s*function\s+(\w+)\s*\(", re.MULTILINE)
STOP_WORDS: tuple[str, ...] = ()


def toolchain() -> Toolchain:
    node = which("node", LANGUAGE, "/usr/bin/nodejs")
    bridge = source("split.js")
    # npm's global modules (`make toolchains` installs js-md5 there, which HumanEval-X's JavaScript/162 requires)
    modules = ":".join(p for p in ("/usr/lib/node_modules", "/usr/local/lib/node_modules") if os.path.isdir(p))
    run = [node, "-e", bridge, "candidate", LANGUAGE.source, "{entry_point}"]
    return Toolchain(LANGUAGE, [{"kind": "run", "argv": run, "quiet": True}],
                     make_test=functools.partial(_test, node, bridge), reads=["/usr", "/etc/ssl/openssl.cnf"],
                     version=version_of([node, "--version"]), env={"NODE_PATH": modules} if modules else {})


def _test(node: str, bridge: str, parts: dict[str, str]) -> dict[str, Any]:
    return {"argv": [node, "-e", bridge, "test"], "stdin": json.dumps(parts), "entry_point": parts["entry_point"],
            "reads": []}


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program (function + test), as bigcode's harness assembles it."""
    return code.strip() + "\n\n" + problem["test"]


def split_test(problem: dict[str, Any]) -> dict[str, str]:
    """What ``split.js test`` gets: the prelude (the prompt's code before the entry point's definition: its
    helpers), the test and the entry point."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^[ \t]*(?:(?:export\s+)?(?:const|let|var)\s+{entry}\s*=|(?:async\s+)?"
                             rf"function\s*\*?\s*{entry}\s*\()", problem["prompt"]))
    prelude = problem["prompt"][:heads[-1].start()] if heads else ""
    return {"prelude": prelude, "test": problem["test"], "entry_point": problem["entry_point"]}


def split_program(problem: dict[str, Any], code: str) -> str:
    """The candidate's program: the function alone (``split.js candidate`` serves it)."""
    return code.strip() + "\n"


def postprocess(completion: str) -> str:
    return brace_postprocess(completion, STOP_WORDS)
