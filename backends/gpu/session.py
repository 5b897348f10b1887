"""KV-cached next-token logits for mindcode's decoder (transformers' DynamicCache, left-padded batches).

``add`` (new rows joining a running batch, for the server's continuous batching) rebuilds the batch's cache from
every row's tokens: one prefill of the joined batch (recomputation), then decoding goes on as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], pad_id: int = 0):
        import torch

        self.torch, self.model, self.pad_id = torch, model, pad_id
        self._prefill([list(p) for p in prompts])

    def _prefill(self, prompts: list[list[int]]) -> None:
        """One forward over the left-padded rows, filling a new cache."""
        from transformers import DynamicCache

        torch = self.torch
        self.rows = prompts
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, device=device)
            mask[i, width - len(p):] = 1
        self.mask = mask
        self.cache = DynamicCache()
        self._last = self._forward(ids)

    def _forward(self, ids: Any) -> Any:
        torch = self.torch
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        with torch.no_grad():
            # logits of the last position only: a prefill never computes [rows, prompt, vocab]
            out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                             past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def logits(self) -> np.ndarray:
        return self._last.cpu().numpy()

    def add(self, prompts: list[list[int]]) -> None:
        self._prefill(self.rows + [list(p) for p in prompts])

    def append(self, tokens: np.ndarray) -> None:
        torch = self.torch
        for row, token in zip(self.rows, tokens):
            row.append(int(token))
        device = self.mask.device
        self.mask = torch.cat([self.mask, torch.ones((len(tokens), 1), dtype=torch.long, device=device)], dim=1)
        self._last = self._forward(torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=device)[:, None])

    def select(self, rows: np.ndarray) -> None:
        self.rows = [list(self.rows[int(r)]) for r in rows]
        index = self.torch.as_tensor(np.asarray(rows), dtype=self.torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        self._last = self._last[index]
        self.cache.reorder_cache(index)
