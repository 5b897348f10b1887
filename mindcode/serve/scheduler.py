"""Continuous (iteration-level) batching: which sequences run each decode step, and what each one emits.

One scheduler thread owns the model. Between two decode steps it admits waiting requests into free rows (up to
``rows``) and drops finished, cancelled and timed-out ones; every step it asks the backend's session for the next
token logits of all running rows and picks each row's token with that request's own settings and RNG (greedy or
sampling, top-k/top-p, repetition penalty, ``max_tokens``, stop sequences), so a seeded request gives the same text
alone or batched. Each request has its own event queue: a ``token`` event per new piece of text (held back while it
could still be the start of a stop sequence), then ``done`` with the finish reason, or ``error``.

Joining a running batch is the session's ``add``: on ascend new rows are prefilled into free cache slots while the
running rows keep theirs; on gpu the batch's KV cache is rebuilt from every row's tokens (recomputation).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mindcode.predict.decode import (
    GenerationConfig, Session, apply_repetition_penalty, log_softmax, sample, suppress)

log = logging.getLogger(__name__)


@dataclass
class Sequence:
    prompt: list[int]
    index: int  # the choice index within its request
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    sent: str = ""  # the text already emitted
    finish: str | None = None


@dataclass
class Request:
    prompts: list[list[int]]
    config: GenerationConfig
    logprobs: int | None = None  # top alternatives to report per token (None: no logprobs)
    timeout_s: float = 600.0
    events: queue.Queue = field(default_factory=queue.Queue)
    sequences: list[Sequence] = field(default_factory=list)
    cancelled: bool = False
    batch_sizes: list[int] = field(default_factory=list)  # running rows at each of its steps
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        n = self.config.num_return_sequences
        self.sequences = [Sequence(list(p), i * n + c, np.random.default_rng([self.config.seed, i * n + c]))
                          for i, p in enumerate(self.prompts) for c in range(n)]

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self, generator: Any, rows: int, max_queue: int):
        self.generator, self.rows = generator, rows
        self.waiting: queue.Queue[Request] = queue.Queue(maxsize=max_queue)
        self.running: list[tuple[Request, Sequence]] = []
        self.session: Session | None = None
        self._next: Request | None = None
        threading.Thread(target=self._loop, daemon=True, name="mindcode-scheduler").start()

    def submit(self, request: Request) -> bool:
        """Queue a request; False when the queue is full."""
        try:
            self.waiting.put_nowait(request)
        except queue.Full:
            return False
        return True

    def _loop(self) -> None:
        while True:
            try:
                self._admit()
                if self.running:
                    self._step()
            except Exception as exc:  # noqa: BLE001 - the running requests get the error; the server lives on
                log.exception("decode step failed")
                for request in {id(r): r for r, _ in self.running}.values():
                    request.events.put(("error", f"{type(exc).__name__}: {exc}"))
                self.running, self.session = [], None

    def _admit(self) -> None:
        """Move waiting requests into free rows (blocking while nothing runs)."""
        new: list[tuple[Request, Sequence]] = []
        while True:
            if self._next is None:
                try:
                    self._next = self.waiting.get(timeout=None if not (self.running or new) else 0)
                except queue.Empty:
                    break
            request = self._next
            if request.cancelled:
                self._next = None
                continue
            if len(self.running) + len(new) + len(request.sequences) > self.rows:
                break  # it waits for rows to free up
            new += [(request, s) for s in request.sequences]
            self._next = None
        if not new:
            return
        prompts = [s.prompt for _, s in new]
        if self.session is None:
            self.session = self.generator.session(prompts, self.rows)
        else:
            self.session.add(prompts)
        self.running += new

    def _step(self) -> None:
        logits = self.session.logits()
        tokens, keep = [], []
        for row, (request, seq) in enumerate(self.running):
            token = self._choose(request, seq, logits[row])
            tokens.append(token)
            request.batch_sizes.append(len(self.running))
            if seq.finish is None and time.monotonic() - request.started > request.timeout_s:
                seq.finish = "timeout"
            if seq.finish is None and not request.cancelled:
                keep.append(row)
            elif seq.finish is not None:
                request.events.put(("done", seq.index, seq.finish))
        finished = [self.running[i] for i in range(len(self.running)) if i not in set(keep)]
        for request in {id(r): r for r, _ in finished}.values():
            if all(s.finish is not None for s in request.sequences) or request.cancelled:
                request.events.put(("end", None, None))
        self.session.append(np.asarray(tokens))
        if not keep:
            self.running, self.session = [], None
        elif len(keep) != len(self.running):
            self.session.select(np.asarray(keep))
            self.running = [self.running[i] for i in keep]

    def _choose(self, request: Request, seq: Sequence, row_logits: np.ndarray) -> int:
        config, tokenizer = request.config, self.generator.tokenizer
        logits = suppress(row_logits[None, :].astype(np.float64), config.suppress_tokens)
        logits = apply_repetition_penalty(logits, [seq.prompt + seq.tokens], config.repetition_penalty)
        token = int(sample(logits, config, seq.rng)[0]) if config.do_sample else int(logits.argmax(-1)[0])
        if config.is_eos(token):
            seq.finish = "stop"
            return token
        seq.tokens.append(token)
        info = None
        if request.logprobs is not None:
            lp = log_softmax(logits)[0]
            top = np.argsort(-lp, kind="stable")[: request.logprobs]
            info = {"token": tokenizer.piece(token), "logprob": float(lp[token]),
                    "top": {tokenizer.piece(int(t)): float(lp[t]) for t in top},
                    "offset": len(tokenizer.decode(seq.tokens[:-1]))}
        text = tokenizer.decode(seq.tokens)
        cut = min((text.find(s) for s in config.stop if s in text), default=-1)
        if cut >= 0:
            text, seq.finish = text[:cut], "stop"
        elif len(seq.tokens) >= config.max_new_tokens:
            seq.finish = "length"
        safe = text if seq.finish else _safe_prefix(text, config.stop)
        delta = safe[len(seq.sent):] if safe.startswith(seq.sent) else ""
        seq.sent += delta
        request.events.put(("token", seq.index, delta, info))
        return token


def _safe_prefix(text: str, stops: list[str]) -> str:
    """``text`` without a tail that could still grow into a stop sequence, or an unfinished UTF-8 character."""
    keep = len(text.rstrip("\ufffd"))
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                keep = min(keep, len(text) - k)
                break
    return text[:keep]
