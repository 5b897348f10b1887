"""Canonical conversations from the shapes the converters write: FastChat ``conversations``, OpenAI ``messages``,
and single-turn pairs (``instruction``/``response``, ``input``/``output``, ``inputs``/``targets``)."""

from __future__ import annotations

from mindcode.data.io import Record, RecordError

PAIRS = (("instruction", "response"), ("input", "output"), ("inputs", "targets"))
FASTCHAT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def conversation_of(record: Record) -> list[tuple[str, str]]:
    """``[(role, content), ...]`` with roles system/user/assistant; a malformed turn raises naming its field."""
    data = record.data
    if "conversations" in data:
        key, role_key, text_key = "conversations", "from", "value"
    elif "messages" in data:
        key, role_key, text_key = "messages", "role", "content"
    else:
        for question, answer in PAIRS:
            if question in data and answer in data:
                return [("user", _text(record, question)), ("assistant", _text(record, answer))]
        raise RecordError(record, None, "expected 'conversations', 'messages', or a pair such as instruction/response")
    turns = data[key]
    if not isinstance(turns, list) or not turns:
        raise RecordError(record, key, "expected a non-empty list of turns")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(record, f"{key}[{i}]", f"expected an object, got {type(turn).__name__}")
        role = FASTCHAT_ROLES.get(turn.get(role_key))
        if role is None:
            raise RecordError(record, f"{key}[{i}].{role_key}", f"unknown role {turn.get(role_key)!r}")
        text = turn.get(text_key)
        if not isinstance(text, str):
            raise RecordError(record, f"{key}[{i}].{text_key}", "missing or not a string")
        if not text.strip():
            raise RecordError(record, f"{key}[{i}].{text_key}", "empty turn")
        messages.append((role, text))
    return messages


def _text(record: Record, field: str) -> str:
    value = record.data[field]
    if not isinstance(value, str) or not value.strip():
        raise RecordError(record, field, "missing, empty or not a string")
    return value
