"""Java: javac compiles the program, whose ``Main`` serves the entry point (``split.java``), per sample, and the
test program's classes (the prompt's class up to the entry point, a proxy method, ``split.java``, the test's
``Main``) once per problem on the trusted side, cached in ``~/.cache/mindcode/java-tests``; both JVMs may open
``java.io`` to reach fds 3 and 4."""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from mindcode.eval.langs.base import (
    Language, Toolchain, cut_after_function, last_identifier, outside_links, source, top_level, up_to_last_brace,
    version_of, which)
from mindcode.eval.langs.cache import built_test

LANGUAGE = Language("java", "Java", "Main.java", "default-jdk-headless", compile_timeout=60.0, processes=256)
ENTRY_POINT = re.compile(r"^[^/\n][^\n(]*?\b(\w+)\s*\([^\n]*\)\s*(?:throws[^\n{]*)?\{\s*$", re.MULTILINE)
STOP_WORDS: tuple[str, ...] = ()
EMPTY_MAIN = "public class Main {\n    }"
JVM_FLAGS = ("-Xmx1g", "-Xss16m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")  # small reservations, few threads


def toolchain() -> Toolchain:
    javac = which("javac", LANGUAGE)
    java = os.path.join(os.path.dirname(javac), "java")
    home = os.path.dirname(os.path.dirname(javac))
    compile_flags = [*(f"-J{f}" for f in JVM_FLAGS), "-encoding", "UTF-8"]
    run = [java, *JVM_FLAGS, "--add-opens", "java.base/java.io=ALL-UNNAMED"]
    version = version_of([javac, "-version"])
    return Toolchain(LANGUAGE, [
        {"kind": "compile", "argv": [javac, *compile_flags, LANGUAGE.source]},
        {"kind": "run", "argv": [*run, "-cp", ".", "Main"]}],
        reads=["/usr", *outside_links(f"{home}/lib", f"{home}/conf", f"{home}/conf/security")],
        version=version, make_test=functools.partial(_test, javac, version, compile_flags, run))


def _test(javac: str, version: str, compile_flags: list[str], run: list[str], parts: dict[str, str]) -> dict:
    """The test program of one problem (``javac -d test``, cached: its classes); CannotSplit when it does not
    compile. ``run``: the JVM's command line up to the class path."""
    argv = [javac, *compile_flags, "-d", "test", "Main.java"]
    return built_test("java-tests", [version], argv, {"Main.java": parts["program"]}, {},
                     [*run, "-cp", "{test}", "Main"], parts)


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program (function, test), as bigcode's harness assembles it."""
    return code.replace(EMPTY_MAIN, "").strip() + "\n\n" + problem["test"]


def split_test(problem: dict[str, Any]) -> dict[str, str]:
    """The test program: the prompt's class up to the entry point, a proxy method with its signature,
    ``split.java``, the test."""
    head, result, params = _head(problem)
    names = [last_identifier(param, problem) for param in top_level(params)]
    proxy = (f"    public {result} {problem['entry_point']}({params}) {{\n"
             f"        return ({result}) MindcodeSplit.call(new Object[] {{{', '.join(names)}}});\n    }}\n}}\n")
    return {"program": "\n".join([problem["prompt"][:head], proxy, source("split.java"), problem["test"]]),
            "entry_point": problem["entry_point"]}


def split_program(problem: dict[str, Any], code: str) -> str:
    """The function, and a ``Main`` that calls it with the declaration's types, as the test would call it."""
    _, result, params = _head(problem)
    casts = [f"({_type(param, problem)}) a[{i}]" for i, param in enumerate(top_level(params))]
    serve = (f"public class Main {{\n    public static void main(String[] args) throws Exception {{\n"
             f"        Solution s = new Solution();\n        MindcodeSplit.serve(a -> {{\n"  # widened as in one program
             f"            {result} r = s.{problem['entry_point']}({', '.join(casts)});\n            return r;\n"
             f"        }});\n    }}\n}}\n")
    return "\n".join([code.replace(EMPTY_MAIN, "").strip(), source("split.java"), serve])


def postprocess(completion: str) -> str:
    text, closed = cut_after_function(completion, STOP_WORDS, depth=2)  # the prompt opens the class and the method
    if closed:
        return text
    if "public static void main" in text:
        text = text[:text.find("public static void main")].rstrip() + "\n}"
    return up_to_last_brace(text)


def _head(problem: dict[str, Any]) -> tuple[int, str, str]:
    """Where the prompt's last definition of the entry point starts, its result type and its parameters."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^[ \t]*public\s+(?:static\s+)?([\w<>\[\]?,. ]+?)\s+{entry}\s*\(([^()]*)\)\s*"
                             rf"(?:throws\s+[\w.,\s]+)?\{{", problem["prompt"]))
    if not heads or heads[-1].group(1) == "void" or "..." in heads[-1].group(2):
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']} that "
                         "returns a value and takes a fixed number of arguments")
    return heads[-1].start(), heads[-1].group(1).strip(), heads[-1].group(2)


def _type(param: str, problem: dict[str, Any]) -> str:
    """A parameter's type: ``final List<Integer> xs`` -> ``List<Integer>``."""
    text = param.strip()
    return re.sub(r"^final\s+", "", text[:text.rfind(last_identifier(param, problem))].strip())
