"""KV-cached next-token logits for mindcode's decoder (transformers' DynamicCache, left-padded batches).

``add`` (new rows joining a running batch, for the server's continuous batching) prefills only the new rows, into
a cache of their own, and joins it to the running one: both are left-padded to the longer of the two (padding keys
are masked out, and positions come from the mask), so the running rows' prefill is never run again. ``prefilled``
counts the rows prefilled so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], pad_id: int = 0):
        import torch

        self.torch, self.model, self.pad_id = torch, model, pad_id
        self.prefilled = 0
        self.rows = [list(p) for p in prompts]
        ids, self.mask = self._left_padded(self.rows)
        self.cache, self._last = self._prefill(ids, self.mask)

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

    def _prefill(self, ids: Any, mask: Any) -> tuple[Any, Any]:
        """One forward over left-padded rows into a new cache: (the cache, their last logits)."""
        from transformers import DynamicCache

        self.prefilled += len(ids)
        return self._forward(ids, mask, DynamicCache())

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
        cache, last = self._prefill(ids, mask)
        width = max(self.mask.shape[1], mask.shape[1])

        def left_pad(x: Any, dim: int) -> Any:
            pad = width - x.shape[dim]
            if not pad:
                return x
            shape = list(x.shape)
            shape[dim] = pad
            return torch.cat([torch.zeros(shape, dtype=x.dtype, device=x.device), x], dim=dim)

        joined = [(torch.cat([left_pad(k0, 2), left_pad(k1, 2)]), torch.cat([left_pad(v0, 2), left_pad(v1, 2)]))
                  for (k0, v0), (k1, v1) in zip(self.cache.to_legacy_cache(), cache.to_legacy_cache())]
        self.cache = DynamicCache.from_legacy_cache(tuple(joined))
        self.mask = torch.cat([left_pad(self.mask, 1), left_pad(mask, 1)])
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
