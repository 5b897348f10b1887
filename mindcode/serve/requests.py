"""The OpenAI request bodies ``mindcode serve`` accepts, checked field by field: every field is either supported
(and used) or refused with a 400 that names it; nothing is dropped silently."""

from __future__ import annotations

import math
from typing import Any

from mindcode.predict.decode import GenerationConfig

MAX_PROMPTS = 16  # prompts in one completions request
COMMON = {"model", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed", "repetition_penalty",
          "stream", "user"}
FIELDS = {"completions": COMMON | {"prompt", "logprobs"},
          "chat": COMMON | {"messages", "logprobs", "top_logprobs", "max_completion_tokens"}}


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.param, self.kind = status, param, kind


def reject_constant(name: str) -> Any:
    """``json.loads(parse_constant=...)``: NaN and Infinity are not JSON numbers a request may carry."""
    raise RequestError(400, f"non-finite number {name} in the request body")


def check_fields(body: dict[str, Any], kind: str, model_name: str) -> None:
    unknown = sorted(set(body) - FIELDS[kind])
    if unknown:
        raise RequestError(400, f"unsupported field {unknown[0]!r} (this server takes: {', '.join(sorted(FIELDS[kind]))})",
                           unknown[0])
    if body.get("model", model_name) != model_name:
        raise RequestError(404, f"the model {body['model']!r} does not exist (this server serves {model_name!r})",
                           "model", kind="model_not_found")


def _number(body: dict[str, Any], name: str, default: float, kind: type = float, low: float | None = None,
            high: float | None = None) -> Any:
    value = body.get(name, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            (kind is int and int(value) != value):
        raise RequestError(400, f"'{name}' must be a{'n integer' if kind is int else ' finite number'}", name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RequestError(400, f"'{name}' must be within [{low}, {high}]", name)
    return kind(value)


def generation_config(body: dict[str, Any], max_new: int) -> GenerationConfig:
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
        raise RequestError(400, "'stop' must be a string or a list of up to 4 non-empty strings", "stop")
    temperature = _number(body, "temperature", 1.0, float, 0.0, 2.0)
    tokens_key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    return GenerationConfig(
        max_new_tokens=_number(body, tokens_key, 16, int, 1, max_new), do_sample=temperature > 0,
        temperature=temperature or 1.0, top_p=_number(body, "top_p", 1.0, float, 0.0, 1.0),
        top_k=_number(body, "top_k", 0, int, 0, 1 << 20), num_return_sequences=_number(body, "n", 1, int, 1, 16),
        repetition_penalty=_number(body, "repetition_penalty", 1.0, float, 0.01, 10.0),
        seed=_number(body, "seed", 0, int, 0, 2**63 - 1), stop=stop)


def logprobs_setting(body: dict[str, Any], kind: str) -> int | None:
    """How many alternatives per token to report (OpenAI: ``logprobs: k`` for completions, ``logprobs: true`` with
    ``top_logprobs: k`` for chat), or None."""
    if kind == "completions":
        if body.get("logprobs") is None:
            return None
        return _number(body, "logprobs", 0, int, 0, 5)
    if "top_logprobs" in body and not body.get("logprobs"):
        raise RequestError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs")
    if body.get("logprobs") in (None, False):
        return None
    if body["logprobs"] is not True:
        raise RequestError(400, "'logprobs' must be true or false", "logprobs")
    return _number(body, "top_logprobs", 0, int, 0, 20)


def prompt_texts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    texts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise RequestError(400, "'prompt' must be a string or a list of strings", "prompt")
    if len(texts) > MAX_PROMPTS:
        raise RequestError(400, f"'prompt' holds {len(texts)} prompts; at most {MAX_PROMPTS} per request", "prompt")
    return texts


def chat_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and set(m) <= {"role", "content", "name"}
            and m.get("role") in ("system", "user", "assistant") for m in messages):
        raise RequestError(400, "'messages' must be a non-empty list of {role, content}", "messages")
    return [(m["role"], m["content"]) for m in messages]
