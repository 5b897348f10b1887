"""KV-cached next-token logits for mindcode's decoder: left-padded batches in a cache allocated once for the
session's rows and length (``kv_cache.FixedCache``: keys and values written in place, no per-token concatenation).

``add`` (new rows joining a running batch, for the server's continuous batching) prefills only the new rows, into
a cache of their own, and joins it to the running one: both are left-padded to the longer of the two (padding keys
are masked out, and positions come from the mask), so the running rows' prefill is never run again. ``prefilled``
counts the rows prefilled so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.gpu.kv_cache import FixedCache


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], max_rows: int, length: int, pad_id: int = 0):
        import torch

        self.torch, self.model, self.pad_id = torch, model, pad_id
        self.prefilled = 0
        self.rows = [list(p) for p in prompts]
        ids, self.mask = self._left_padded(self.rows)
        self.cache, self._last = self._prefill(ids, self.mask, FixedCache(max(max_rows, len(prompts)), length))

    def _left_padded(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        torch = self.torch
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        return ids, mask

    def _prefill(self, ids: Any, mask: Any, cache: Any) -> tuple[Any, Any]:
        """One forward over left-padded rows into an empty ``cache``: (the cache, their last logits)."""
        self.prefilled += len(ids)
        return self._forward(ids, mask, cache)

    def _forward(self, ids: Any, mask: Any, cache: Any) -> tuple[Any, Any]:
        torch = self.torch
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        with torch.no_grad():
            # logits of the last position only: a prefill never computes [rows, prompt, vocab]
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True, logits_to_keep=1)
        return out.past_key_values, out.logits[:, -1, :].float()

    def logits(self) -> np.ndarray:
        return self._last.cpu().numpy()

    def add(self, prompts: list[list[int]]) -> None:
        from transformers import DynamicCache

        torch = self.torch
        new = [list(p) for p in prompts]
        ids, mask = self._left_padded(new)
        cache, last = self._prefill(ids, mask, DynamicCache())
        self.cache.join(cache)
        width = max(self.mask.shape[1], mask.shape[1])

        def left_pad(x: Any) -> Any:
            pad = width - x.shape[1]
            return torch.cat([torch.zeros((x.shape[0], pad), dtype=x.dtype, device=x.device), x], dim=1) if pad else x

        self.mask = torch.cat([left_pad(self.mask), left_pad(mask)])
        self._last = torch.cat([self._last, last])
        self.rows += new

    def append(self, tokens: np.ndarray) -> None:
        torch = self.torch
        for row, token in zip(self.rows, tokens):
            row.append(int(token))
        device = self.mask.device
        self.mask = torch.cat([self.mask, torch.ones((len(tokens), 1), dtype=torch.long, device=device)], dim=1)
        ids = torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=device)[:, None]
        self.cache, self._last = self._forward(ids, self.mask, self.cache)

    def select(self, rows: np.ndarray) -> None:
        self.rows = [list(self.rows[int(r)]) for r in rows]
        index = self.torch.as_tensor(np.asarray(rows), dtype=self.torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        self._last = self._last[index]
        self.cache.reorder_cache(index)
