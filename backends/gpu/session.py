"""KV-cached next-token logits for mindcode's decoder (transformers' DynamicCache, left-padded batches)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Session:
    def __init__(self, model: Any, prompts: list[list[int]], pad_id: int = 0):
        import torch
        from transformers import DynamicCache

        self.torch, self.model = torch, model
        device = next(model.parameters()).device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
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
            out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                             past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def logits(self) -> np.ndarray:
        return self._last.cpu().numpy()

    def append(self, tokens: np.ndarray) -> None:
        torch = self.torch
        device = self.mask.device
        self.mask = torch.cat([self.mask, torch.ones((len(tokens), 1), dtype=torch.long, device=device)], dim=1)
        self._last = self._forward(torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=device)[:, None])

    def select(self, rows: np.ndarray) -> None:
        index = self.torch.as_tensor(np.asarray(rows), dtype=self.torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        self._last = self._last[index]
        self.cache.reorder_cache(index)
