"""``mindcode serve``: an OpenAI-compatible HTTP server over either backend, batching continuously.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``. The HTTP side (this module:
validation in ``requests.py``, responses, server-sent events) is separate from the scheduler (``scheduler.py``:
which sequences run each decode step) and from the model (the backend's session). Each request gets its own
event queue: a streamed request sends each piece of text as soon as its tokens are decoded; a request whose client
goes away, or that runs past ``--request_timeout``, leaves the batch at the next step. Errors are per request,
OpenAI-shaped ``{"error": {"message", "type", "param"}}``: 400 for a bad field, 404 for an unknown route or model,
413 for an over-long body, 503 when the queue is full, 408 on time-out.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import select
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mindcode.predict.run import Generator, chat_prompt
from mindcode.serve import requests
from mindcode.serve.requests import RequestError
from mindcode.serve.scheduler import Request, Scheduler

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


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

    def _authorized(self) -> bool:
        """With an API key, every request carries ``Authorization: Bearer KEY`` (as vLLM's server checks); else 401."""
        key = self.server.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return True
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)  # keep the connection usable
        self._send(401, {"error": {"message": "missing or wrong API key (Authorization: Bearer ...)",
                                   "type": "authentication_error", "param": None}},
                   {"WWW-Authenticate": "Bearer"})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                         "created": self.server.created, "owned_by": "mindcode"}]})
        else:
            self._error(RequestError(404, f"no route {self.path}", kind="not_found"))

    def do_POST(self) -> None:
        if not self._authorized():
            return
        try:
            route = self.path.rstrip("/")
            if route not in ("/v1/completions", "/v1/chat/completions"):
                raise RequestError(404, f"no route {self.path}", kind="not_found")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise RequestError(413, f"request body over {MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length) or b"null", parse_constant=requests.reject_constant)
            except ValueError as exc:
                raise RequestError(400, f"the body is not valid JSON ({exc})") from None
            if not isinstance(body, dict):
                raise RequestError(400, "the body must be a JSON object")
            self._complete(body, "chat" if route.endswith("chat/completions") else "completions")
        except RequestError as exc:
            self._error(exc)

    def _prompts(self, body: dict[str, Any], kind: str) -> list[list[int]]:
        generator = self.server.generator
        if kind == "chat":
            messages = requests.chat_messages(body)
            try:
                prompts = [chat_prompt(messages, self.server.template, generator)]
            except Exception as exc:
                raise RequestError(400, f"messages: {exc}", "messages") from None
        else:
            prompts = [generator.encode(t) for t in requests.prompt_texts(body)]
        longest = max(len(p) for p in prompts)
        if longest >= generator.max_length:
            raise RequestError(400, f"a prompt of {longest} tokens leaves no room in the model's {generator.max_length} "
                                    f"positions", "messages" if kind == "chat" else "prompt")
        return prompts

    def _complete(self, body: dict[str, Any], kind: str) -> None:
        generator = self.server.generator
        requests.check_fields(body, kind, self.server.model_name)
        prompts = self._prompts(body, kind)
        room = generator.max_length - max(len(p) for p in prompts)
        config = generator.decoding(requests.generation_config(body, room))
        rows = len(prompts) * config.num_return_sequences
        if rows > self.server.scheduler.rows:
            raise RequestError(400, f"{rows} sequences (prompts x n) exceed the server's batch of "
                                    f"{self.server.scheduler.rows}", "n")
        request = Request(prompts, config, requests.logprobs_setting(body, kind), self.server.request_timeout)
        if not self.server.scheduler.submit(request):
            raise RequestError(503, "the server's request queue is full; retry later", kind="server_busy")
        head = {"id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}",
                "created": int(time.time()), "model": self.server.model_name}
        if body.get("stream"):
            self._stream(request, head, kind)
        else:
            self._respond(request, head, kind, prompts)

    def _events(self, request: Request):
        """The request's events as they come; stops (and takes the request out of the batch) when the client has
        gone away or the time-out has passed."""
        deadline = request.started + request.timeout_s + 5
        while True:
            try:
                event = request.events.get(timeout=0.05)
            except queue.Empty:
                if self._client_gone() or time.monotonic() > deadline:
                    request.cancel()
                    return
                continue
            yield event
            if event[0] in ("end", "error"):
                return

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            import socket

            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _respond(self, request: Request, head: dict[str, Any], kind: str, prompts: list[list[int]]) -> None:
        texts = {s.index: "" for s in request.sequences}
        logprobs: dict[int, list[dict]] = {s.index: [] for s in request.sequences}
        finish: dict[int, str] = {}
        for event in self._events(request):
            if event[0] == "error":
                raise RequestError(500, event[1], kind="server_error")
            if event[0] == "token":
                _, index, delta, info = event
                texts[index] += delta
                if info is not None:
                    logprobs[index].append(info)
            elif event[0] == "done":
                finish[event[1]] = event[2]
        if request.cancelled or "timeout" in finish.values():
            raise RequestError(408, f"the request ran past the server's time-out of {request.timeout_s} s",
                               kind="timeout")
        choices = []
        for seq in request.sequences:
            choice = {"index": seq.index, "finish_reason": finish.get(seq.index, "stop")}
            if kind == "chat":
                choice["message"] = {"role": "assistant", "content": texts[seq.index]}
                choice["logprobs"] = _chat_logprobs(logprobs[seq.index]) if request.logprobs is not None else None
            else:
                choice["text"] = texts[seq.index]
                choice["logprobs"] = _completion_logprobs(logprobs[seq.index]) if request.logprobs is not None \
                    else None
            choices.append(choice)
        used_in = sum(len(p) for p in prompts) * request.config.num_return_sequences
        used_out = sum(len(s.tokens) for s in request.sequences)
        payload = {**head, "object": "chat.completion" if kind == "chat" else "text_completion", "choices": choices,
                   "usage": {"prompt_tokens": used_in, "completion_tokens": used_out,
                             "total_tokens": used_in + used_out}}
        self._send(200, payload, {"X-Mindcode-Batch-Size": str(max(request.batch_sizes, default=0))})

    def _stream(self, request: Request, head: dict[str, Any], kind: str) -> None:
        """Server-sent events: a chunk as each piece of text is decoded, a final chunk per choice, ``[DONE]``."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = {**head, "object": "chat.completion.chunk" if kind == "chat" else "text_completion"}
        try:
            for event in self._events(request):
                if event[0] == "error":
                    self._event({"error": {"message": event[1], "type": "server_error", "param": None}})
                    return
                if event[0] == "token" and event[2]:
                    _, index, delta, info = event
                    choice = self._delta(index, delta, kind)
                    if info is not None:
                        choice["logprobs"] = (_chat_logprobs([info]) if kind == "chat"
                                              else _completion_logprobs([info]))
                    self._event({**chunk, "choices": [choice]})
                elif event[0] == "done":
                    self._event({**chunk, "choices": [{**self._delta(event[1], "", kind), "finish_reason": event[2]}]})
            if request.cancelled:
                return
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            request.cancel()  # the client went away: its rows leave the batch

    @staticmethod
    def _delta(index: int, text: str, kind: str) -> dict[str, Any]:
        body = {"delta": {"content": text}} if kind == "chat" else {"text": text}
        return {"index": index, "finish_reason": None, **body}

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


def _completion_logprobs(items: list[dict]) -> dict[str, Any]:
    """OpenAI's completions shape: parallel lists of tokens, their log-probabilities and the top alternatives."""
    return {"tokens": [i["token"] for i in items], "token_logprobs": [i["logprob"] for i in items],
            "top_logprobs": [i["top"] for i in items], "text_offset": [i["offset"] for i in items]}


def _chat_logprobs(items: list[dict]) -> dict[str, Any]:
    return {"content": [{"token": i["token"], "logprob": i["logprob"], "bytes": list(i["token"].encode()),
                         "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                          for t, lp in i["top"].items()]} for i in items]}


class MindcodeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], generator: Generator, model_name: str, template: str,
                 batch_size: int = 8, max_queue: int = 64, request_timeout: float = 600.0,
                 api_key: str | None = None):
        super().__init__(address, Handler)
        self.api_key = api_key or None
        self.generator, self.model_name, self.template = generator, model_name, template
        self.request_timeout = request_timeout
        self.created = int(time.time())
        self.scheduler = Scheduler(generator, batch_size, max_queue)
