"""Per-rank (distributed) MindSpore checkpoints: merge them into one, or split one for a parallel strategy, on CPU,
through MindSpore's own ``transform_checkpoint_by_rank`` (the function MindFormers' checkpoint transform uses).

Layout, as MindFormers writes it: ``DIR/rank_N/*.ckpt`` (one checkpoint per rank folder) and a strategy file from
``strategy_ckpt_save_file`` (protobuf ``.ckpt`` or ``.json``). With pipeline stages, merge the per-stage strategy
files into one first (``mindspore.merge_pipeline_strategys``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mindcode.terminal import progress_bar

from backends.ascend import runtime
from mindcode.errors import MindcodeError


def _strategy_file(strategy: str | Path) -> tuple[str, int]:
    """The strategy file and the device count it describes."""
    ms = runtime.mindspore()
    path = Path(strategy)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such strategy file")
    try:
        layouts = ms.build_searched_strategy(str(path))
    except (TypeError, ValueError) as exc:
        raise MindcodeError(f"{strategy}: not a MindSpore strategy file ({exc})") from None
    if not layouts:
        raise MindcodeError(f"{strategy}: the strategy has no parameter layouts")
    devices = max(_device_count(layout) for layout in layouts.values())
    return str(path), devices


def _device_count(layout: Any) -> int:
    count = 1
    for dim in layout.dev_matrix[0].dim:
        count *= dim
    return count


def rank_checkpoints(directory: str | Path) -> dict[int, str]:
    """``{rank: checkpoint}`` from ``DIR/rank_N/``; a rank folder must hold exactly one ``.ckpt``."""
    directory = Path(directory)
    ranks = {}
    for folder in sorted(directory.glob("rank_*")):
        match = re.fullmatch(r"rank_(\d+)", folder.name)
        if not match or not folder.is_dir():
            continue
        files = sorted(folder.glob("*.ckpt"))
        if len(files) != 1:
            raise MindcodeError(f"{folder}: expected one .ckpt, found {len(files)} ({', '.join(f.name for f in files)})")
        ranks[int(match.group(1))] = str(files[0])
    if not ranks:
        raise MindcodeError(f"{directory}: no rank_N/ folders with checkpoints")
    return ranks


def merge_ranks(input_dir: str | Path, strategy: str | Path, output_path: str | Path,
                progress: bool = True) -> dict[str, Any]:
    """Per-rank checkpoints + their strategy -> one complete checkpoint at ``output_path`` (written atomically)."""
    ms = runtime.mindspore()
    start, output_path = time.perf_counter(), Path(output_path)
    ranks = rank_checkpoints(input_dir)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{output_path.name}.", dir=output_path.parent))
    try:
        strategy_file, devices = _strategy_file(strategy)
        needed = ms.rank_list_for_transform(0, strategy_file, None)
        missing = sorted(set(needed) - set(ranks))
        if missing:
            raise MindcodeError(f"{input_dir}: the strategy ({devices} devices) needs rank_{missing[0]}/, "
                                f"which is missing")
        bar = progress_bar(total=1, desc="merge ranks", disable=not progress)
        tmp = scratch / "merged.ckpt"
        ms.transform_checkpoint_by_rank(0, {r: ranks[r] for r in needed}, str(tmp), strategy_file, None)
        bar.update()
        bar.close()
        os.replace(tmp, output_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"input_path": str(input_dir), "output_path": str(output_path), "ranks_read": len(needed),
            "devices": devices, "tensors": len(ms.load_checkpoint(str(output_path))),
            "seconds": round(time.perf_counter() - start, 3)}


def split_ranks(input_path: str | Path, strategy: str | Path, output_dir: str | Path,
                progress: bool = True) -> dict[str, Any]:
    """One complete checkpoint -> ``output_dir/rank_N/model.ckpt`` for every rank of ``strategy`` (atomically)."""
    ms = runtime.mindspore()
    start, output_dir = time.perf_counter(), Path(output_dir)
    if not Path(input_path).is_file():
        raise MindcodeError(f"{input_path}: no such checkpoint")
    if output_dir.exists():
        raise MindcodeError(f"{output_dir}: already exists (choose a new folder)")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        strategy_file, devices = _strategy_file(strategy)
        result = scratch / "out"
        for rank in progress_bar(range(devices), desc="split ranks", unit=" rank", disable=not progress):
            (result / f"rank_{rank}").mkdir(parents=True)
            ms.transform_checkpoint_by_rank(rank, {0: str(input_path)}, str(result / f"rank_{rank}" / "model.ckpt"),
                                            None, strategy_file)
        os.replace(result, output_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"input_path": str(input_path), "output_path": str(output_dir), "ranks_written": devices,
            "devices": devices, "seconds": round(time.perf_counter() - start, 3)}
