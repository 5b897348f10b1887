"""``mindcode data tokenize``: records -> MindRecord (MindFormers) and/or ``.npy`` (PyTorch) with identical rows."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from mindcode.terminal import progress_bar

from mindcode.data.arrays import NpyWriter
from mindcode.data import preference
from mindcode.data.conversations import conversation_of
from mindcode.data.io import utf8_lines, Record, RecordError, Rejects, expand_inputs, read_records, require
from mindcode.data.templates import ConversationError, check_roles, render, render_fim
from mindcode.data.tokenize import HF_TEMPLATE, Packer, Stats, chunk_text, fit, make_encoder, to_rows
from mindcode.errors import MindcodeError
from mindcode.tokenizer import load_tokenizer

BATCH = 1024
# What each --dataset_type writes: MindRecord columns, or one .npy file per column. A dpo row's two halves share the
# prompt; "chosen_*" and "rejected_*" of one row are one pair.
COLUMNS = {
    "qa": ["input_ids", "labels"],
    "wiki": ["input_ids"],
    "dpo": ["chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"],
}
FIM_FIELDS = ("fim_prefix", "fim_suffix", "fim_middle")


def iter_inputs(pattern: str, text_field: str = "text") -> Iterator[Record]:
    for path in expand_inputs(pattern):
        if path.suffix in (".txt", ".tokens", ".raw"):
            yield from _paragraphs(path)
        else:
            yield from read_records(path)


def _paragraphs(path: Path) -> Iterator[Record]:
    """Plain text: paragraphs separated by blank lines, each a record ``{"text": ...}``, read a line at a time."""
    lines: list[str] = []
    index, start = 0, 1
    with utf8_lines(path) as numbered:
        for number, line in numbered:
            if line.strip("\r\n"):
                if not lines:
                    start = number
                lines.append(line)
                continue
            if lines:
                yield Record({"text": "".join(lines).rstrip("\n")}, str(path), index, start)
                index, lines = index + 1, []
    if lines:
        yield Record({"text": "".join(lines).rstrip("\n")}, str(path), index, start)


class Outputs:
    """The MindRecord file and/or the .npy pair, written together so their rows are the same rows.

    Writing happens on a background thread (MindSpore's writer and numpy release the GIL), overlapping with
    tokenization of the next batch; an error there is raised on the next write or on commit.
    """

    def __init__(self, output_file: str | None, torch_output: str | None, columns: list[str], length: int,
                 dataset_type: str):
        if not output_file and not torch_output:
            raise MindcodeError("give --output_file (MindRecord) and/or --torch_output (a folder for .npy)")
        self.writers: list[tuple[Any, list[str] | None]] = []
        try:
            if output_file:
                from backends.ascend.mindrecord import MindRecordWriter

                self.writers.append((MindRecordWriter(output_file, columns, dataset_type), None))
            if torch_output:
                for column in columns:
                    self.writers.append((NpyWriter(Path(torch_output) / f"{column}.npy", length), [column]))
        except BaseException:
            self.abort()
            raise
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mindcode-writer")
        self.pending: Future | None = None

    def _write_now(self, arrays: dict[str, np.ndarray]) -> None:
        for writer, columns in self.writers:
            if columns is None:
                writer.write(**arrays)
            else:
                writer.write(arrays[columns[0]])

    def write(self, **arrays: np.ndarray) -> None:
        self._wait()
        self.pending = self.pool.submit(self._write_now, arrays)

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def commit(self) -> None:
        self._wait()
        self.pool.shutdown()
        for writer, _ in self.writers:
            writer.commit()

    def abort(self) -> None:
        if getattr(self, "pending", None) is not None:
            self.pending.exception()  # let the last write finish before removing its files
        if hasattr(self, "pool"):
            self.pool.shutdown()
        for writer, _ in self.writers:
            writer.abort()


def tokenize_dataset(dataset_type: str, input_glob: str, model_file: str, seq_length: int,
                     output_file: str | None = None, torch_output: str | None = None, template: str = "vicuna_v1.1",
                     pack: bool = False, on_error: str = "fail", text_field: str = "text",
                     progress: bool = True) -> dict[str, Any]:
    """Tokenize and write; returns (and writes beside the output) the JSON summary."""
    start = time.perf_counter()
    if dataset_type not in COLUMNS:
        raise MindcodeError(f"--dataset_type {dataset_type!r}: choose {', '.join(COLUMNS)}")
    if seq_length < 2:
        raise MindcodeError(f"--seq_length {seq_length}: must be at least 2")
    length = seq_length + 1
    if template == HF_TEMPLATE and dataset_type == "wiki":
        raise MindcodeError("--template hf is for conversations (qa, dpo); wiki text has no template")
    # wiki text needs only the tokenizer (sentencepiece or HF), conversations their template's encoder
    encoder = load_tokenizer(model_file) if dataset_type == "wiki" else make_encoder(model_file, template)
    target = Path(output_file) if output_file else Path(torch_output) / "data"
    stats, rejects = Stats(), Rejects(on_error, output_path=target)
    columns = COLUMNS[dataset_type]
    records = iter_inputs(input_glob, text_field)
    outputs = Outputs(output_file, torch_output, columns, length, dataset_type)
    bar = progress_bar(desc="tokenize", unit=" records", disable=not progress)
    try:
        if dataset_type == "qa":
            _tokenize_qa(records, encoder, template, pack, length, stats, rejects, outputs, bar)
        elif dataset_type == "dpo":
            _tokenize_pairs(records, encoder, template, length, stats, rejects, outputs, bar)
        else:
            _tokenize_wiki(records, encoder, text_field, length, stats, rejects, outputs, bar)
        if stats.rows == 0:
            reasons = ", ".join(f"{n} {r}" for r, n in (stats.skipped + rejects.reasons).items())
            raise MindcodeError(f"{input_glob}: no rows to write from {stats.records} records (skipped: {reasons})")
        outputs.commit()
    except BaseException:
        outputs.abort()
        rejects.discard()
        raise
    finally:
        bar.close()
    stats.skipped.update(rejects.reasons)
    summary = {
        "dataset_type": dataset_type,
        "seq_length": seq_length,
        "template": template if dataset_type != "wiki" else None,
        "packed": pack,
        **stats.as_dict(seq_length),
        **({"pairs": stats.samples} if dataset_type == "dpo" else {}),  # rows counts both halves of a pair
        "output_file": output_file,
        "torch_output": torch_output,
        "rejects_file": rejects.write(),
        "seconds": round(time.perf_counter() - start, 3),
    }
    summary["tokens_per_s"] = round(stats.tokens / summary["seconds"]) if summary["seconds"] else None
    Path(f"{target}.summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _render_batch(batch: list[Record], template: str, encoder: Any) -> tuple[list[Any], list[tuple]]:
    """Rendered conversations, and ``(position, field, problem, reason)`` for each record that cannot be used."""
    conversations, errors = [], []
    for position, record in enumerate(batch):
        try:
            if template == HF_TEMPLATE:
                if "fim_middle" in record.data:
                    raise RecordError(record, "fim_middle", "infilling rows need a sentencepiece tokenizer's "
                                                           "infilling tokens, not --template hf")
                messages = conversation_of(record)
                check_roles([role for role, _ in messages[1 if messages[0][0] == "system" else 0:]])
                conversations.append(encoder.render(messages))
            elif "fim_middle" in record.data:
                fields = [require(record, f, allow_empty=f != "fim_middle") for f in FIM_FIELDS]
                conversations.append(render_fim(*fields))
            else:
                conversations.append(render(conversation_of(record), template))
        except RecordError as exc:
            errors.append((position, exc.field, exc.problem, None))
        except ConversationError as exc:
            errors.append((position, "conversations", str(exc), exc.reason))
        except MindcodeError as exc:  # the chat template itself refused (raise_exception) or rewrites turns
            errors.append((position, "conversations", str(exc), "chat template"))
    return conversations, errors


def _qa_rows(batch: list[Record], encoder: Any, template: str, length: int,
             pack: bool) -> tuple[Any, list[tuple], Stats]:
    """One batch: (padded rows, or samples when packing), errors, and the batch's stats."""
    stats = Stats()
    conversations, errors = _render_batch(batch, template, encoder)
    samples = [s for s in (fit(s, length, stats) for s in encoder.encode_batch(conversations)) if s]
    stats.samples += len(samples)
    if pack:
        return samples, errors, stats
    return (to_rows(samples, length, stats) if samples else None), errors, stats


_WORKER: tuple = ()


def _worker_init(model_file: str, template: str, length: int) -> None:
    global _WORKER
    _WORKER = (make_encoder(model_file, template, threads=1), template, length)


def _worker_rows(batch: list[Record]) -> tuple[Any, list[tuple], Stats]:
    encoder, template, length = _WORKER
    return _qa_rows(batch, encoder, template, length, pack=False)


def _merge(into: Stats, part: Stats) -> None:
    for name in ("samples", "rows", "truncated", "tokens", "trained_tokens", "unk_tokens", "dropped_tail_tokens"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    into.skipped.update(part.skipped)


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    while batch := list(islice(records, BATCH)):
        yield batch


def _can_spawn() -> bool:
    """Spawned workers re-import the caller's ``__main__``; that works for a script or ``-m`` module, not stdin."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or Path(path).is_file()


def _qa_results(records, encoder, template, length, pack) -> Iterator[tuple]:
    """``(batch, rows, errors, stats)`` in input order. From the third batch on (small inputs never pay for
    starting workers), batches are rendered and tokenized by one worker process per core, unless packing (which
    needs one ordered stream)."""
    batches = _batches(records)
    for batch in islice(batches, 2):
        yield (batch, *_qa_rows(batch, encoder, template, length, pack))
    workers = min(os.cpu_count() or 1, 8)
    if pack or workers < 2 or not _can_spawn():
        for batch in batches:
            yield (batch, *_qa_rows(batch, encoder, template, length, pack))
        return
    context = multiprocessing.get_context("spawn")  # a fork would inherit MindSpore's threads
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                               initargs=(encoder.model_file, template, length))
    try:
        pending: deque = deque()
        for batch in batches:
            pending.append((batch, pool.submit(_worker_rows, batch)))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                yield (done, *future.result())
        while pending:
            done, future = pending.popleft()
            yield (done, *future.result())
    finally:
        pool.shutdown(cancel_futures=True)


def _tokenize_qa(records, encoder, template, pack, length, stats, rejects, outputs, bar) -> None:
    """Rows, errors and stats are those of a serial run, whichever process made them."""
    packer = Packer(length) if pack else None
    for batch, rows, errors, part in _qa_results(records, encoder, template, length, pack):
        stats.records += len(batch)
        for position, field, problem, reason in errors:
            rejects.handle(RecordError(batch[position], field, problem), reason=reason)
        _merge(stats, part)
        if packer is not None:
            samples = [row for sample in rows for row in packer.add(sample)]
            rows = to_rows(samples, length, stats) if samples else None
        if rows is not None:
            outputs.write(input_ids=rows[0], labels=rows[1])
        bar.update(len(batch))
    if packer is not None and (rest := list(packer.close())):
        ids, labels = to_rows(rest, length, stats)
        outputs.write(input_ids=ids, labels=labels)


def _tokenize_wiki(records, tokenizer, text_field, length, stats, rejects, outputs, bar) -> None:
    """MindFormers' pretraining rows: each text as BOS (where the tokenizer has one), its tokens, EOS; concatenated
    and cut into ``length``-token rows."""
    bos = [tokenizer.bos_id] if tokenizer.bos_id is not None else []

    def paragraphs() -> Iterator[list[int]]:
        while batch := list(islice(records, BATCH)):
            texts = []
            for record in batch:
                stats.records += 1
                value = record.data.get(text_field)
                if not isinstance(value, str) or not value.strip():
                    rejects.handle(RecordError(record, text_field, "missing or empty text"))
                    continue
                texts.append(value)
            for ids in tokenizer.encode_batch(texts):
                stats.samples += 1
                yield [*bos, *ids, tokenizer.eos_id]
            bar.update(len(batch))

    rows = []
    for row in chunk_text(paragraphs(), length, stats):
        rows.append(row)
        if len(rows) == BATCH:
            outputs.write(input_ids=np.stack(rows))
            rows = []
    if rows:
        outputs.write(input_ids=np.stack(rows))


def _tokenize_pairs(records, encoder, template, length, stats, rejects, outputs, bar) -> None:
    """Preference pairs: both answers after the same prompt; a pair is kept whole or skipped with its reason."""
    for batch in _batches(records):
        conversations, kept = [], []
        for record in batch:
            stats.records += 1
            found = preference.problems(record)
            try:
                if found:
                    name, reason, message = found[0]
                    rejects.handle(RecordError(record, name, message), reason=reason)
                    continue
                if template == HF_TEMPLATE:
                    conversations += [encoder.render(m, last_only=True) for m in preference.pair_messages(record)]
                else:
                    conversations += preference.render_pair(record, template)
                kept.append(record)
            except RecordError as exc:
                rejects.handle(exc)
            except ConversationError as exc:
                rejects.handle(RecordError(record, "prompt", str(exc)), reason=exc.reason)
            except MindcodeError as exc:  # the chat template refused
                rejects.handle(RecordError(record, "prompt", str(exc)), reason="chat template")
        samples = encoder.encode_batch(conversations)
        pairs = []
        for record, chosen, rejected in zip(kept, samples[0::2], samples[1::2]):
            part = Stats()
            chosen, rejected = fit(chosen, length, part), fit(rejected, length, part)
            stats.truncated += part.truncated
            if chosen is None or rejected is None:
                rejects.add(record, "an answer has no trained tokens left after truncation")
                continue
            pairs.append((chosen, rejected))
        stats.samples += len(pairs)
        if pairs:
            chosen_ids, chosen_labels = to_rows([c for c, _ in pairs], length, stats)
            rejected_ids, rejected_labels = to_rows([r for _, r in pairs], length, stats)
            outputs.write(chosen_input_ids=chosen_ids, chosen_labels=chosen_labels,
                          rejected_input_ids=rejected_ids, rejected_labels=rejected_labels)
        bar.update(len(batch))
