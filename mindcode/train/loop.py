"""The training driver both backends share: data order, metrics, checkpoints, resume, NaN handling.

The backend supplies a trainer, the ``StepTrainer`` of ``backends/base.py`` (what it holds and does is stated
there). ``save`` and ``export`` are called on every rank; each backend decides which ranks write what. ``fit`` runs
the steps however the backend drives them (the gpu backend in a Python loop, the ascend backend through MindFormers'
Trainer). Everything else lives here, once: data order, resume, and (``mindcode.train.recorder``) metrics, NaN
policy, checkpoints.

Preference stages (dpo, simpo): a batch of ``b`` pairs is ``2b`` rows, each chosen answer followed by its rejected
one (``preference.pair_rows``);
``batch_at`` adds the pairs' ``[b, 2]`` reference log-probabilities, ``on_step`` also gets the policy's ``logps``
and ``counts`` (``[b, 2]``, before the update), and ``logps(input_ids, labels)`` scores pairs without training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from backends.base import StepTrainer
from mindcode.config import TrainConfig, check_data
from mindcode.errors import MindcodeError
from mindcode.train import preference
from mindcode.train.init import random_init
from mindcode.train.recorder import STATE_FILE, Recorder, latest_checkpoint
from mindcode.train.sampler import Sampler
from mindcode.train.shared_output import check_shared_output


def train(config: TrainConfig, resume: str | bool | None = None, progress: bool = True,
          rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """Run (or resume) a training run; returns the run summary (also written to OUTPUT_DIR/summary.json)."""
    from backends import get_backend

    check_data(config)
    out = Path(config.training.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_shared_output(out, rank, world_size)
    t = config.training
    if not t.init:  # both backends start from the same random weights, made once by mindcode from the seed
        t.init = str(random_init(config.model.shape(), t.seed, out / "random_init"))
    trainer = get_backend(config.backend).trainer(config, rank=rank, world_size=world_size)
    data_rank, data_ranks = trainer.data_shard
    sampler = Sampler(trainer.num_rows, t.batch_size, t.seed, config.data.shuffle, data_rank, data_ranks)
    reference = None
    if config.preference_stage:
        reference = preference.reference_logps(config, trainer, rank, world_size, progress)
    start = _resume(trainer, out, resume)
    (out / "config.json").write_text(json.dumps({"source": config.source, "backend": config.backend,
                                                 "training": vars(t)}, indent=2, default=str))

    def batch_at(step: int) -> tuple:
        indices = sampler.batch(step)
        arrays = trainer.batches(indices)
        return arrays if reference is None else (*arrays, reference[indices])

    began = time.perf_counter()
    with Recorder(config, trainer, sampler, out, rank, start, reference, progress) as recorder:
        trainer.fit(start, t.max_steps, batch_at, recorder.on_step)
    trainer.export(out / "final")
    recorded = recorder.summary()
    summary = {
        "backend": config.backend,
        "stage": config.stage,
        "device": trainer.device,
        "config": config.source,
        "output_dir": str(out),
        "steps": t.max_steps,
        "resumed_from": start,
        "final_loss": recorded["final_loss"],
        "first_loss": recorded["first_loss"],
        "skipped_steps": recorded["skipped_steps"],
        # the sampler takes whole global batches: the rows left over after the last one of each epoch are not seen
        "rows_dropped_per_epoch": sampler.num_rows % t.batch_size,
        "epochs": round(t.max_steps / sampler.batches_per_epoch, 3),
        "tokens_per_s": recorded["tokens_per_s"],
        "seconds": round(time.perf_counter() - began, 2),
        "checkpoints": recorded["checkpoints"],
        "final_weights": str(out / "final"),
        **trainer.summary,  # the backend's own facts: the layout it ran, overridden settings, optimizer groups
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _resume(trainer: StepTrainer, out: Path, resume: str | bool | None) -> int:
    """The step to start from: 0, or the step of the checkpoint ``resume`` names (True: the newest), loaded."""
    if not resume:
        return 0
    checkpoint = latest_checkpoint(out) if resume is True else Path(resume)
    if checkpoint is None or not (checkpoint / STATE_FILE).is_file():
        raise MindcodeError(f"--resume: no checkpoint with {STATE_FILE} in {checkpoint or out / 'checkpoints'}")
    state = json.loads((checkpoint / STATE_FILE).read_text())
    trainer.load(checkpoint)
    return state["step"]
