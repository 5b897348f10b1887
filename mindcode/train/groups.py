"""AdamW's parameter groups, the same on both backends: weight decay on matrices only, as MindFormers groups them
(no decay on 1-D norm scales and on biases)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def decays(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) > 1 and not name.endswith(".bias")


def decay_groups(named: Iterable[tuple[str, Any]]) -> tuple[list[Any], list[Any]]:
    """``(decayed, not decayed)`` parameters of ``(name, parameter)`` pairs (a parameter has a ``shape``)."""
    decayed, rest = [], []
    for name, param in named:
        (decayed if decays(name, tuple(param.shape)) else rest).append(param)
    return decayed, rest
