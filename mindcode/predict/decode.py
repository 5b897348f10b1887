"""Decoding, once for both backends: greedy, sampling (temperature, top-k, top-p), beam search, repetition
penalty, EOS and stop sequences. Backends only supply next-token logits through a ``Session``
(``backends.base.Session``):

    session = backend.session(model, prompts)  # one row per prompt
    session.logits() -> float32 [rows, vocab]  # for each row's last token
    session.append(tokens)                     # one new token per row
    session.select(rows)                       # keep/reorder rows (beams, finished sequences)

Because the choices are made here, in numpy, the two backends pick the same tokens whenever their logits agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backends.base import Session


@dataclass
class GenerationConfig:
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_beams: int = 1
    num_return_sequences: int = 1
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    seed: int = 0
    eos_token_id: int | list[int] = 2  # generation stops at this id (or any of these ids)
    stop: list[str] = field(default_factory=list)
    # The model's pad id (0: CodeLlama's <unk>) is never generated: MindFormers' attention masks it out, so a
    # generated pad would make the ascend backend continue from a different context than the gpu one.
    suppress_tokens: list[int] = field(default_factory=lambda: [0])

    def is_eos(self, token: int) -> bool:
        stops = self.eos_token_id
        return token in stops if isinstance(stops, list) else token == stops


def suppress(logits: np.ndarray, tokens: list[int]) -> np.ndarray:
    if not tokens:
        return logits
    logits = logits.copy()
    logits[:, tokens] = -np.inf
    return logits


def apply_repetition_penalty(logits: np.ndarray, history: list[list[int]], penalty: float) -> np.ndarray:
    """CTRL/HF rule: a token already present has its positive logit divided, its negative one multiplied."""
    if penalty == 1.0:
        return logits
    logits = logits.copy()
    for row, tokens in enumerate(history):
        seen = np.unique(np.asarray(tokens, dtype=np.int64))
        values = logits[row, seen]
        logits[row, seen] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def sample(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> np.ndarray:
    logits = logits / max(config.temperature, 1e-6)
    if config.top_k:
        kth = np.sort(logits, axis=-1)[:, -config.top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if config.top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, -1)
        keep = np.cumsum(sorted_probs, -1) - sorted_probs < config.top_p  # always keeps the most likely token
        mask = np.zeros_like(keep)
        np.put_along_axis(mask, order, keep, -1)
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(len(p), p=p) for p in probs], dtype=np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def generate(session: Session, prompts: list[list[int]], config: GenerationConfig,
             stopped: Any = None) -> list[list[list[int]]]:
    """New tokens for each prompt: ``num_return_sequences`` lists per prompt (EOS not included).

    ``stopped(tokens) -> bool`` ends a sequence early (the caller's stop-sequence check on decoded text).
    """
    if config.num_beams > 1:
        return _beam_search(session, prompts, config)
    copies = config.num_return_sequences
    if copies > 1:
        if not config.do_sample:
            raise ValueError("num_return_sequences > 1 needs --do_sample true or --num_beams")
        session.select(np.repeat(np.arange(len(prompts)), copies))
    rows = [list(p) for p in prompts for _ in range(copies)]
    new: list[list[int]] = [[] for _ in rows]
    live = list(range(len(rows)))  # which sequence each session row holds
    rng = np.random.default_rng(config.seed)
    for _ in range(config.max_new_tokens):
        logits = apply_repetition_penalty(suppress(session.logits(), config.suppress_tokens),
                                          [rows[i] for i in live], config.repetition_penalty)
        tokens = sample(logits, config, rng) if config.do_sample else logits.argmax(-1)
        keep = []
        for position, (i, token) in enumerate(zip(live, tokens)):
            if config.is_eos(token):
                continue
            rows[i].append(int(token))
            new[i].append(int(token))
            if stopped is None or not stopped(new[i]):
                keep.append(position)
        if not keep:
            break
        session.append(np.asarray(tokens))
        if len(keep) != len(live):
            session.select(np.asarray(keep))
            live = [live[p] for p in keep]
    return [new[i * copies:(i + 1) * copies] for i in range(len(prompts))]


def _beam_search(session: Session, prompts: list[list[int]], config: GenerationConfig) -> list[list[list[int]]]:
    """Standard beam search: K live beams per prompt; a beam that emits EOS is finished with its score divided by
    length ** length_penalty; a prompt is done when it has K finished beams and no live one can beat them."""
    k = config.num_beams
    session.select(np.repeat(np.arange(len(prompts)), k))
    beams = [[(0.0 if b == 0 else -np.inf, []) for b in range(k)] for _ in prompts]  # one start beam per prompt
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for step in range(config.max_new_tokens):
        logprobs = log_softmax(suppress(session.logits(), config.suppress_tokens).astype(np.float64))
        row_of, next_beams, chosen = [], [], []
        row = 0
        for p, prompt_beams in enumerate(beams):
            if done[p]:
                continue
            candidates = []
            for b, (score, tokens) in enumerate(prompt_beams):
                top = np.argsort(-logprobs[row + b], kind="stable")[: 2 * k]
                candidates += [(score + logprobs[row + b, t], b, int(t)) for t in top]
            candidates.sort(key=lambda c: -c[0])
            kept = []
            for score, b, token in candidates:
                tokens = prompt_beams[b][1]
                if config.is_eos(token):
                    if len(finished[p]) < k or score / max(len(tokens), 1) ** config.length_penalty > \
                            min(f[0] for f in finished[p]):
                        finished[p].append((score / max(len(tokens), 1) ** config.length_penalty, tokens))
                        finished[p] = sorted(finished[p], key=lambda f: -f[0])[:k]
                    continue
                kept.append((score, b, token))
                if len(kept) == k:
                    break
            best_live = kept[0][0] / (len(prompt_beams[0][1]) + 1) ** config.length_penalty if kept else -np.inf
            if len(finished[p]) == k and min(f[0] for f in finished[p]) >= best_live:
                done[p] = True
            else:
                next_beams.append((p, [(s, prompt_beams[b][1] + [t]) for s, b, t in kept]))
                row_of += [row + b for _, b, _ in kept]
                chosen += [t for _, _, t in kept]
            row += len(prompt_beams)
        if not next_beams:
            break
        for p, new_beams in next_beams:
            beams[p] = new_beams
        session.select(np.asarray(row_of))
        session.append(np.asarray(chosen))
        if step == config.max_new_tokens - 1:
            break
    results = []
    for p in range(len(prompts)):
        pool = finished[p] + ([] if done[p] else
                              [(s / max(len(t), 1) ** config.length_penalty, t) for s, t in beams[p]])
        pool.sort(key=lambda f: -f[0])
        results.append([tokens for _, tokens in pool[: config.num_return_sequences]])
    return results
