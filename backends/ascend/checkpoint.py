"""MindSpore ``.ckpt`` files: atomic writes, reads into numpy, strict loads into a network."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from mindcode.errors import MindcodeError


def save_checkpoint(tensors: Iterable[tuple[str, np.ndarray, str]], path: str | Path) -> None:
    """Write ``(name, array, dtype)`` triples to ``path`` through a temp file renamed into place.

    bf16 is built from the float32 array; that is exact whenever the values came from bf16 in the first place.
    """
    ms = runtime.mindspore()
    path = Path(path)
    dtypes = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}
    entries = [{"name": name, "data": ms.Tensor(np.asarray(array), dtype=dtypes[dtype])} for name, array, dtype in tensors]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.ckpt")  # MindSpore insists on the .ckpt suffix
    try:
        ms.save_checkpoint(entries, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    ms = runtime.mindspore()
    if not Path(path).is_file():
        raise MindcodeError(f"{path}: no such checkpoint file")
    try:
        params = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError) as exc:
        raise MindcodeError(f"{path}: not a readable MindSpore checkpoint ({exc})") from None
    arrays = {}
    for name, param in params.items():
        if param.dtype in (ms.float16, ms.bfloat16):
            param = ms.ops.cast(param, ms.float32)
        arrays[name] = param.asnumpy()
    return arrays


def load_into(model: Any, path: str | Path) -> None:
    """Load a checkpoint into ``model``; any parameter left unloaded, or any unused entry, is an error.

    A tensor stored in another dtype than the model's parameter (a bf16 CodeLlama checkpoint into float32
    parameters) is cast first: MindSpore's strict load refuses mixed dtypes.
    """
    ms = runtime.mindspore()
    if not Path(path).is_file():
        raise MindcodeError(f"{path}: no such checkpoint file")
    params = ms.load_checkpoint(str(path))
    expected = {name: p for name, p in model.parameters_and_names()}
    for name, param in params.items():
        target = expected.get(name)
        if target is None:
            continue
        if tuple(param.shape) != tuple(target.shape):
            raise MindcodeError(f"{path}: {name} has shape {list(param.shape)}, the model expects {list(target.shape)}")
        if param.dtype != target.dtype:
            params[name] = ms.Parameter(ms.ops.cast(param, target.dtype), name=name)
    not_loaded, unused = ms.load_param_into_net(model, params, strict_load=True)
    not_loaded = [n for n in not_loaded if not n.endswith(("key_cache", "value_cache"))]  # inference's KV cache
    if not_loaded or unused:
        raise MindcodeError(f"{path}: parameters missing from the checkpoint: {not_loaded}; unused entries: {unused}")


def load_sliced(job: Any, network: Any, inputs: tuple) -> None:
    """Fill ``network`` (built under MindSpore's ``no_init_parameters``) with this rank's slice of ``job``'s complete
    ``load_checkpoint`` (a ``MindFormerConfig`` with ``auto_trans_ckpt``), through MindFormers' prediction path:
    ``transform_and_load_checkpoint`` compiles the graph on ``inputs`` for its strategy, transforms the checkpoint
    into per-rank slices and loads this rank's; what the checkpoint does not hold (a KV cache) is initialised after."""
    ms = runtime.mindspore()
    from mindformers.trainer.utils import convert_checkpoint_config, transform_and_load_checkpoint

    convert_checkpoint_config(job)
    transform_and_load_checkpoint(job, ms.Model(network), network, inputs, do_predict=True)
    network.init_parameters_data()
