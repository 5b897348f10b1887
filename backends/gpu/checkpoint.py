"""gpu checkpoints: training state through ``torch.distributed.checkpoint`` (each rank writes its own shards), the
final HF directory written from the shards by DCP's HF writer, LoRA adapters as PEFT directories, and safetensors
files written from numpy (numpy has no bfloat16).

Every rank writes into the run's folder and rank 0 renames and consolidates: on several nodes the output dir must
be a filesystem they share (as MindFormers' distributed checkpoints need too).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)

from backends.gpu.model import DTYPES, hf_name
from mindcode.convert.hf_to_ms import expected_weights
from mindcode.convert.keymap import lora_key, parse_lora_key
from mindcode.convert.lora import peft_config
from mindcode.errors import MindcodeError
from mindcode.parallel import Layout
from mindcode.presets import ModelConfig

SINGLE_FILE = "model.safetensors"
SHARD_BYTES = 5 * 10**9  # HF's default shard size
STEP_FILE = "step.json"
# the frozen base of a LoRA run is not training state: it is re-read from training.init
OPTIONS = StateDictOptions(ignore_frozen_params=True)
# The final export's consolidation runs on rank 0 while the other ranks wait in DCP's closing collective; writing
# 68 GB to a shared filesystem can outlast NCCL's watchdog (10 minutes by default) and kill the job at its very end.
# The export's collectives therefore go over a gloo group of their own whose timeout is sized from the bytes
# (at EXPORT_BYTES_PER_S, never under EXPORT_MIN_TIMEOUT_S), as torchtitan gives its checkpoints a gloo group.
EXPORT_BYTES_PER_S = 50 * 2**20
EXPORT_MIN_TIMEOUT_S = 1800


def _barrier(group: Any = None) -> None:
    if dist.is_initialized():
        dist.barrier(group=group)


def export_timeout(total_bytes: float) -> timedelta:
    """How long the other ranks may wait for rank 0's consolidation of ``total_bytes`` (read, then written)."""
    return timedelta(seconds=max(EXPORT_MIN_TIMEOUT_S, 2 * total_bytes / EXPORT_BYTES_PER_S))


def save(model: Any, optimizer: Any, directory: Path, rank: int, step: int, layout: Layout) -> None:
    _barrier()  # rank 0 has made the folder
    rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
    torch.save(rng, directory / f"rng_rank{rank}.pt")  # dropout draws from CUDA's generator on a GPU
    model_state, optimizer_state = get_state_dict(model, optimizer, options=OPTIONS)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(directory))
    if rank == 0:
        (directory / STEP_FILE).write_text(json.dumps({"optimizer_step": step, "layout": layout.as_dict()}))


