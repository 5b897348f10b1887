"""What every conversion shares: a bytes/s progress bar, atomic outputs, verification, and the JSON summary."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mindcode.terminal import progress_bar

from mindcode.convert import ckpt_io, safetensors_io
from mindcode.errors import MindcodeError


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Run:
    def __init__(self, total: int, desc: str, progress: bool):
        self.start = time.perf_counter()
        self.total = total
        self.bar = progress_bar(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress)

    def advance(self, n: int) -> None:
        self.bar.update(n)

    @staticmethod
    def digest(name: str, chunks: Iterator[bytes], into: dict[str, str]) -> Iterator[bytes]:
        h = hashlib.blake2b(digest_size=16)
        for chunk in chunks:
            h.update(chunk)
            yield chunk
        into[name] = h.hexdigest()

    @contextlib.contextmanager
    def atomic_file(self, path: Path) -> Iterator[Path]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    @contextlib.contextmanager
    def atomic_dir(self, path: Path) -> Iterator[Path]:
        if path.exists() and any(path.iterdir()):
            raise MindcodeError(f"{path}: exists and is not empty; remove it or choose another --output_path")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            yield tmp
            if path.exists():
                path.rmdir()
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def verify(self, path: Path, fmt: str, digests: dict[str, str], uncast: dict[str, Any]) -> None:
        """Re-read ``path``: every tensor must hash as written, and an uncast one as its source's bytes."""
        if fmt == "ckpt":
            found = {t.name: ckpt_io.read_chunks(path, t) for t in ckpt_io.index_ckpt(path)}
        else:
            found = {i.name: safetensors_io.read_chunks(i) for i in safetensors_io.read_header(path)}
        if set(found) != set(digests):
            raise MindcodeError(f"{path}: verify: tensors {sorted(set(found) ^ set(digests))[:3]} differ")
        for name, chunks in found.items():
            h = hashlib.blake2b(digest_size=16)
            for chunk in chunks:
                h.update(chunk)
            if h.hexdigest() != digests[name]:
                raise MindcodeError(f"{path}: verify: {name} does not read back as written")
            if name in uncast:
                s = hashlib.blake2b(digest_size=16)
                for chunk in uncast[name].chunks():
                    s.update(chunk)
                if s.hexdigest() != digests[name]:
                    raise MindcodeError(f"{path}: verify: {name} differs from its source {uncast[name].file}")

    def summary(self, **fields: Any) -> dict[str, Any]:
        self.bar.close()
        seconds = time.perf_counter() - self.start
        return {**fields, "bytes": self.total, "seconds": round(seconds, 3),
                "bytes_per_s": round(self.total / seconds) if seconds else None, "peak_rss_mb": peak_rss_mb()}
