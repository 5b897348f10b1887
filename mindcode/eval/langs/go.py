"""Go: ``go test -c`` builds the program, whose ``TestMain`` serves its entry point (``split.go``), per sample, and
the test binary (the test setup, the prompt's helpers, a proxy, ``split.go``, the test) once per problem on the
trusted side, cached in ``~/.cache/mindcode/go-tests``; each sample starts from a warm build cache (testify and
``split.go``'s packages compiled once). bigcode's way: the packages a sample uses are imported for it."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mindcode.eval.langs.base import (
    Language, MissingToolchain, Toolchain, brace_postprocess, cache_dir, publish, source, top_level, version_of, which)
from mindcode.eval.langs.cache import built_test

LANGUAGE = Language("go", "Go", "main_test.go", "golang-go golang-github-stretchr-testify-dev", compile_timeout=60.0,
                    processes=256)
ENTRY_POINT = re.compile(r"^\s*func\s+(\w+)\s*\(", re.MULTILINE)
STOP_WORDS = ("\n//", "\nfunc main(", "struct", "\nfunc")  # bigcode's
# The packages bigcode's harness imports when a sample uses them.
PACKAGES = ("math", "strings", "fmt", "strconv", "time", "bytes", "regexp", "sort", "math/rand", "crypto/md5")
GO_PATH = "/usr/share/gocode"  # Debian's Go libraries (testify), used in GOPATH mode
BASIC = {"bool", "string", "byte", "rune", "float32", "float64", "interface{}", "any",
         *(f"{sign}int{bits}" for sign in ("", "u") for bits in ("", "8", "16", "32", "64"))}


def toolchain() -> Toolchain:
    go = which("go", LANGUAGE)
    if not os.path.isdir(f"{GO_PATH}/src/github.com/stretchr/testify/assert"):
        raise MissingToolchain(f"testify not found in {GO_PATH}: go needs Debian's {LANGUAGE.packages} "
                               "(make toolchains)")
    env = {"GO111MODULE": "off", "GOPATH": GO_PATH, "GOROOT": os.path.dirname(os.path.dirname(go)),
           "GOCACHE": "{workdir}/gocache", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off"}
    version = version_of([go, "version"])
    return Toolchain(LANGUAGE, [
        {"kind": "compile", "argv": [go, "test", "-c", "-o", "main.test", "-vet=off", LANGUAGE.source]},
        {"kind": "run", "argv": ["./main.test", "-test.count=1"]}],
        reads=["/usr"], env=env, seed=_warm_cache(go, version, env), version=version,
        make_test=functools.partial(_test, go, version, env))


def _test(go: str, version: str, env: dict[str, str], parts: dict[str, str]) -> dict[str, Any]:
    """The test binary of one Go problem (``go test -c``, cached; its build cache is the trusted side's own);
    CannotSplit when it does not compile."""
    root = cache_dir("go-tests")
    env = {**env, "GOCACHE": str(root / "gocache"), "HOME": str(root)}
    argv = [go, "test", "-c", "-o", "test", "-vet=off", "main_test.go"]
    return built_test("go-tests", [version], argv, {"main_test.go": parts["program"]}, env,
                     ["{test}", "-test.count=1"], parts)


def _warm_cache(go: str, version: str, env: dict[str, str]) -> str:
    """A build cache with testify and the packages of ``split.go`` compiled (trusted, once per Go version): each
    sample starts from a copy of it rather than compiling them again (2.4 s -> 0.4 s a sample)."""
    imports, body = bridge()
    root = cache_dir("go")
    seed = root / hashlib.sha256((version + imports).encode()).hexdigest()[:16]
    if (seed / "gocache").is_dir():
        return str(seed)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root))
    test = 'import (\n\t"testing"\n\t"github.com/stretchr/testify/assert"\n)\n'
    test += f"{imports}\nfunc TestWarm(t *testing.T) {{\n\tassert.Equal(t, 1, 1)\n}}\n"
    (work / "warm_test.go").write_text(f"package main\n\n{test}{body}")
    out = subprocess.run([go, "test", "-count=1", "-vet=off", "warm_test.go"], cwd=work, capture_output=True,
                         text=True, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(work),
                              **{k: v.replace("{workdir}", str(work)) for k, v in env.items()}})
    (work / "warm_test.go").unlink()
    if out.returncode != 0:
        raise MissingToolchain(f"go could not build testify: {(out.stderr or out.stdout).strip()[-300:]}")
    publish(work, seed)
    return str(seed)


@functools.lru_cache(maxsize=None)
def bridge() -> tuple[str, str]:
    """``split.go`` as the two parts that go into a program: its import declaration and its body."""
    text = source("split.go")
    start = text.index("\nimport (")
    end = text.index("\n)\n", start) + 3
    return text[start:end].strip() + "\n", text[end:].strip() + "\n"


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program, as bigcode's harness assembles it: the test setup, the packages the code uses imported,
    the code without the problem's own import block, the test."""
    if problem.get("import"):
        code = code.replace(problem["import"], "")
    setup = problem.get("test_setup", "")
    # an import both the setup and the sample make is a compile error: keep the sample's
    setup = "\n".join(line for line in setup.splitlines()
                      if not (line.strip().startswith('"') and line.strip() in code)) + "\n"
    if "package main" in setup:
        code = code.replace("package main", "")
    whole = setup + code + "\n" + problem["test"]
    return setup + _imports(whole, whole) + code + "\n\n" + problem["test"]


def split_test(problem: dict[str, Any]) -> dict[str, str]:
    """The test binary's program: the test setup (the imports it uses), ``split.go``'s imports, the prompt's
    helpers, a proxy of the entry point with the prompt's signature, the test, ``split.go``. ValueError for a type
    ``split.go`` cannot pass or a parameter without a name."""
    head, params, result = _head(problem)
    names = [re.match(r"\s*([A-Za-z_]\w*)", param).group(1) for param in top_level(params)]
    if "_" in names:
        raise ValueError(f"{problem['task_id']}: a parameter without a name in {problem['entry_point']}")
    proxy = (f"func {problem['entry_point']}({params}) {result} {{\n    var mindcodeResult {result}\n"
             f"    mindcodeSplitCall({problem['entry_point']}, &mindcodeResult"
             f"{''.join(', &' + name for name in names)})\n    return mindcodeResult\n}}\n")
    imports, body = bridge()
    prelude = _code(problem, problem["prompt"][:head])
    text = "\n".join([prelude, proxy, problem["test"]])
    setup = _used_imports(problem.get("test_setup", ""), text)  # the sample's packages are not the test's
    setup = setup if "package main" in setup else "package main\n" + setup
    return {"program": "\n".join([setup, imports, _imports(setup + text, text), text, body]),
            "entry_point": problem["entry_point"]}


def split_program(problem: dict[str, Any], code: str) -> str:
    """A test binary whose ``TestMain`` serves the entry point instead of running tests."""
    _head(problem)
    imports, body = bridge()
    code = _code(problem, code)
    serve = f"func TestMain(m *mindcodeTesting.M) {{\n    mindcodeSplitServe({problem['entry_point']})\n}}\n"
    return "\n".join(["package main", imports, 'import mindcodeTesting "testing"', _imports(code, code), code, body,
                      serve])


def postprocess(completion: str) -> str:
    return brace_postprocess(completion, STOP_WORDS)


def _head(problem: dict[str, Any]) -> tuple[int, str, str]:
    """Where the prompt's last definition of the entry point starts, its parameters and its (one) result."""
    entry = re.escape(problem["entry_point"])
    heads = list(re.finditer(rf"(?m)^func\s+{entry}\s*\(([^()]*)\)\s*(.*?)\s*\{{\s*$", problem["prompt"]))
    if not heads:
        raise ValueError(f"{problem['task_id']}: the prompt has no definition of {problem['entry_point']}")
    params, result = heads[-1].group(1), heads[-1].group(2).strip()
    if not result or result.startswith("("):
        raise ValueError(f"{problem['task_id']}: {problem['entry_point']} does not return one value")
    for param in [*top_level(params), f"result {result}"]:
        kind = re.sub(r"^\s*[A-Za-z_]\w*\s*", "", param, count=1)
        if kind and not _crosses(kind):
            raise ValueError(f"{problem['task_id']}: split.go cannot pass a value of type {kind.strip()}")
    return heads[-1].start(), params, result


def _crosses(kind: str) -> bool:
    """Whether ``split.go`` passes a Go type: the basic ones, ``interface{}``, and slices, arrays and maps of them."""
    kind = kind.strip()
    if kind in BASIC:
        return True
    if array := re.fullmatch(r"\[\d*\](.+)", kind):
        return _crosses(array.group(1))
    if kind.startswith("map["):
        depth = 0
        for i, char in enumerate(kind[3:], 3):
            depth += {"[": 1, "]": -1}.get(char, 0)
            if depth == 0:
                return _crosses(kind[4:i]) and _crosses(kind[i + 1:])
    return False


def _code(problem: dict[str, Any], code: str) -> str:
    """A sample's (or prompt's) Go code without the problem's own import block (Go refuses an unused import) and
    package clause."""
    if problem.get("import"):
        code = code.replace(problem["import"], "")
    return code.replace("package main", "")


def _uses(package: str, code: str) -> bool:
    """Whether ``code`` uses an import path's package (outside comments)."""
    name = package.split("/")[-1] + "."
    return any(name in line for line in code.splitlines() if not line.strip().startswith("//"))


def _imports(whole: str, code: str) -> str:
    """bigcode's imports: the packages ``code`` uses that ``whole`` does not import."""
    missing = [p for p in PACKAGES if f'"{p}"' not in whole and _uses(p, code)]
    return "import (\n" + "".join(f'    "{p}"\n' for p in missing) + ")\n" if missing else ""


def _used_imports(setup: str, code: str) -> str:
    """The test setup without the imports that ``code`` does not use."""
    return "\n".join(line for line in setup.splitlines() if not re.fullmatch(r'\s*"[\w./-]+"\s*', line)
                     or _uses(line.strip().strip('"'), code)) + "\n"
