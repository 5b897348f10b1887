"""C++: g++ compiles the program, whose ``main`` serves its entry point (``split.hpp``), per sample, and the test
program (the headers, the prompt's helpers, ``split.hpp``, a proxy with the prompt's signature, the test) once per
problem on the trusted side, cached in ``~/.cache/mindcode/cpp-tests``. A test that does not compile apart (an entry
point taking or returning a type ``split.hpp`` cannot pass, such as ``boost::any``) runs bigcode's way."""

from __future__ import annotations

import functools
import re
from typing import Any

from mindcode.eval.langs.base import (
    Language, Toolchain, brace_postprocess, last_identifier, source, top_level, version_of, which)
from mindcode.eval.langs.cache import built_test

LANGUAGE = Language("cpp", "C++", "main.cpp", "g++ libssl-dev", compile_timeout=60.0)
ENTRY_POINT = re.compile(r"^[^#/\n][^\n(]*?\b(\w+)\s*\([^\n]*\)\s*(?:const\s*)?\{\s*$", re.MULTILINE)
STOP_WORDS: tuple[str, ...] = ()
# The headers bigcode's harness puts before a sample.
HEADERS = ("using namespace std;", "#include<stdlib.h>", "#include<algorithm>", "#include<cmath>",
           "#include<math.h>", "#include<numeric>", "#include<stdio.h>", "#include<vector>", "#include<set>",
           "#include<map>", "#include<queue>", "#include<stack>", "#include<list>", "#include<deque>",
           "#include<boost/any.hpp>", "#include<string>", "#include<climits>", "#include<cstring>",
           "#include<iostream>", "#include<sstream>", "#include<fstream>")
FLAGS = ("-std=c++17", "-O1")


def toolchain() -> Toolchain:
    gxx = which("g++", LANGUAGE)
    version = version_of([gxx, "--version"])
    return Toolchain(LANGUAGE, [
        {"kind": "compile", "argv": [gxx, *FLAGS, LANGUAGE.source, "-o", "main", "-lcrypto", "-lssl"]},
        {"kind": "run", "argv": ["./main"]}], reads=["/usr"], version=version,
        make_test=functools.partial(_test, gxx, version, list(FLAGS)))


def _test(gxx: str, version: str, flags: list[str], parts: dict[str, str]) -> dict[str, Any]:
    """The compiled test program of one problem (cached); CannotSplit when it does not compile."""
    argv = [gxx, *flags, "test.cpp", "-o", "test", "-lcrypto", "-lssl"]
    return built_test("cpp-tests", [version, flags], argv, {"test.cpp": parts["program"]}, {}, ["{test}"], parts)


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program (headers, function, test), as bigcode's harness assembles it."""
    return "\n".join(HEADERS) + "\n" + code.split("int main")[0].strip() + "\n\n" + problem["test"]


def split_test(problem: dict[str, Any]) -> dict[str, str]:
    """The test program: the headers, the prompt's helpers, ``split.hpp``, a proxy of the entry point with the
    prompt's signature, the test."""
    head = _head(problem)
    result, params = head.group(1).strip(), head.group(2)
    names = [last_identifier(param, problem) for param in top_level(params)]
    proxy = (f"{result} {problem['entry_point']}({params}){{\n"
             f"    return mindcode_split::call<{result}>({', '.join(names)});\n}}\n")
    text = "\n".join([*HEADERS, problem["prompt"][:head.start()], source("split.hpp"), proxy, problem["test"]])
    return {"program": text, "entry_point": problem["entry_point"]}


def split_program(problem: dict[str, Any], code: str) -> str:
    """The function and a ``main`` that serves it; the declaration's signature picks the entry point among std's
    (unique, search, ...)."""
    head = _head(problem)
    entry = f"static_cast<{head.group(1).strip()} (*)({head.group(2)})>({problem['entry_point']})"
    return "\n".join([*HEADERS, code.split("int main")[0].strip(), source("split.hpp"),
                      f"int main() {{\n    return mindcode_split::serve({entry});\n}}\n"])


def postprocess(completion: str) -> str:
    return brace_postprocess(completion, STOP_WORDS)


def _head(problem: dict[str, Any]) -> re.Match:
    """The prompt's last definition of the entry point: (return type, parameters)."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^([^\n;{{}}()#]*?)\b{entry}\s*\(([^()]*)\)\s*\{{", problem["prompt"]))
    if not heads or not heads[-1].group(1).strip():
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']}")
    return heads[-1]
