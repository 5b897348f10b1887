"""Rust: ``rustc --test`` builds the program, whose one test serves its entry point (``split.rs``, built once as a
library both programs link), per sample, and the test binary (the declaration's ``use`` lines, the helpers, a proxy,
the test module) once per problem on the trusted side, cached in ``~/.cache/mindcode/rust-tests``; rand, regex and
md5 are built once from Debian's crate sources (offline)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any


from mindcode.eval.langs.base import (
    Language, MissingToolchain, Toolchain, brace_postprocess, cache_dir, publish, source, top_level, version_of, which)
from mindcode.eval.langs.cache import built_test

LANGUAGE = Language("rust", "Rust", "main.rs", "rustc librust-rand-dev librust-regex-dev librust-md5-dev",
                    compile_timeout=120.0, processes=128)
ENTRY_POINT = re.compile(r"^\s*(?:pub\s+)?fn\s+(\w+)", re.MULTILINE)
STOP_WORDS: tuple[str, ...] = ()
CRATES = {"rand": "0.8", "regex": "1", "md5": "0.7"}  # what HumanEvalPack's Rust declarations use
DEBIAN_CRATES = "/usr/share/cargo/registry"


def toolchain() -> Toolchain:
    rustc, crates = _crates()
    version = version_of([rustc, "--version"])
    flags = ["--edition", "2021", "-C", "debuginfo=0", "-A", "warnings", *_system_linker(rustc)]
    bridge = _bridge(rustc, version, flags)
    externs = [f for crate, path in {**crates["externs"], "mindcode_split": bridge}.items()
               for f in ("--extern", f"{crate}={path}")]
    compile_argv = [rustc, *flags, "--test", LANGUAGE.source, "-o", "main", "-L", f"dependency={crates['deps']}",
                    *externs]
    return Toolchain(LANGUAGE, [
        {"kind": "compile", "argv": compile_argv},
        {"kind": "run", "argv": ["./main", "--test-threads=1"]}],
        reads=["/usr", os.path.dirname(os.path.dirname(rustc)), crates["deps"], os.path.dirname(bridge)],
        version=version, serve_args=["mindcode_split_serve", "--exact"],  # the sample's own tests do not run
        make_test=functools.partial(_test, [a if a != "main" else "test" for a in compile_argv], version))


def _test(argv: list[str], version: str, parts: dict[str, str]) -> dict[str, Any]:
    """The test binary of one problem (``rustc --test`` against the crates, cached); CannotSplit when it does
    not compile (a type without a ``Wire`` implementation)."""
    return built_test("rust-tests", [version], argv, {"main.rs": parts["program"]}, {},
                     ["{test}", "--test-threads=1"], parts)


def _bridge(rustc: str, version: str, flags: list[str]) -> str:
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


def _crates() -> tuple[str, dict[str, Any]]:
    """The real rustc (not rustup's proxy) and rand/regex/md5 built once from Debian's crate sources (offline)."""
    proxy = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")  # rustup's proxy: not resolved
    if not os.access(proxy, os.X_OK):
        raise MissingToolchain(f"rustc not found: rust needs Debian's {LANGUAGE.packages} (make toolchains)")
    sysroot = subprocess.run([proxy, "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    rustc = os.path.join(sysroot, "bin", "rustc") if sysroot else proxy
    cargo = os.path.join(sysroot, "bin", "cargo")
    if not os.access(cargo, os.X_OK):
        cargo = which("cargo", LANGUAGE)
    missing = [c for c in CRATES if not list(Path(DEBIAN_CRATES).glob(f"{c}-[0-9]*"))]
    if missing:
        raise MissingToolchain(f"rust crates {', '.join(missing)} not found in {DEBIAN_CRATES}: rust needs Debian's "
                               f"{LANGUAGE.packages} (make toolchains)")
    version = version_of([rustc, "--version"])
    root = cache_dir("rust")
    built = root / hashlib.sha256(version.encode()).hexdigest()[:16]
    if (built / "crates.json").is_file():
        return rustc, json.loads((built / "crates.json").read_text())
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root))
    deps = "\n".join(f'{c} = "{v}"' for c, v in CRATES.items())
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
        raise MissingToolchain(f"cargo could not build {', '.join(CRATES)}: "
                               f"{(out.stderr + out.stdout).strip()[-300:]}")
    externs = {}
    for line in out.stdout.splitlines():
        message = json.loads(line)
        name = message.get("target", {}).get("name")
        if message.get("reason") == "compiler-artifact" and name in CRATES:
            externs[name] = next(f for f in message["filenames"] if f.endswith(".rlib"))
    info = {"deps": str(built / "target/debug/deps"),
            "externs": {k: v.replace(str(work), str(built)) for k, v in externs.items()}}
    (work / "crates.json").write_text(json.dumps(info))
    publish(work, built)
    return rustc, json.loads((built / "crates.json").read_text())


# Borrowed Rust types split.rs passes: (what crosses, how the serving side lends it to the entry point, how the
# test's proxy sends it); results: (what crosses, how the serving side sends it, what the proxy returns; a borrowed
# result is leaked, as the test holds it at most until it ends).
PARAMS = {
    "&str": ("String", "&{v}", "{v}.to_string()"),
    "Vec<&str>": ("Vec<String>", "{v}.iter().map(|s| s.as_str()).collect()",
                  "{v}.iter().map(|s| s.to_string()).collect::<Vec<String>>()"),
    "HashMap<&str, &str>": ("HashMap<String, String>", "{v}.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()",
                            "{v}.iter().map(|(k, x)| (k.to_string(), x.to_string())).collect::<HashMap<_, _>>()"),
}


RESULTS = {
    "&str": ("String", "{v}.to_string()", "Box::leak({v}.into_boxed_str())"),
    "Vec<&str>": ("Vec<String>", "{v}.iter().map(|s| s.to_string()).collect::<Vec<String>>()",
                  "{v}.into_iter().map(|s| &*Box::leak(s.into_boxed_str())).collect()"),
}


def _param(kind: str) -> tuple[str, str, str]:
    """A parameter type's row of PARAMS; ``&[T]`` crosses as ``Vec<T>``, ``&T`` as ``T``."""
    if kind in PARAMS:
        return PARAMS[kind]
    if sliced := re.fullmatch(r"&\[(.+)\]", kind):
        return f"Vec<{sliced.group(1)}>", "&{v}", "{v}.to_vec()"
    if borrowed := re.fullmatch(r"&(?!mut )(.+)", kind):
        return borrowed.group(1), "&{v}", "{v}.clone()"
    return kind, "{v}", "{v}"


def _result(kind: str) -> tuple[str, str, str]:
    return RESULTS.get(kind, (kind, "{v}", "{v}"))


def _head(problem: dict[str, Any]) -> tuple[str, list[tuple[str, str]], str]:
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
    for param in top_level(heads[-1].group(1)):
        pattern, _, kind = param.partition(":")
        name, kind = re.sub(r"^mut\s+", "", pattern.strip()), re.sub(r"\s+", " ", kind.strip())
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"{problem['task_id']}: a parameter pattern split.rs cannot name: {pattern.strip()}")
        params.append((name, re.sub(r",(?=\S)", ", ", kind)))
    result = re.sub(r",(?=\S)", ", ", re.sub(r"\s+", " ", heads[-1].group(2).strip()))
    if any(kind.startswith("&mut") for _, kind in params):  # what the entry point changes would not come back
        raise ValueError(f"{problem['task_id']}: split.rs does not return what {problem['entry_point']} changes "
                         "through a &mut parameter")
    for kind in [*(_param(kind)[0] for _, kind in params), _result(result)[0]]:
        if re.search(r"&|\bdyn\b|\bimpl\b|'", kind):
            raise ValueError(f"{problem['task_id']}: split.rs cannot pass a value of type {kind}")
    return text[:heads[-1].start()], params, result


