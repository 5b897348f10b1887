"""Next-token logits for mindcode's decoder from MindFormers' own incremental inference (``use_past``).

The model is MindFormers' ``LlamaForCausalLM`` built with ``use_past=True`` (``is_dynamic=False``, ``block_size``
16, a block cache sized for ``rows x length`` tokens). A session runs MindFormers' prefill once over the prompts
(right-padded to the model's length, as MindFormers pads for static shapes; ``is_first_iteration=True``) and then one-token decode steps, passing what
MindFormers' generator passes: ``batch_valid_length`` (tokens so far), ``block_tables`` (each row's cache blocks)
and ``slot_mapping`` (where each new token's key and value go). Both graphs have fixed shapes (``rows`` rows, the
padding rows pointed at a scratch block), so each compiles once however long the generation. Only the last real
position's logits come back to the host. On MindSpore's CPU target ``backends/ascend/cpu_kernels.py`` stands in for
the three Ascend-only kernels of that path; on Ascend MindFormers' fused kernels run.

Rows map to slots; a slot owns ``length / block_size`` blocks. ``select`` keeps, drops or duplicates rows (finished
sequences, beams): a duplicated row gets a free slot and a copy of its parent's cached blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends.ascend import runtime
from mindcode.errors import MindcodeError

BLOCK_SIZE = 16
SCRATCH = 0  # block 0: padding tokens write here, no sequence reads it


def cache_settings(rows: int, length: int, device: str) -> dict[str, Any]:
    """MindFormers' ``LlamaConfig`` keys for incremental inference over ``rows`` sequences of ``length`` tokens: a
    block cache for exactly that many tokens. On Ascend MindFormers' predict settings (its CodeLlama predict card:
    dynamic shapes and flash attention); MindSpore's CPU target runs neither (see DESIGN.md)."""
    per_row = math.ceil(length / BLOCK_SIZE)
    ascend = device != "CPU"
    return {"use_past": True, "is_dynamic": ascend, "block_size": BLOCK_SIZE, "num_blocks": 1 + rows * per_row,
            "use_flash_attention": ascend}


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], length: int, max_rows: int, pad_id: int = 0):
        self.ms = runtime.mindspore()
        config = model.config
        if not getattr(config, "use_past", False):
            raise MindcodeError("the ascend session needs a model built for inference (build_model(..., rows=N))")
        self.model, self.pad_id = model, pad_id
        self.rows_max = (config.num_blocks - 1) // math.ceil(config.seq_length / BLOCK_SIZE)
        if max_rows > self.rows_max:
            raise MindcodeError(f"{max_rows} rows exceed the model's cache of {self.rows_max}")
        self.length = min(length, config.seq_length)
        self.per_slot = math.ceil(config.seq_length / BLOCK_SIZE)
        self.tokens = [list(p) for p in prompts]
        self.slots = list(range(len(prompts)))  # row -> slot
        self.cached = [0] * len(prompts)  # tokens of each row whose keys/values are in the cache
        self.caches = [p for name, p in model.parameters_and_names() if name.endswith(("key_cache", "value_cache"))]
        self._logits: np.ndarray | None = None  # the last logits of every row
        self._ready: set[int] = set()  # rows whose entry in _logits is for their current last token
        model.set_train(False)

    def _blocks(self, slot: int) -> np.ndarray:
        return 1 + slot * self.per_slot + np.arange(self.per_slot, dtype=np.int32)

    def _table(self) -> np.ndarray:
        table = np.full((self.rows_max, self.per_slot), SCRATCH, dtype=np.int32)
        for row, slot in enumerate(self.slots):
            table[row] = self._blocks(slot)
        return table

    def _slot_of(self, row: int, position: int) -> int:
        return int(self._blocks(self.slots[row])[position // BLOCK_SIZE]) * BLOCK_SIZE + position % BLOCK_SIZE

    def _run(self, ids: np.ndarray, valid: np.ndarray, slots: np.ndarray, first: bool) -> np.ndarray:
        ms = self.ms
        self.model.add_flags_recursive(is_first_iteration=first)
        self.model.phase = "prefill" if first else "increment"
        out = self.model(ms.Tensor(ids, ms.int32), batch_valid_length=ms.Tensor(valid, ms.int32),
                         block_tables=ms.Tensor(self._table(), ms.int32), slot_mapping=ms.Tensor(slots, ms.int32))
        logits = (out[0] if isinstance(out, tuple) else out).asnumpy()
        return logits.reshape(self.rows_max, -1)[: len(self.tokens)]

    def _prefill(self, rows: list[int]) -> np.ndarray:
        """MindFormers' prefill of ``rows`` (their whole token lists) into their slots; the other rows of the graph
        are padding pointed at the scratch block, so running rows keep their cache."""
        longest = max(len(self.tokens[r]) for r in rows)
        if longest > self.length:
            raise MindcodeError(f"a prompt of {longest} tokens exceeds the model's length {self.length}")
        width = self.model.config.seq_length  # static shapes: MindFormers' causal mask is built for seq_length
        ids = np.full((self.rows_max, width), self.pad_id, dtype=np.int32)
        slots = np.full((self.rows_max, width), SCRATCH * BLOCK_SIZE, dtype=np.int32)
        valid = np.ones(self.rows_max, dtype=np.int32)
        for row in rows:
            tokens = self.tokens[row]
            ids[row, :len(tokens)] = tokens
            slots[row, :len(tokens)] = [self._slot_of(row, t) for t in range(len(tokens))]
            valid[row] = len(tokens)
            self.cached[row] = len(tokens)
        return self._run(ids, valid, slots.reshape(-1), first=True)[rows]

    def _decode(self, rows: list[int]) -> np.ndarray:
        """One decode step of ``rows`` (each has exactly one token not yet in the cache)."""
        ids = np.full((self.rows_max, 1), self.pad_id, dtype=np.int32)
        slots = np.full(self.rows_max, SCRATCH * BLOCK_SIZE, dtype=np.int32)
        valid = np.ones(self.rows_max, dtype=np.int32)
        for row in rows:
            tokens = self.tokens[row]
            if len(tokens) > self.length:
                raise MindcodeError(f"sequence of {len(tokens)} tokens exceeds the model's length {self.length}")
            ids[row, 0] = tokens[-1]
            slots[row] = self._slot_of(row, len(tokens) - 1)
            valid[row] = len(tokens)
            self.cached[row] = len(tokens)
        return self._run(ids, valid, slots, first=False)[rows]

    def logits(self) -> np.ndarray:
        if self._logits is None:
            self._logits = np.zeros((len(self.tokens), self.model.config.vocab_size), np.float32)
        stale = [r for r in range(len(self.tokens)) if r not in self._ready]
        fresh = [r for r in stale if self.cached[r] == 0]  # never prefilled
        pending = [r for r in stale if self.cached[r] == len(self.tokens[r]) - 1]
        if len(fresh) + len(pending) != len(stale):
            raise MindcodeError("each decode step takes exactly one new token per row")
        if fresh:
            self._logits[fresh] = self._prefill(fresh)
        if pending:
            self._logits[pending] = self._decode(pending)
        self._ready = set(range(len(self.tokens)))
        return self._logits

    def add(self, prompts: list[list[int]]) -> None:
        """New rows join the running ones: each gets a free slot and is prefilled there (the running rows'
        caches stay as they are); their logits come with the next ``logits()``."""
        used = set(self.slots)
        free = [s for s in range(self.rows_max) if s not in used]
        if len(prompts) > len(free):
            raise MindcodeError(f"{len(self.tokens) + len(prompts)} rows exceed the model's cache of {self.rows_max}")
        self._logits = None if self._logits is None else np.concatenate(
            [self._logits, np.zeros((len(prompts), self._logits.shape[1]), np.float32)])
        self.tokens += [list(p) for p in prompts]
        self.slots += free[:len(prompts)]
        self.cached += [0] * len(prompts)

    def append(self, tokens: np.ndarray) -> None:
        for row, token in zip(self.tokens, tokens):
            row.append(int(token))
        self._ready = set()

    def select(self, rows: np.ndarray) -> None:
        rows = [int(r) for r in rows]
        if len(rows) > self.rows_max:
            raise MindcodeError(f"{len(rows)} rows exceed the model's cache of {self.rows_max}")
        taken: set[int] = set()
        slots, copies = [], []
        free = [s for s in range(self.rows_max) if s not in {self.slots[r] for r in set(rows)}]
        for r in rows:
            slot = self.slots[r]
            if slot in taken:  # a second copy of a row (a beam's second child): a slot of its own, its blocks copied
                new = free.pop(0)
                copies.append((slot, new, self.cached[r]))
                slot = new
            taken.add(slot)
            slots.append(slot)
        if copies and any(self.cached):
            self._copy_blocks(copies)
        self._ready = {i for i, r in enumerate(rows) if r in self._ready}
        self.tokens = [list(self.tokens[r]) for r in rows]
        self.cached = [self.cached[r] for r in rows]
        self.slots = slots
        if self._logits is not None:
            self._logits = self._logits[rows]

    def _copy_blocks(self, copies: list[tuple[int, int, int]]) -> None:
        ms = self.ms
        src, dst = [], []
        for old, new, cached in copies:
            used = math.ceil(cached / BLOCK_SIZE)
            src += self._blocks(old)[:used].tolist()
            dst += self._blocks(new)[:used].tolist()
        if not src:
            return
        src_index = ms.Tensor(np.asarray(src, np.int32))
        dst_index = ms.Tensor(np.asarray(dst, np.int32).reshape(-1, 1))
        for cache in self.caches:
            updated = ms.ops.tensor_scatter_update(cache.value(), dst_index, ms.ops.gather(cache.value(), src_index, 0))
            cache.set_data(updated)
