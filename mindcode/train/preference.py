"""Preference training (``stage: dpo`` / ``simpo``), the framework-neutral half: the reference model's
log-probabilities, computed once and stored, and the per-step metrics TRL reports.

The loss itself is computed inside each backend's graph, with the same math (TRL's sigmoid DPO and SimPO):

    dpo:    z = beta * ((logp_c - ref_c) - (logp_r - ref_r))     logp: summed over the answer's tokens
    simpo:  z = beta * (logp_c / n_c - logp_r / n_r) - gamma     n: the answer's token count
    loss  = mean((1 - label_smoothing) * softplus(-z) + label_smoothing * softplus(z))
            + rpo_alpha * (NLL of the chosen answers, per token)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from backends.base import StepTrainer
from mindcode.config import TrainConfig
from mindcode.errors import MindcodeError
from mindcode.terminal import progress_bar


def pair_rows(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """The rows of ``b`` pairs as one batch of ``2b`` rows, each chosen row followed by its rejected row: any split
    of the batch into runs of an even number of rows (MindFormers' accumulation and pipeline micro-batches slice
    rows; so does ``np.array_split`` of whole pairs) keeps every pair together and aligned with its ``[b, 2]``
    reference values."""
    rows = np.empty((2 * len(chosen), *chosen.shape[1:]), dtype=chosen.dtype)
    rows[0::2], rows[1::2] = chosen, rejected
    return rows


def as_pairs(values: np.ndarray) -> np.ndarray:
    """``[2b]`` per-row values (in ``pair_rows`` order) as ``[b, 2]`` float32 (chosen, rejected)."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 2)


def metrics(config: TrainConfig, logps: np.ndarray, counts: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """``rewards/*`` and ``logps/*`` of one step from the policy's ``[pairs, 2]`` summed log-probabilities (chosen,
    rejected), their token counts and the reference's log-probabilities."""
    beta = config.preference.beta
    if config.stage == "simpo":
        policy = logps / counts
        rewards = beta * policy
    else:
        policy = logps
        rewards = beta * (logps - reference)
    return {
        "rewards/chosen": float(rewards[:, 0].mean()),
        "rewards/rejected": float(rewards[:, 1].mean()),
        "rewards/margin": float((rewards[:, 0] - rewards[:, 1]).mean()),
        "rewards/accuracy": float((rewards[:, 0] > rewards[:, 1]).mean()),
        "logps/chosen": float(policy[:, 0].mean()),
        "logps/rejected": float(policy[:, 1].mean()),
    }


def reference_file(config: TrainConfig) -> Path:
    """Where dpo's reference log-probabilities are kept: ``preference.reference_logps``, else
    ``OUTPUT_DIR/reference_logps.npy``."""
    return Path(config.preference.reference_logps or Path(config.training.output_dir) / "reference_logps.npy")


def needs_reference_pass(config: TrainConfig) -> bool:
    """Whether the run computes the reference before its first step (dpo without a stored reference): the
    trainer's weights are then needed before the training job starts."""
    return config.stage == "dpo" and not reference_file(config).is_file()


def reference_logps(config: TrainConfig, trainer: StepTrainer, rank: int, world_size: int,
                    progress: bool) -> np.ndarray:
    """``[rows, 2]`` reference log-probabilities (chosen, rejected) of every pair.

    dpo: read from ``reference_file`` when it is there,
    else computed with the trainer's weights before the first step (the policy starts as the reference model) and
    written there with a ``.json`` note of what it was computed from, so that resuming, or a second run on the same
    data and init, reuses it. The batches are dealt round-robin to the data-parallel ranks (each model-parallel group
    computes its share once), every rank running as many forwards (FSDP2 gathers weights in each), and the shares
    are summed over the data-parallel ranks (each row is filled by one of them). simpo needs no reference: zeros.
    """
    rows = trainer.num_rows
    if config.stage == "simpo":
        return np.zeros((rows, 2), np.float32)
    path = reference_file(config)
    note = {"init": config.training.init, "rows": rows, "seq_length": config.model.seq_length}
    if path.is_file():
        values = np.load(path)
        noted = path.with_suffix(".json")
        old = json.loads(noted.read_text()) if noted.is_file() else note
        if values.shape != (rows, 2) or old != note:
            raise MindcodeError(f"{path}: reference log-probabilities for {old} (shape {list(values.shape)}), not "
                                f"for this run's {note}; delete it or set preference.reference_logps elsewhere")
        return values
    size = max(1, config.training.batch_size // world_size)
    starts = list(range(0, rows, size))
    data_rank, data_ranks = trainer.data_shard
    values = np.zeros((rows, 2), np.float32)
    bar = progress_bar(total=rows, desc="reference logps", unit=" pairs", disable=not progress or rank != 0)
    for first in range(0, len(starts), data_ranks):
        mine = first + data_rank
        start = starts[min(mine, len(starts) - 1)]  # past the end: the last batch again, its result unused
        indices = np.minimum(np.arange(start, start + size), rows - 1)  # a fixed batch shape; the tail repeats
        logps, _counts = trainer.logps(*trainer.batches(indices))
        if mine < len(starts):
            values[start:start + min(size, rows - start)] = logps[:min(size, rows - start)]
        bar.update(sum(min(size, rows - s) for s in starts[first:first + data_ranks]))
    bar.close()
    values = trainer.sum_over_data_parallel(values)
    if rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".json").write_text(json.dumps(note, indent=2) + "\n")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
        np.save(tmp, values)
        os.replace(tmp, path)
    return values
