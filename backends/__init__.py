"""Backends by name. Each is an import string resolved only when chosen, so picking one never imports the other.

    >>> from backends import get_backend
    >>> get_backend("gpu").name
    'gpu'
"""

from __future__ import annotations

import importlib

from backends.base import Backend
from mindcode.errors import MindcodeError

BACKENDS: dict[str, str] = {
    "ascend": "backends.ascend:AscendBackend",
    "gpu": "backends.gpu:GpuBackend",
}


def get_backend(name: str) -> Backend:
    """Instantiate the backend registered as ``name``; an unknown name raises listing the valid ones."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise MindcodeError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["BACKENDS", "Backend", "get_backend"]
