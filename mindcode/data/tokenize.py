"""Tokenization for training: conversations (qa) with assistant-only labels, and plain text (wiki/pretrain).

qa follows MindFormers' ``llama_preprocess.py --dataset_type qa``: BOS, then each round of the rendered template
tokenized as one string (sentencepiece adds its dummy prefix to each), each template ``</s>`` an EOS token; rows of
``seq_length + 1`` int32, padded with 0; labels unshifted, ``-100`` on BOS, template, user text and padding.

Where the trained span starts inside a round is found without per-token offsets: the round and the text before
the answer are both encoded (in batches, sentencepiece's threads), and the tokens they share are template tokens.
A token that straddles the boundary (``▁def`` for ``ASSISTANT: def``) carries answer characters, so it is trained.
The template's trailing space belongs to the answer as MindFormers counts it (it masks ``len(tok(instruction)) - 3``
ids: BOS, EOS and that space): when an answer starts with a newline, indentation or a tab, the space stays a
standalone ``▁`` token after ``ASSISTANT:`` and is trained, which is the token a model has to produce first when
its prompt ends at ``ASSISTANT:``. So the labels equal MindFormers' on every input it accepts; unlike MindFormers,
a sample that would lose all its labels is never written silently masked: it is skipped and counted with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mindcode.data.templates import Part
from mindcode.errors import MindcodeError
from mindcode.tokenizer import HFTokenizer, load_tokenizer

IGNORE = -100
PAD = 0
HF_TEMPLATE = "hf"  # --template hf: the HF tokenizer's own chat template


@dataclass
class Sample:
    ids: list[int]
    labels: list[int]


@dataclass
class Stats:
    """The JSON summary every tokenize run reports."""

    records: int = 0
    samples: int = 0
    rows: int = 0
    truncated: int = 0
    skipped: Counter = field(default_factory=Counter)
    tokens: int = 0  # real (non-pad) tokens written
    trained_tokens: int = 0
    unk_tokens: int = 0  # <unk> (id 0) in real text: on ascend it would be masked out of attention as padding
    dropped_tail_tokens: int = 0  # wiki: the last partial chunk

    def as_dict(self, seq_length: int) -> dict[str, Any]:
        cells = self.rows * (seq_length + 1)
        return {
            "records": self.records,
            "samples": self.samples,
            "rows": self.rows,
            "truncated": self.truncated,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "masked_fraction": round(1 - self.trained_tokens / cells, 6) if cells else 0.0,
            "padding_fraction": round(1 - self.tokens / cells, 6) if cells else 0.0,
            "unk_tokens": self.unk_tokens,
            "dropped_tail_tokens": self.dropped_tail_tokens,
        }


class ConversationEncoder:
    """Turns rendered conversations into (ids, labels) samples, encoding whole batches at a time."""

    def __init__(self, model_file: str, threads: int = -1, processor: Any = None):
        if processor is None:  # a .model file, or a directory whose tokenizer.model comes first (tokenizer_file)
            tokenizer = load_tokenizer(model_file)
            if tokenizer.kind != "sentencepiece":
                raise MindcodeError(f"{model_file}: FastChat templates need a sentencepiece tokenizer.model; with an "
                                    f"HF tokenizer use --template hf (its own chat template)")
            processor = tokenizer.sp
        self.sp = processor
        self.bos, self.eos = self.sp.bos_id(), self.sp.eos_id()
        self.threads = threads
        self.model_file = model_file
        self.special = {"bos": self.bos, "eos": self.eos}
        # Text encoded without the dummy prefix space: encode "\n" + text and drop the tokens of "\n".
        self.newline = self.sp.encode("\n")
        self.space = self.sp.piece_to_id("▁")  # a space that starts nothing: the template's last one

    def special_id(self, kind: str) -> int:
        if kind not in self.special:
            token = self.sp.piece_to_id(kind)
            if token == self.sp.unk_id() or not self.sp.is_control(token):
                raise MindcodeError(f"{self.model_file}: the tokenizer has no {kind!r} token (needed for infilling)")
            self.special[kind] = token
        return self.special[kind]

    def encode_batch(self, conversations: list[list[Part]]) -> list[Sample]:
        # 1. Split every conversation into rounds (text between special tokens) and note where training switches.
        plans, rounds, switches, no_space = self._split_rounds(conversations)
        # 2. Encode all rounds, and the text before every switch, in two batched calls.
        round_ids = self.sp.encode(rounds, num_threads=self.threads)
        if no_space:
            self._encode_without_space(rounds, round_ids, sorted(no_space))
        prefixes = [(r, off) for r, marks in enumerate(switches) for off, _ in marks if off > 0]
        prefix_ids = self.sp.encode([rounds[r][:off] for r, off in prefixes], num_threads=self.threads)
        boundary = {key: _common_prefix(ids, round_ids[key[0]]) for key, ids in zip(prefixes, prefix_ids)}
        for key, ids in zip(prefixes, prefix_ids):  # a trailing lone space is the answer's first token
            if ids and ids[-1] == self.space and boundary[key] == len(ids) and _trained_from(switches[key[0]], key[1]):
                boundary[key] -= 1
        # 3. Assemble: BOS, rounds with their labels, special tokens.
        return [self._assemble(plan, round_ids, switches, boundary) for plan in plans]

    def _split_rounds(self, conversations: list[list[Part]]) -> tuple[list[list[tuple]], list[str], list, set[int]]:
        """Per conversation its plan (``("special", id, trained)`` | ``("round", index)``); every round's text, its
        switches (``[(char offset, trained from there on)]``), and the rounds encoded without the dummy prefix
        space."""
        plans: list[list[tuple]] = []
        rounds: list[str] = []
        switches: list[list[tuple[int, bool]]] = []
        no_space: set[int] = set()
        for parts in conversations:
            plan: list[tuple] = []
            current: list[Part] = []
            for part in [*parts, None]:  # None: the end closes the last round
                if part is not None and part.kind == "text":
                    current.append(part)
                    continue
                if current:
                    if not current[0].space:
                        no_space.add(len(rounds))
                    plan.append(("round", len(rounds)))
                    rounds.append("".join(p.text for p in current))
                    switches.append(_switches(current))
                    current = []
                if part is not None:
                    plan.append(("special", self.special_id(part.kind), part.trained))
            plans.append(plan)
        return plans, rounds, switches, no_space

    def _assemble(self, plan: list[tuple], round_ids: list[list[int]], switches: list, boundary: dict) -> Sample:
        ids, labels = [self.bos], [IGNORE]
        if plan and plan[0][0] == "special" and plan[0][1] == self.bos:
            plan = plan[1:]
        while plan and plan[-1][0] == "special" and plan[-1][1] == self.bos:
            plan = plan[:-1]  # a template's trailing <s> opens a turn that never comes
        for step in plan:
            if step[0] == "special":
                ids.append(step[1])
                labels.append(step[1] if step[2] else IGNORE)
                continue
            r = step[1]
            tokens = round_ids[r]
            marks = switches[r]
            cuts = [0 if off == 0 else boundary[(r, off)] for off, _ in marks] + [len(tokens)]
            ids.extend(tokens)
            for (_, trained), start, end in zip(marks, cuts, cuts[1:]):
                labels.extend(tokens[start:end] if trained else [IGNORE] * (end - start))
        return Sample(ids, labels)

    def _encode_without_space(self, rounds: list[str], round_ids: list[list[int]], which: list[int]) -> None:
        k = len(self.newline)
        encoded = self.sp.encode(["\n" + rounds[r] for r in which], num_threads=self.threads)
        for r, ids in zip(which, encoded):
            if ids[:k] != self.newline:
                raise MindcodeError(f"{self.model_file}: cannot encode {rounds[r][:40]!r} without a leading space")
            round_ids[r] = ids[k:]


class ChatTemplateEncoder:
    """``--template hf``: each conversation rendered with the HF tokenizer's own chat template
    (``mindcode.data.hf_template``), tokenized once with character offsets, as transformers' ``apply_chat_template``
    tokenizes it (no BOS or EOS added beyond what the template writes). A token is trained when its characters
    overlap an assistant turn's span (the answer and the template's end-of-turn text)."""

    def __init__(self, model_file: str):
        from mindcode.data import hf_template

        self.model_file = model_file
        self.tokenizer = load_tokenizer(model_file)
        if not isinstance(self.tokenizer, HFTokenizer):
            raise MindcodeError(f"{model_file}: --template hf needs an HF tokenizer (tokenizer.json, or a model "
                                f"directory that has it and no tokenizer.model)")
        hf_template.check_template(self.tokenizer)  # once, before any record

    def render(self, messages: list[tuple[str, str]], last_only: bool = False) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text and the spans to train (only the final answer's with ``last_only``, for DPO)."""
        from mindcode.data import hf_template

        text, spans = hf_template.assistant_spans(self.tokenizer, [{"role": r, "content": c} for r, c in messages])
        return text, spans[-1:] if last_only else spans

    def encode_batch(self, conversations: list[tuple[str, list[tuple[int, int]]]]) -> list[Sample]:
        samples = []
        for text, spans in conversations:
            ids, offsets = self.tokenizer.encode_offsets(text)
            labels = [token if any(start < s_end and end > s_start for s_start, s_end in spans) else IGNORE
                      for token, (start, end) in zip(ids, offsets)]
            samples.append(Sample(ids, labels))
        return samples


