"""``--template hf``: a conversation rendered with the tokenizer's own chat template, as transformers'
``apply_chat_template`` renders it (a sandboxed Jinja environment with ``trim_blocks``/``lstrip_blocks`` and loop
controls, its ``tojson``, ``raise_exception`` and ``strftime_now``, the tokenizer's special tokens as variables),
and the character spans of the assistant turns, which training labels.

A turn's span is what rendering it adds after the conversation so far with the generation prompt: from the end of
``render(messages[:i], add_generation_prompt=True)`` to the end of ``render(messages[:i + 1])``, so the answer and
the template's end-of-turn text are trained, the assistant header is not. A template whose rendering of a prefix is
not a prefix of the whole (one that rewrites earlier turns) is refused with one line.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from mindcode.errors import MindcodeError

from jinja2 import nodes
from jinja2.ext import Extension


class GenerationBlock(Extension):
    """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask marker) renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise MindcodeError(f"chat template: {message}")


@lru_cache(maxsize=8)
def compile_template(source: str) -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def check_template(tokenizer: Any) -> None:
    """One line when the tokenizer has no chat template or one Jinja cannot compile."""
    from jinja2 import TemplateError

    if not getattr(tokenizer, "chat_template", None):
        raise MindcodeError(f"{tokenizer.path}: --template hf needs the tokenizer's chat_template "
                            f"(tokenizer_config.json or chat_template.jinja); it has none")
    try:
        compile_template(tokenizer.chat_template)
    except TemplateError as exc:
        raise MindcodeError(f"{tokenizer.path}: its chat_template does not compile: {exc}") from None


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The conversation as transformers' ``apply_chat_template(..., tokenize=False)`` renders it; an error the
    template raises (``raise_exception``, an undefined value) is one line."""
    from jinja2 import TemplateError

    check_template(tokenizer)
    try:
        return compile_template(tokenizer.chat_template).render(
            messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt,
            **tokenizer.special_tokens)
    except (TemplateError, TypeError) as exc:
        raise MindcodeError(f"chat template of {tokenizer.path}: {exc}") from None


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation rendered, and each assistant turn's [start, end) characters in it."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[:i + 1])
        if not (through.startswith(before) and text.startswith(through)):
            raise MindcodeError(f"{tokenizer.path}: its chat template renders turn {i} differently once later turns "
                                f"follow, so the assistant's tokens cannot be told apart (use a FastChat --template)")
        spans.append((len(before), len(through)))
    return text, spans
