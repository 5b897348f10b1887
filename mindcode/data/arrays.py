"""Streaming ``.npy`` writer: rows are appended as they come and the header gets the final shape at the end.

The files are plain ``.npy`` (``np.load(path, mmap_mode="r")`` maps them), written under a temp name and renamed,
so a failed run leaves no half-written array behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

_HEADER = 128  # bytes reserved for magic + header; ample for a 2-D int32 shape


class NpyWriter:
    def __init__(self, path: str | Path, columns: int, dtype: str = "<i4"):
        self.path, self.columns, self.dtype = Path(path), columns, np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        self.file.write(b"\0" * _HEADER)
        self.rows = 0

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != 2 or rows.shape[1] != self.columns:
            raise ValueError(f"{self.path}: rows of shape {rows.shape}, expected [n, {self.columns}]")
        self.file.write(rows.tobytes())
        self.rows += rows.shape[0]

    def commit(self) -> None:
        header = repr({"descr": self.dtype.str, "fortran_order": False, "shape": (self.rows, self.columns)})
        body = header.encode("latin1").ljust(_HEADER - 10 - 1) + b"\n"
        self.file.seek(0)
        self.file.write(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body)
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)