def make_encoder(model_file: str, template: str, threads: int = -1) -> ConversationEncoder | ChatTemplateEncoder:
    return ChatTemplateEncoder(model_file) if template == HF_TEMPLATE else ConversationEncoder(model_file, threads)


def _trained_from(marks: list[tuple[int, bool]], offset: int) -> bool:
    return next(trained for off, trained in marks if off == offset)


def _switches(parts: list[Part]) -> list[tuple[int, bool]]:
    """Where training switches within one round's text parts: ``[(char offset, trained from there on)]``."""
    marks: list[tuple[int, bool]] = []
    length = 0
    for part in parts:
        if not marks or marks[-1][1] != part.trained:
            marks.append((length, part.trained))
        length += len(part.text)
    return marks


def _common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix (usually len(a) or len(a) - 1, so check those first)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    if n and a[: n - 1] == b[: n - 1]:
        return n - 1
    i = 0
    while a[i] == b[i]:
        i += 1
    return i


def fit(sample: Sample, length: int, stats: Stats) -> Sample | None:
    """Truncate to ``length``; a sample left with nothing to train is skipped (counted), never written masked."""
    if len(sample.ids) > length:
        stats.truncated += 1
        sample = Sample(sample.ids[:length], sample.labels[:length])
    if sample.labels.count(IGNORE) == len(sample.labels):
        stats.skipped["no trained tokens left after truncation"] += 1
        return None
    return sample


