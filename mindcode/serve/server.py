"""``mindcode serve``: an OpenAI-compatible HTTP server over either backend, batching concurrent requests.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions`` (``"stream": true`` sends
server-sent events). Requests wait in a bounded queue (full: 503); one worker thread takes up to ``batch_size``
queued requests with the same sampling settings and decodes them as one batch. Bad requests get a 4xx with an
OpenAI-style ``{"error": {"message", "type", "param"}}``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mindcode.predict.decode import GenerationConfig
from mindcode.predict.run import Generator, chat_prompt

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.param, self.kind = status, param, kind


@dataclass
class Job:
    prompts: list[list[int]]
    config: GenerationConfig
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: Exception | None = None
    batch_size: int = 0


class Batcher:
    """Queued jobs, decoded in batches by one worker thread (the model is not thread-safe)."""

    def __init__(self, generator: Generator, batch_size: int, max_queue: int, wait_s: float = 0.01):
        self.generator, self.batch_size, self.wait_s = generator, batch_size, wait_s
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        threading.Thread(target=self._loop, daemon=True, name="mindcode-batcher").start()

    def submit(self, job: Job) -> Job:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise RequestError(503, "the server's request queue is full; retry later", kind="server_busy") from None
        job.done.wait()
        if job.error:
            raise job.error
        return job

    def _loop(self) -> None:
        while True:
            batch = [self.jobs.get()]
            deadline = time.monotonic() + self.wait_s
            while sum(len(j.prompts) for j in batch) < self.batch_size:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                batch.append(job)
            groups: dict[str, list[Job]] = {}
            for job in batch:
                groups.setdefault(repr(job.config), []).append(job)
            for jobs in groups.values():
                self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        prompts = [p for job in jobs for p in job.prompts]
        try:
            results = self.generator.run(prompts, jobs[0].config)
        except Exception as exc:  # reported to every waiting request
            for job in jobs:
                job.error = RequestError(400 if "exceeds" in str(exc) else 500, str(exc))
                job.done.set()
            return
        at = 0
        for job in jobs:
            job.result, job.batch_size = results[at:at + len(job.prompts)], len(prompts)
            at += len(job.prompts)
            job.done.set()


def generation_config(body: dict[str, Any], eos: int) -> GenerationConfig:
    def number(name: str, default: float, kind: type = float, low: float | None = None, high: float | None = None):
        value = body.get(name, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and int(value) != value):
            raise RequestError(400, f"'{name}' must be a{'n integer' if kind is int else ' number'}", name)
        if (low is not None and value < low) or (high is not None and value > high):
            raise RequestError(400, f"'{name}' must be within [{low}, {high}]", name)
        return kind(value)

    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise RequestError(400, "'stop' must be a string or a list of strings", "stop")
    temperature = number("temperature", 1.0, float, 0.0, 2.0)
    n = number("n", 1, int, 1, 16)
    return GenerationConfig(
        max_new_tokens=number("max_tokens", 16, int, 1, 4096), do_sample=temperature > 0,
        temperature=temperature or 1.0, top_p=number("top_p", 1.0, float, 0.0, 1.0),
        top_k=number("top_k", 0, int, 0, 1 << 20), num_return_sequences=n,
        repetition_penalty=number("repetition_penalty", 1.0, float, 0.01, 10.0),
        seed=number("seed", 0, int), eos_token_id=eos, stop=stop)


class Handler(BaseHTTPRequestHandler):
    server: MindcodeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: RequestError) -> None:
        self._send(error.status, {"error": {"message": str(error), "type": error.kind, "param": error.param}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                         "created": self.server.created, "owned_by": "mindcode"}]})
        else:
            self._error(RequestError(404, f"no route {self.path}", kind="not_found"))

    def do_POST(self) -> None:
        try:
            route = self.path.rstrip("/")
            if route not in ("/v1/completions", "/v1/chat/completions"):
                raise RequestError(404, f"no route {self.path}", kind="not_found")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise RequestError(413, f"request body over {MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError as exc:
                raise RequestError(400, f"the body is not valid JSON ({exc})") from None
            if not isinstance(body, dict):
                raise RequestError(400, "the body must be a JSON object")
            self._complete(body, chat=route.endswith("chat/completions"))
        except RequestError as exc:
            self._error(exc)

    def _complete(self, body: dict[str, Any], chat: bool) -> None:
        generator = self.server.generator
        config = generation_config(body, generator.sp.eos_id())
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                    isinstance(m, dict) and isinstance(m.get("content"), str)
                    and m.get("role") in ("system", "user", "assistant") for m in messages):
                raise RequestError(400, "'messages' must be a non-empty list of {role, content}", "messages")
            try:
                prompts = [chat_prompt([(m["role"], m["content"]) for m in messages], self.server.template, generator)]
            except Exception as exc:
                raise RequestError(400, f"messages: {exc}", "messages") from None
        else:
            prompt = body.get("prompt")
            texts = [prompt] if isinstance(prompt, str) else prompt
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                raise RequestError(400, "'prompt' must be a string or a list of strings", "prompt")
            prompts = [generator.encode(t) for t in texts]
        job = self.server.batcher.submit(Job(prompts, config))
        choices, index = [], 0
        for sequences in job.result:
            for tokens in sequences:
                text = generator.text(tokens, config.stop)
                finish = "length" if len(tokens) >= config.max_new_tokens and text == generator.sp.decode(tokens) \
                    else "stop"
                choice = {"index": index, "finish_reason": finish, "_tokens": tokens}
                choice.update({"message": {"role": "assistant", "content": text}} if chat
                              else {"text": text, "logprobs": None})
                choices.append(choice)
                index += 1
        usage_in = sum(len(p) for p in prompts)
        usage_out = sum(len(c["_tokens"]) for c in choices)
        response = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}",
                    "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                    "model": self.server.model_name,
                    "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                              "total_tokens": usage_in + usage_out}}
        headers = {"X-Mindcode-Batch-Size": str(job.batch_size)}
        if body.get("stream"):
            self._stream(response, choices, chat, headers)
            return
        for choice in choices:
            choice.pop("_tokens")
        self._send(200, {**response, "choices": choices}, headers)

    def _stream(self, response: dict[str, Any], choices: list[dict[str, Any]], chat: bool,
                headers: dict[str, str]) -> None:
        """Server-sent events, one chunk per token of each finished choice, then ``data: [DONE]``."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        kind = "chat.completion.chunk" if chat else "text_completion"
        sp = self.server.generator.sp
        for choice in choices:
            tokens, previous = choice["_tokens"], ""
            full = choice["message"]["content"] if chat else choice["text"]
            for i in range(1, len(tokens) + 1):
                text = sp.decode(tokens[:i])[: len(full)]
                delta, previous = text[len(previous):], text
                if delta:
                    self._event({**response, "object": kind, "choices": [self._delta(choice["index"], delta, chat)]})
            self._event({**response, "object": kind,
                         "choices": [{**self._delta(choice["index"], "", chat), "finish_reason": choice["finish_reason"]}]})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    @staticmethod
    def _delta(index: int, text: str, chat: bool) -> dict[str, Any]:
        body = {"delta": {"content": text}} if chat else {"text": text}
        return {"index": index, "finish_reason": None, **body}

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


class MindcodeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], generator: Generator, model_name: str, template: str,
                 batch_size: int = 8, max_queue: int = 64):
        super().__init__(address, Handler)
        self.generator, self.model_name, self.template = generator, model_name, template
        self.created = int(time.time())
        self.batcher = Batcher(generator, batch_size, max_queue)
