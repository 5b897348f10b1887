"""Preference pairs (DPO/SimPO): validation and the two conversations a pair is tokenized as.

A pair is TRL's layout: ``prompt``, ``chosen``, ``rejected``, either plain strings or message lists
(``[{"role", "content"}, ...]``; the prompt's last turn is the user's, each answer one assistant message). It is
tokenized as two conversations sharing the prompt; only the final answer (and its end-of-turn token) is trained.
"""

from __future__ import annotations

import dataclasses

from mindcode.data.io import Record, RecordError
from mindcode.data.templates import Part, render

FIELDS = ("prompt", "chosen", "rejected")


def _text(value) -> str | None:
    """The text of a plain string or of a message list's last message."""
    if isinstance(value, list):
        return value[-1].get("content") if value and isinstance(value[-1], dict) else None
    return value


def same_answer(a: str, b: str, ignore_trailing_whitespace: bool = False) -> bool:
    """Exactly the same text (in Python an indentation change is another program); optionally ignoring trailing
    whitespace on each line and at the end."""
    if ignore_trailing_whitespace:
        return [line.rstrip() for line in a.rstrip().splitlines()] == [line.rstrip() for line in b.rstrip().splitlines()]
    return a == b


def problems(record: Record) -> list[tuple[str, str, str]]:
    """``[(field, reason, message)]`` for one pair; empty when it can be trained on."""
    if "rejected" not in record.data and "chosen" in record.data:  # the `data dpo` step's output, not yet paired
        return [("rejected", "no rejected answer yet",
                 "missing: run `mindcode data dpo-attach --predictions PREDS` (step 2) to attach it")]
    out = []
    for name in FIELDS:
        text = _text(record.data.get(name))
        if not isinstance(text, str) or not text.strip():
            out.append((name, f"empty {name}", "missing or empty"))
    if not out:
        if same_answer(_text(record.data["chosen"]), _text(record.data["rejected"])):
            out.append(("rejected", "chosen == rejected", "the same answer as chosen"))
    return out


def _messages(record: Record, name: str, default_role: str) -> list[tuple[str, str]]:
    value = record.data[name]
    if isinstance(value, str):
        return [(default_role, value)]
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise RecordError(record, f"{name}[{i}]", "expected {role, content} with string content")
        messages.append((message.get("role"), message["content"]))
    return messages


def render_pair(record: Record, template: str) -> tuple[list[Part], list[Part]]:
    """The chosen and the rejected conversation of a pair without ``problems``, with only the final answer trained.

    Raises:
        RecordError: a malformed message list, naming the record and field.
        ConversationError: roles that do not alternate.
    """
    return tuple(_answer_only(render(messages, template)) for messages in pair_messages(record))


def pair_messages(record: Record) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The prompt followed by the chosen answer, and by the rejected one (``[(role, content), ...]``)."""
    prompt = _messages(record, "prompt", "user")
    return tuple(prompt + _messages(record, name, "assistant") for name in ("chosen", "rejected"))


def _answer_only(parts: list[Part]) -> list[Part]:
    """Untrain everything before the last trained text (earlier assistant turns of a conversational prompt)."""
    last = max(i for i, p in enumerate(parts) if p.kind == "text" and p.trained)
    return [dataclasses.replace(p, trained=False) if i < last else p for i, p in enumerate(parts)]