def to_rows(samples: list[Sample], length: int, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """Pad samples into ``[n, length]`` int32 arrays (pad 0, label -100)."""
    ids = np.full((len(samples), length), PAD, dtype=np.int32)
    labels = np.full((len(samples), length), IGNORE, dtype=np.int32)
    for i, sample in enumerate(samples):
        ids[i, : len(sample.ids)] = sample.ids
        labels[i, : len(sample.labels)] = sample.labels
        stats.tokens += len(sample.ids)
        stats.unk_tokens += sample.ids.count(PAD)
    stats.trained_tokens += int(np.count_nonzero(labels != IGNORE))
    stats.rows += len(samples)
    return ids, labels


class Packer:
    """Greedy packing: samples are appended to the open row while they fit, then the row is closed.

    Attention is not blocked between packed samples (as in MindFormers' pretraining concatenation); the labels keep
    each sample's own mask, so no template or user token is ever trained.
    """

    def __init__(self, length: int):
        self.length = length
        self.open = Sample([], [])

    def add(self, sample: Sample) -> Iterator[Sample]:
        if self.open.ids and len(self.open.ids) + len(sample.ids) > self.length:
            yield self.open
            self.open = Sample([], [])
        self.open.ids.extend(sample.ids)
        self.open.labels.extend(sample.labels)

    def close(self) -> Iterator[Sample]:
        if self.open.ids:
            yield self.open
            self.open = Sample([], [])


def chunk_text(token_stream: Iterator[list[int]], length: int, stats: Stats) -> Iterator[np.ndarray]:
    """wiki: concatenate per-paragraph token lists and cut into ``length``-token rows; the tail is dropped."""
    buffer: list[int] = []
    for tokens in token_stream:
        buffer.extend(tokens)
        while len(buffer) >= length:
            row = np.asarray(buffer[:length], dtype=np.int32)
            del buffer[:length]
            stats.tokens += length
            stats.trained_tokens += length - 1  # input-only rows: each token is the next one's label (not the first)
            stats.unk_tokens += int((row == 0).sum())
            stats.rows += 1
            yield row
    stats.dropped_tail_tokens += len(buffer)
