"""The training driver both backends share: data order, metrics, checkpoints, resume, NaN handling.

The backend supplies a trainer (``backends.<name>.train.Trainer``): ``num_rows``, ``data_shard`` (this process's
data-parallel rank and the data-parallel size: which slice of each global batch it reads), ``batches(indices) ->
(input_ids, labels)``, ``fit(start, stop, batch_at, on_step)``, ``save(dir)``, ``load(dir)`` and ``export(dir)``
(``save`` and ``export`` are called on every rank; each backend decides which ranks write what), and ``summary``
(what the run's summary adds from the backend: the layout it ran, settings it changed, optimizer groups).
``fit`` runs optimizer steps ``start..stop-1`` on the arrays ``batch_at(step)`` gives, however the backend drives
its steps (the gpu backend in a Python loop, the ascend backend through MindFormers' Trainer), and calls
``on_step(step, {"loss", "lr", "grad_norm", "tokens", "skipped"}, seconds)`` after each. Everything else lives here,
once: data order, metrics, NaN policy, checkpoints, resume.

Preference stages (dpo, simpo): a batch of ``b`` pairs is ``2b`` rows, each chosen answer followed by its rejected
one (``preference.pair_rows``);
``batch_at`` adds the pairs' ``[b, 2]`` reference log-probabilities, ``on_step`` also gets the policy's ``logps``
and ``counts`` (``[b, 2]``, before the update), and ``logps(input_ids, labels)`` scores pairs without training.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mindcode.terminal import progress_bar

from mindcode.config import TrainConfig, check_data
from mindcode.convert.progress import peak_rss_mb
from mindcode.errors import MindcodeError
from mindcode.train import preference
from mindcode.train.init import random_init
from mindcode.train.sampler import Sampler
from mindcode.train.shared_output import check_shared_output

STATE_FILE = "trainer_state.json"


def latest_checkpoint(output_dir: Path) -> Path | None:
    steps = sorted((int(p.name.split("_")[1]), p) for p in (output_dir / "checkpoints").glob("step_*")
                   if (p / STATE_FILE).exists())
    return steps[-1][1] if steps else None


def _rewrite_metrics(path: Path, upto: int) -> None:
    """After resuming from step ``upto``, drop the lines of steps that will be run again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= upto]
    path.write_text("".join(line + "\n" for line in kept))


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
        reference = preference.reference_logps(config, trainer, out, rank, world_size, progress)

    start = 0
    if resume:
        checkpoint = latest_checkpoint(out) if resume is True else Path(resume)
        if checkpoint is None or not (checkpoint / STATE_FILE).is_file():
            raise MindcodeError(f"--resume: no checkpoint with {STATE_FILE} in {checkpoint or out / 'checkpoints'}")
        state = json.loads((checkpoint / STATE_FILE).read_text())
        trainer.load(checkpoint)
        start = state["step"]
    metrics_path = out / "metrics.jsonl"
    if rank == 0:
        if start:
            _rewrite_metrics(metrics_path, start)
        else:
            metrics_path.unlink(missing_ok=True)
    (out / "config.json").write_text(json.dumps({"source": config.source, "backend": config.backend,
                                                 "training": vars(t)}, indent=2, default=str))

    began = time.perf_counter()
    checkpoints, losses, tokens_per_s, skipped = [], [], [], 0
    bar = progress_bar(total=t.max_steps, initial=start, desc=f"train [{config.backend}]", unit="step",
               disable=not progress or rank != 0)

    def batch_at(step: int) -> tuple:
        indices = sampler.batch(step)
        arrays = trainer.batches(indices)
        return arrays if reference is None else (*arrays, reference[indices])

    def on_step(step: int, m: dict[str, Any], seconds: float) -> None:
        """After each optimizer step: NaN policy, the metrics line, the progress bar, checkpoints."""
        nonlocal skipped
        if not math.isfinite(m["loss"]):
            if t.on_nan == "stop":
                raise MindcodeError(f"step {step + 1}: loss is {m['loss']} (no update applied); "
                                    f"set training.on_nan=skip to skip such batches")
            skipped += 1
        record = {"step": step + 1, "loss": m["loss"], "lr": m["lr"], "grad_norm": m["grad_norm"],
                  "tokens_per_s": round(m["tokens"] * data_ranks / seconds, 1), "step_time_s": round(seconds, 4),
                  "peak_rss_mb": peak_rss_mb()}
        if "device_memory_mb" in m:  # the accelerator's peak allocation during this step
            record["device_memory_mb"] = m["device_memory_mb"]
        if reference is not None:
            # (MindFormers' accumulation cells report the last micro-batch's pairs: the batch's last pairs)
            pairs = reference[sampler.batch(step)][-len(m["logps"]):]
            record.update(preference.metrics(config, m["logps"], m["counts"], pairs))
        if m.get("skipped"):
            record["skipped"] = True
        if rank == 0:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
        losses.append(m["loss"])
        tokens_per_s.append(record["tokens_per_s"])
        bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{m['lr']:.2e}")
        bar.update()
        done = step + 1
        if done == t.max_steps or (t.save_steps and done % t.save_steps == 0):
            checkpoints.append(str(_save(trainer, out, done, sampler, rank)))
            if rank == 0:
                checkpoints[:] = _prune(out, t.save_total_limit, checkpoints)

    with metrics_path.open("a") as metrics:
        trainer.fit(start, t.max_steps, batch_at, on_step)
    bar.close()
    trainer.export(out / "final")
    summary = {
        "backend": config.backend,
        "stage": config.stage,
        "device": trainer.device,
        "config": config.source,
        "output_dir": str(out),
        "steps": t.max_steps,
        "resumed_from": start,
        "final_loss": losses[-1] if losses else None,
        "first_loss": losses[0] if losses else None,
        "skipped_steps": skipped,
        # the sampler takes whole global batches: the rows left over after the last one of each epoch are not seen
        "rows_dropped_per_epoch": sampler.num_rows % t.batch_size,
        "epochs": round(t.max_steps / sampler.batches_per_epoch, 3),
        "tokens_per_s": round(sum(tokens_per_s) / len(tokens_per_s), 1) if tokens_per_s else None,
        "seconds": round(time.perf_counter() - began, 2),
        "checkpoints": checkpoints,
        "final_weights": str(out / "final"),
        **trainer.summary,  # the backend's own facts: the layout it ran, overridden settings, optimizer groups
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _prune(out: Path, limit: int, written: list[str]) -> list[str]:
    """Keep the ``limit`` newest complete step checkpoints (0: all), deleting older ones only after a newer one is
    complete, so the checkpoint a resume would use is never touched; returns ``written`` less what was deleted."""
    complete = sorted((int(p.name.split("_")[1]), p) for p in (out / "checkpoints").glob("step_*")
                      if (p / STATE_FILE).is_file())
    if limit:
        for _step, path in complete[:-limit]:
            shutil.rmtree(path)
    return [p for p in written if Path(p).exists()]


def _save(trainer: Any, out: Path, step: int, sampler: Sampler, rank: int) -> Path:
    """Write ``checkpoints/step_N`` through a temp folder: a run killed mid-save leaves the previous one intact."""
    final = out / "checkpoints" / f"step_{step}"
    tmp = out / "checkpoints" / f".step_{step}.tmp"  # the same on every rank: sharded trainers write into it
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    trainer.save(tmp)
    if rank == 0:
        state = {"step": step, "epoch": sampler.epoch_of(step), "seed": sampler.seed,
                 "batch_size": sampler.batch_size, "num_rows": sampler.num_rows}
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    return final
