"""Step arithmetic both trainers share: AdamW's parameter groups (weight decay on matrices only, as MindFormers
groups them: no decay on 1-D norm scales and on biases) and the tokens a step reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def decays(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) > 1 and not name.endswith(".bias")


def decay_groups(named: Iterable[tuple[str, Any]]) -> tuple[list[Any], list[Any]]:
    """``(decayed, not decayed)`` parameters of ``(name, parameter)`` pairs (a parameter has a ``shape``)."""
    decayed, rest = [], []
    for name, param in named:
        (decayed if decays(name, tuple(param.shape)) else rest).append(param)
    return decayed, rest


def input_tokens(input_ids: np.ndarray) -> int:
    """The tokens a batch of ``[rows, seq_length + 1]`` rows feeds the model (padding, id 0, not counted): the
    ``tokens`` of a step's metrics, which throughput is computed from."""
    return int((np.asarray(input_ids)[:, :-1] != 0).sum())
