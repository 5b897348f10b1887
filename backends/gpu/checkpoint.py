"""safetensors files written from numpy through torch (numpy has no bfloat16)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SINGLE_FILE = "model.safetensors"


def save_safetensors(tensors: Iterable[tuple[str, np.ndarray, str]], directory: Path) -> None:
    """Write ``directory/model.safetensors`` atomically (temp file + rename)."""
    import torch
    from safetensors.torch import save_file

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    state = {name: torch.from_numpy(np.array(array, dtype=np.float32)).to(dtypes[dtype]) for name, array, dtype in tensors}
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{SINGLE_FILE}.tmp-{os.getpid()}"
    try:
        save_file(state, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, directory / SINGLE_FILE)
    finally:
        tmp.unlink(missing_ok=True)
