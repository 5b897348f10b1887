"""Conversation templates from FastChat, rendered into parts that know what is trained.

A conversation becomes a list of ``Part``s: text (template text, user text, or assistant text) and special tokens
(``bos``/``eos``). Only the template's own ``<s>``/``</s>`` become special tokens; the same characters inside user
or assistant text stay text. An assistant turn is trained from its first character through its closing template
text and its EOS (the model must learn to stop); everything else is masked.

The template is rendered by FastChat itself with a sentinel in place of each message, so any FastChat template
that renders incrementally works; the skeleton is cached per (template, roles, system message).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mindcode.errors import MindcodeError

SENTINEL = "\x00MINDCODE-MESSAGE\x00"
SPECIAL_TEXT = {"<s>": "bos", "</s>": "eos"}
RAW = "raw"  # no template at all: the prompt, then the answer and EOS
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Part:
    """``kind`` is ``text``, ``bos``, ``eos`` or a piece name (``▁<PRE>``...); ``text`` is empty for special tokens.

    ``space``: whether sentencepiece's dummy prefix space applies when this text starts a round (False for FIM
    suffix and middle, which CodeLlama encodes without a leading space).
    """

    kind: str
    text: str
    trained: bool
    space: bool = True


FIM_PIECES = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")


def render_fim(prefix: str, suffix: str, middle: str) -> list[Part]:
    """CodeLlama infilling (prefix-suffix-middle): ``<PRE> prefix<SUF>suffix<MID>middle<EOT>``; middle and EOT trained.

    As in Meta's CodeLlama code: the prefix is encoded normally, the suffix and the middle without a leading space.
    """
    pre, suf, mid, eot = FIM_PIECES
    return [Part(pre, "", False), Part("text", prefix, False), Part(suf, "", False),
            Part("text", suffix, False, space=False), Part(mid, "", False),
            Part("text", middle, True, space=False), Part(eot, "", True)]


def conversation_template(name: str):
    try:
        from fastchat.conversation import conv_templates
    except ImportError:
        raise MindcodeError("conversation templates need FastChat: pip install fschat") from None
    if name not in conv_templates:
        known = ", ".join(sorted(n for n in conv_templates if n in ("vicuna_v1.1", "llama-2", "chatml", "zero_shot")))
        raise MindcodeError(f"unknown conversation template {name!r} (FastChat's names, e.g. {known})")
    return conv_templates[name].copy()


@functools.lru_cache(maxsize=256)
def skeleton(template: str, roles: tuple[str, ...], system: str | None) -> tuple[tuple[str, ...], ...]:
    """The template text around each message, rendered once per (template, roles, system message).

    Returns ``((head,), (pre_0, post_0), (pre_1, post_1), ...)``; head is the text before the first message.
    """
    conv = conversation_template(template)
    if system is not None:
        conv.set_system_message(system)
    rendered = [conv.get_prompt()]
    for role in roles:
        conv.append_message(conv.roles[0 if role == "user" else 1], SENTINEL)
        rendered.append(conv.get_prompt())
    pieces: list[tuple[str, ...]] = [(rendered[0],)]
    for before, after in zip(rendered, rendered[1:]):
        if not after.startswith(before) or after.count(SENTINEL) != before.count(SENTINEL) + 1:
            raise MindcodeError(f"template {template!r} does not render incrementally; it is not supported")
        delta = after[len(before):]
        pre, post = delta.split(SENTINEL)
        pieces.append((pre, post))
    return tuple(pieces)


@functools.lru_cache(maxsize=1024)
def _template_parts(text: str, trained: bool, eos_trained: bool) -> tuple[Part, ...]:
    """Template text with its literal <s>/</s> turned into special tokens; text after an EOS is never trained."""
    parts: list[Part] = []
    rest = text
    while rest:
        hits = [(rest.find(s), s) for s in SPECIAL_TEXT if s in rest]
        if not hits:
            parts.append(Part("text", rest, trained))
            break
        at, special = min(hits)
        if at:
            parts.append(Part("text", rest[:at], trained))
        kind = SPECIAL_TEXT[special]
        parts.append(Part(kind, "", trained and eos_trained and kind == "eos"))
        if kind == "eos":
            trained = False
        rest = rest[at + len(special):]
    return tuple(parts)


def render(messages: list[tuple[str, str]], template: str) -> list[Part]:
    """Render ``[(role, content), ...]`` (roles system/user/assistant) into parts.

    Raises:
        MindcodeError: roles that do not alternate user/assistant after an optional system message, an empty turn,
            or no assistant turn (nothing would be trained).
    """
    system = None
    if messages and messages[0][0] == "system":
        system, messages = messages[0][1], messages[1:]
    check_roles([role for role, _ in messages])
    if template == RAW:
        return render_raw(messages, system)
    pieces = skeleton(template, tuple(role for role, _ in messages), system)
    parts = list(_template_parts(pieces[0][0], trained=False, eos_trained=False))
    for (role, content), (pre, post) in zip(messages, pieces[1:]):
        assistant = role == "assistant"
        parts += _template_parts(pre, trained=False, eos_trained=False)
        parts.append(Part("text", content, assistant))
        parts += _template_parts(post, trained=assistant, eos_trained=assistant)
    return [p for p in parts if p.kind != "text" or p.text]


class ConversationError(MindcodeError):
    """A conversation that cannot be trained on; ``reason`` is the short category counted in summaries."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def render_raw(messages: list[tuple[str, str]], system: str | None) -> list[Part]:
    """No template: prompt text, then the answer and EOS (trained); how RepairLLaMA and OctoCoder train."""
    parts = [Part("text", system, False)] if system else []
    for role, content in messages:
        parts.append(Part("text", content, role == "assistant"))
        if role == "assistant":
            parts.append(Part("eos", "", True))
    return parts


def check_roles(roles: list[str]) -> None:
    for i, role in enumerate(roles):
        if role not in ROLES[1:]:
            raise ConversationError("system message not first", f"message {i} has role {role!r}")
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ConversationError("roles do not alternate", f"message {i} is {role!r}, expected {expected!r}")
    if "assistant" not in roles:
        raise ConversationError("no assistant message", "nothing to train on")
