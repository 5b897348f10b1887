"""A KV cache sized by the session (its rows x its length), allocated once per layer: every step writes its keys and
values in place, where transformers' ``DynamicCache`` concatenates, copying the whole cache, at every token.

The cache hands the attention a view of the rows and positions filled so far, so batches keep their dynamic shape.
Dropping or reordering rows (finished rows, beams) copies the kept rows to the front; rows that join a running batch
are written after them, the shorter side left-padded (the padding is masked out). A batch that outgrows the length
(a joined row longer than the running ones, in serving) gets a buffer twice as long, once.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer


class FixedLayer(DynamicLayer):
    """One decoder layer's keys and values in buffers of ``rows x length`` positions."""

    def __init__(self, rows: int, length: int):
        super().__init__()
        self.capacity_rows, self.capacity = rows, length
        self.rows = self.filled = 0
        self.key_buffer: Any = None
        self.value_buffer: Any = None

    def lazy_initialization(self, key_states: Any) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        _, heads, _, dim = key_states.shape
        shape = (max(self.capacity_rows, key_states.shape[0]), heads, self.capacity, dim)
        self.key_buffer = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.value_buffer = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.is_initialized = True

    def update(self, key_states: Any, value_states: Any, cache_kwargs: dict[str, Any] | None = None) -> tuple:
        if not self.is_initialized:
            self.lazy_initialization(key_states)
        rows, new = key_states.shape[0], key_states.shape[-2]
        self._reserve(rows, self.filled + new)
        self.key_buffer[:rows, :, self.filled:self.filled + new] = key_states
        self.value_buffer[:rows, :, self.filled:self.filled + new] = value_states
        self.rows, self.filled = rows, self.filled + new
        return self._views()

    def get_seq_length(self) -> int:
        return self.filled

    def reorder_cache(self, beam_idx: Any) -> None:
        """Keep (reorder, repeat) the rows at ``beam_idx``, written to the front of the buffers."""
        if not self.is_initialized:
            return
        index = beam_idx.to(self.device)
        self._reserve(len(index), self.filled)
        kept_keys = self.key_buffer[:self.rows, :, :self.filled].index_select(0, index)
        kept_values = self.value_buffer[:self.rows, :, :self.filled].index_select(0, index)
        self.key_buffer[:len(index), :, :self.filled] = kept_keys
        self.value_buffer[:len(index), :, :self.filled] = kept_values
        self.rows = len(index)
        self._views()

    def batch_select_indices(self, indices: Any) -> None:
        self.reorder_cache(indices)

    def join(self, keys: Any, values: Any) -> None:
        """Rows prefilled on their own (``[new rows, heads, width, dim]``) after the running ones, both right-aligned
        to the longer width."""
        new_rows, width = keys.shape[0], keys.shape[-2]
        total = max(self.filled, width)
        self._reserve(self.rows + new_rows, total)
        if total > self.filled:  # the running rows move right; their new left part is padding
            shift = total - self.filled
            for buffer in (self.key_buffer, self.value_buffer):
                buffer[:self.rows, :, shift:total] = buffer[:self.rows, :, :self.filled].clone()
                buffer[:self.rows, :, :shift] = 0
        for buffer, states in ((self.key_buffer, keys), (self.value_buffer, values)):
            buffer[self.rows:self.rows + new_rows, :, :total - width] = 0
            buffer[self.rows:self.rows + new_rows, :, total - width:total] = states
        self.rows, self.filled = self.rows + new_rows, total
        self._views()

    def _reserve(self, rows: int, length: int) -> None:
        """Room for ``rows`` rows of ``length`` positions: a buffer twice as long (or as wide) when it lacks it."""
        have_rows, _, have_length, _ = self.key_buffer.shape
        if rows <= have_rows and length <= have_length:
            return
        shape = (max(rows, have_rows), self.key_buffer.shape[1], max(length, 2 * have_length), self.key_buffer.shape[3])
        for name in ("key_buffer", "value_buffer"):
            grown = torch.zeros(shape, dtype=self.dtype, device=self.device)
            grown[:self.rows, :, :self.filled] = getattr(self, name)[:self.rows, :, :self.filled]
            setattr(self, name, grown)

    def _views(self) -> tuple[Any, Any]:
        self.keys = self.key_buffer[:self.rows, :, :self.filled]
        self.values = self.value_buffer[:self.rows, :, :self.filled]
        return self.keys, self.values


class FixedCache(Cache):
    """Every layer a ``FixedLayer`` of ``rows x length``."""

    def __init__(self, rows: int, length: int):
        super().__init__(layer_class_to_replicate=lambda: FixedLayer(rows, length))

    def join(self, other: Cache) -> None:
        """Append the rows of ``other`` (a cache of rows prefilled on their own), layer by layer."""
        for layer, joined in zip(self.layers, other.layers):
            layer.join(joined.keys, joined.values)