def program(problem: dict[str, Any], code: str) -> str:
    """The whole program (the declaration's ``use`` lines, function, test), as bigcode's harness assembles it."""
    return _with_declaration(problem, code) + "\n\n" + problem["test"]


def _with_declaration(problem: dict[str, Any], code: str) -> str:
    """The code after the declaration's lines it lacks (its ``use`` lines), with one ``fn main``."""
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


def split_test(problem: dict[str, Any]) -> dict[str, str]:
    """The test binary's program: the declaration's ``use`` lines, the prompt's helpers, a proxy of the entry point
    with its signature, the test module (``split.rs`` is linked as a library). ValueError for a signature
    ``split.rs`` cannot pass."""
    prelude, params, result = _head(problem)
    sent = "".join(_param(kind)[2].format(v=name) + ", " for name, kind in params)
    wire, _, received = _result(result)
    proxy = (f"fn {problem['entry_point']}({', '.join(f'{n}: {k}' for n, k in params)}) -> {result} {{\n"
             f"    let r: {wire} = mindcode_split::call(({sent}));\n    {received.format(v='r')}\n}}\n")
    return {"program": _with_declaration(problem, prelude + "\n" + proxy) + "\n" + problem["test"],
            "entry_point": problem["entry_point"]}


def split_program(problem: dict[str, Any], code: str) -> str:
    """A test binary whose one test serves the entry point."""
    _, params, result = _head(problem)
    decode = "".join(f"        let mut a{i}: {_param(kind)[0]} = mindcode_split::arg(r)?;\n"
                     for i, (_, kind) in enumerate(params))
    lent = ", ".join(_param(kind)[1].format(v=f"a{i}") for i, (_, kind) in enumerate(params))
    out = _result(result)[1].format(v=f"{problem['entry_point']}({lent})")
    serve = (f"#[test]\nfn mindcode_split_serve() {{\n    mindcode_split::serve(|r| {{\n{decode}"
             f"        Ok(mindcode_split::encode(&{out}))\n    }});\n}}\n")
    return _with_declaration(problem, code) + "\n" + serve


def postprocess(completion: str) -> str:
    return brace_postprocess(completion, STOP_WORDS)
