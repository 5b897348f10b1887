"""Importing MindSpore/MindFormers quietly, finding the device, and setting the execution context once."""

from __future__ import annotations

import glob
import logging
import os
import tempfile
from types import ModuleType
from typing import Any

from mindcode.env import package_versions
from mindcode.errors import MindcodeError

_CONFIGURED = False
_PREDICT_CONTEXT: str | None = None  # the prediction context set: "one process" or a job's output_dir
# The context MindFormers' CodeLlama-34B prediction runs with (its predict_codellama_34b.yaml): graph mode; on an NPU
# a memory cap below the 910B's 64 GB and the matrix units kept in the model's own dtype.
PREDICT_CONTEXT = {"mode": 0, "max_call_depth": 10000, "save_graphs": False}
ASCEND_PREDICT_CONTEXT = {"max_device_memory": "57GB", "ascend_config": {"precision_mode": "must_keep_origin_dtype"}}


def ascend_device_count() -> int:
    """NPUs the Ascend driver exposes on this host (``/dev/davinciN``), honouring ``ASCEND_RT_VISIBLE_DEVICES``."""
    visible = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return len(glob.glob("/dev/davinci[0-9]*"))


def device_target() -> str:
    return "Ascend" if ascend_device_count() else "CPU"


def mindspore() -> ModuleType:
    """Import MindSpore with its C++ warnings off and the context set for this host (graph mode; CPU or Ascend)."""
    global _CONFIGURED
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms

    if not _CONFIGURED:
        ms.set_context(mode=ms.GRAPH_MODE)
        ms.set_device(device_target())
        _CONFIGURED = True
    return ms


def mindformers() -> ModuleType:
    """Import MindFormers with its stdout logging at WARNING and its log files under a temp dir (not ./output)."""
    mindspore()
    os.environ.setdefault("LOG_MF_PATH", os.path.join(tempfile.gettempdir(), "mindcode-mindformers-log"))
    import mindformers
    from mindformers.tools.logger import get_logger

    for handler in get_logger().handlers:  # created once and cached by MindFormers
        if type(handler).__name__ == "LimitedRepeatHandler" or not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)
    return mindformers


def predict_context_keys(device: str) -> dict[str, Any]:
    """The ``context`` section of a prediction job on ``device``: MindFormers' predict card's keys on Ascend."""
    return {**PREDICT_CONTEXT, "device_target": device, "device_id": int(os.environ.get("DEVICE_ID", 0)),
            **(ASCEND_PREDICT_CONTEXT if device == "Ascend" else {})}


def predict_context(job: Any = None) -> None:
    """Set the execution context for prediction through MindFormers' own ``build_context``: one process's context,
    or ``job``'s (a ``MindFormerConfig`` of a model-parallel prediction, ``predict_job.py``: its semi-auto parallel
    context and strategy files under its ``output_dir``). MindFormers builds its ``Context`` once per process: one
    process's prediction takes the context already there (graph mode either way); a split prediction needs a
    process of its own and stops with one line otherwise."""
    global _PREDICT_CONTEXT
    mindformers()
    from mindformers import MindFormerConfig, build_context
    from mindformers.core.context.build_context import Context

    wanted = "one process" if job is None else str(job.output_dir)
    if _PREDICT_CONTEXT == wanted or (job is None and Context.is_exists()):
        return
    if Context.is_exists():
        raise MindcodeError("model-parallel prediction sets MindFormers' context, which this process has set already: "
                            "run it in processes of its own (mindcode launch --nproc_per_node N -- predict ...)")
    if job is None:
        job = MindFormerConfig(context=predict_context_keys(device_target()), use_parallel=False, parallel={},
                               parallel_config={})
    else:
        from mindformers.utils.file_utils import set_output_path

        set_output_path(job.output_dir)  # as MindFormers' entry does first: strategy files go under it
    build_context(job)
    _PREDICT_CONTEXT = wanted


def info() -> dict[str, Any]:
    """Versions and device, read from package metadata so that this costs no framework import."""
    versions, missing = package_versions("mindspore", "mindformers")
    count = ascend_device_count()
    return {
        "available": not missing,
        "reason": f"not installed: {', '.join(missing)} (pip install 'mindcode[ascend]')" if missing else "",
        "versions": versions,
        "device": "Ascend" if count else "CPU",
        "device_count": count,
    }
