"""Next-token logits from MindFormers' LlamaForCausalLM for mindcode's decoder.

On Ascend, MindFormers' incremental inference (``use_past``) is the fast path; on MindSpore's CPU target its
``generate`` does not run (an unregistered ArgMax kernel without use_past; an Ascend-only rotary op with it), so
this session runs the full forward in graph mode at one fixed shape ``[rows, length]`` (compiled once), right-padded,
and reads each row's logits at its last real token. Causal attention keeps real tokens blind to the padding after
them. Cost: one full forward per generated token (no KV cache) - fine for tests and small models on CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.ascend import runtime
from mindcode.errors import MindcodeError


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], length: int, max_rows: int, pad_id: int = 0):
        self.ms = runtime.mindspore()
        self.model, self.length, self.max_rows, self.pad_id = model, length, max_rows, pad_id
        self.rows = [list(p) for p in prompts]
        model.set_train(False)

    def logits(self) -> np.ndarray:
        if len(self.rows) > self.max_rows:
            raise MindcodeError(f"{len(self.rows)} rows exceed the compiled batch of {self.max_rows}")
        longest = max(len(r) for r in self.rows)
        if longest > self.length:
            raise MindcodeError(f"sequence of {longest} tokens exceeds the model's length {self.length}")
        ids = np.full((self.max_rows, self.length), self.pad_id, dtype=np.int32)
        for i, row in enumerate(self.rows):
            ids[i, :len(row)] = row
        logits, _tokens, _mask = self.model(self.ms.Tensor(ids))
        logits = logits.asnumpy()
        return np.stack([logits[i, len(row) - 1] for i, row in enumerate(self.rows)])

    def append(self, tokens: np.ndarray) -> None:
        for row, token in zip(self.rows, tokens):
            row.append(int(token))

    def select(self, rows: np.ndarray) -> None:
        self.rows = [list(self.rows[i]) for i in rows]