def load(model: Any, optimizer: Any, directory: Path, rank: int, layout: Layout) -> int:
    """Training state back into ``model`` and ``optimizer``; returns the optimizer step. Same layout only."""
    problem = _check_checkpoint(directory, layout)
    if dist.is_initialized():  # every rank raises, or none: a rank that cannot see the folder must not hang the rest
        problems = [None] * dist.get_world_size()
        dist.all_gather_object(problems, problem)
        problem = next((p for p in problems if p), None)
    if problem:
        raise MindcodeError(problem)
    saved = json.loads((directory / STEP_FILE).read_text())
    model_state, optimizer_state = get_state_dict(model, optimizer, options=OPTIONS)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=str(directory))
    # dcp.load has already refused a checkpoint lacking any of these keys; not strict only about the frozen base
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                   options=StateDictOptions(ignore_frozen_params=True, strict=False))
    rng = directory / f"rng_rank{rank}.pt"
    if rng.is_file():
        states = torch.load(rng)
        torch.set_rng_state(states["cpu"])
        if states["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(states["cuda"])
    return int(saved["optimizer_step"])


def _check_checkpoint(directory: Path, layout: Layout) -> str | None:
    step_file = directory / STEP_FILE
    if not step_file.is_file() or not (directory / ".metadata").is_file():
        return (f"{directory}: not a gpu-backend checkpoint here (no {STEP_FILE} / DCP .metadata; every node must see "
                f"the run's folder)")
    saved = json.loads(step_file.read_text())
    if saved.get("layout") != layout.as_dict():
        return (f"{directory}: written with parallel_config {saved.get('layout')}, this run has {layout.as_dict()}; "
                f"resume with the same layout")
    return None


def _fresh(directory: Path) -> Path:
    """A temp folder beside ``directory``, the same name on every rank, empty."""
    tmp = directory.parent / f".{directory.name}.tmp"
    if not dist.is_initialized() or dist.get_rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    return tmp


def _publish(tmp: Path, directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def export_hf(model: Any, shape: ModelConfig, dtype: str, directory: Path, rank: int) -> None:
    """The weights as an HF directory in ``dtype``: each rank casts and writes its own shards, then DCP's HF writer
    consolidates them into ``model-0000i-of-0000n.safetensors`` files (~5 GB each) from disk, on the CPU."""
    tmp = _fresh(directory)
    state = {hf_name(k): v.detach().to(DTYPES[dtype]) for k, v in get_model_state_dict(model).items()}
    if shape.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the embedding, written once
    itemsize = torch.empty((), dtype=DTYPES[dtype]).element_size()
    shards, size = {}, 0  # every weight's file, the same on every rank (a pipeline stage holds some of them)
    for name, dims in sorted(expected_weights(shape).items(), key=lambda item: _hf_order(item[0])):
        shards[name] = 1 + size // SHARD_BYTES
        size += int(np.prod(dims)) * itemsize
    sharded = dist.is_initialized()  # several ranks: each writes its shards, then they are consolidated
    group = dist.new_group(backend="gloo", timeout=export_timeout(size)) if sharded else None
    writer = dcp.HuggingFaceStorageWriter(str(tmp), fqn_to_index_mapping=shards, save_distributed=sharded,
                                          enable_consolidation=sharded)
    dcp.save(state, storage_writer=writer, process_group=group)
    if rank == 0:
        shutil.rmtree(tmp / "sharded", ignore_errors=True)
        (tmp / "config.json").write_text(json.dumps({**shape.to_hf_config(), "torch_dtype": dtype}, indent=2) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": shape.bos_token_id, "eos_token_id": shape.eos_token_id}, indent=2) + "\n")
        _publish(tmp, directory)
    _barrier(group)
    if group is not None:
        dist.destroy_process_group(group)


def _hf_order(name: str) -> tuple:
    """Embedding, layers in order, norm, head: the order HF's own shards follow."""
    parts = name.split(".")
    layer = int(parts[2]) if len(parts) > 2 and parts[1] == "layers" else (-1 if "embed" in name else 10**9)
    return layer, name


def tied_head(model: Any, name: str) -> bool:
    return name.endswith("lm_head.weight") and bool(getattr(model.config, "tie_word_embeddings", False))


def export_adapter(model: Any, config: Any, directory: Path, rank: int) -> None:
    """The LoRA adapters, gathered whole (they are small) onto rank 0's CPU, as a PEFT adapter directory."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    state = get_model_state_dict(model, options=options)
    tmp = _fresh(directory)
    if rank == 0:
        tensors = {}
        for name, value in state.items():
            if tied_head(model, name):
                continue  # a tied lm_head is the frozen embedding under a second name, which the filter misses
            weight, part = parse_lora_key(name, "the trained model")
            tensors[lora_key(weight, part, "peft")] = value.float().contiguous()
        lora = config.lora
        from safetensors.torch import save_file

        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        values = peft_config(lora.rank, lora.alpha, lora.target_modules, lora.dropout, config.training.init)
        (tmp / "adapter_config.json").write_text(json.dumps(values, indent=2) + "\n")
        _publish(tmp, directory)
    _barrier()


def save_safetensors(tensors: Iterable[tuple[str, np.ndarray, str]], directory: Path) -> None:
    """Write ``directory/model.safetensors`` atomically (temp file + rename)."""
    from safetensors.torch import save_file

    state = {name: torch.from_numpy(np.array(array, dtype=np.float32)).to(DTYPES[dtype]) for name, array, dtype in tensors}
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{SINGLE_FILE}.tmp-{os.getpid()}"
    try:
        save_file(state, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, directory / SINGLE_FILE)
    finally:
        tmp.unlink(missing_ok=True)
