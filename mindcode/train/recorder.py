"""What happens after each optimizer step, the same on both backends: the NaN policy, the metrics line (rank 0
writes ``metrics.jsonl``), the progress bar, and step checkpoints at the configured cadence with their retention.
``mindcode.train.loop`` hands ``Recorder.on_step`` to the backend's ``fit``."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import StepTrainer
from mindcode.config import TrainConfig
from mindcode.convert.progress import peak_rss_mb
from mindcode.errors import MindcodeError
from mindcode.terminal import progress_bar
from mindcode.train import preference
from mindcode.train.sampler import Sampler

STATE_FILE = "trainer_state.json"


def latest_checkpoint(output_dir: Path) -> Path | None:
    steps = sorted((int(p.name.split("_")[1]), p) for p in (output_dir / "checkpoints").glob("step_*")
                   if (p / STATE_FILE).exists())
    return steps[-1][1] if steps else None


class Recorder:
    """Used as a context manager around ``trainer.fit``: the metrics file is open (and the bar shown) inside it."""

    def __init__(self, config: TrainConfig, trainer: StepTrainer, sampler: Sampler, out: Path, rank: int, start: int,
                 reference: np.ndarray | None, progress: bool):
        self.config, self.trainer, self.sampler, self.out, self.rank = config, trainer, sampler, out, rank
        self.data_ranks = trainer.data_shard[1]
        self.reference = reference
        self.losses: list[float] = []
        self.tokens_per_s: list[float] = []
        self.checkpoints: list[str] = []
        self.skipped = 0
        self.metrics_path = out / "metrics.jsonl"
        if rank == 0:
            if start:
                _rewrite_metrics(self.metrics_path, start)
            else:
                self.metrics_path.unlink(missing_ok=True)
        self.bar = progress_bar(total=config.training.max_steps, initial=start, desc=f"train [{config.backend}]",
                                unit="step", disable=not progress or rank != 0)
        self._metrics: Any = None

    def __enter__(self) -> Recorder:
        self._metrics = self.metrics_path.open("a")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._metrics.close()
        self.bar.close()

    def on_step(self, step: int, m: dict[str, Any], seconds: float) -> None:
        """After optimizer step ``step`` (0-based): ``m`` is the backend's ``{"loss", "lr", "grad_norm", "tokens",
        "skipped"}`` (and ``logps``/``counts`` for preference stages)."""
        t = self.config.training
        if not math.isfinite(m["loss"]):
            if t.on_nan == "stop":
                raise MindcodeError(f"step {step + 1}: loss is {m['loss']} (no update applied); "
                                    f"set training.on_nan=skip to skip such batches")
            self.skipped += 1
        record = {"step": step + 1, "loss": m["loss"], "lr": m["lr"], "grad_norm": m["grad_norm"],
                  "tokens_per_s": round(m["tokens"] * self.data_ranks / seconds, 1), "step_time_s": round(seconds, 4),
                  "peak_rss_mb": peak_rss_mb()}
        if "device_memory_mb" in m:  # the accelerator's peak allocation during this step
            record["device_memory_mb"] = m["device_memory_mb"]
        if self.reference is not None:
            # (MindFormers' accumulation cells report the last micro-batch's pairs: the batch's last pairs)
            pairs = self.reference[self.sampler.batch(step)][-len(m["logps"]):]
            record.update(preference.metrics(self.config, m["logps"], m["counts"], pairs))
        if m.get("skipped"):
            record["skipped"] = True
        if self.rank == 0:
            self._metrics.write(json.dumps(record) + "\n")
            self._metrics.flush()
        self.losses.append(m["loss"])
        self.tokens_per_s.append(record["tokens_per_s"])
        self.bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{m['lr']:.2e}")
        self.bar.update()
        done = step + 1
        if done == t.max_steps or (t.save_steps and done % t.save_steps == 0):
            self.checkpoints.append(str(_save(self.trainer, self.out, done, self.sampler, self.rank)))
            if self.rank == 0:
                self.checkpoints = _prune(self.out, t.save_total_limit, self.checkpoints)

    def summary(self) -> dict[str, Any]:
        return {
            "final_loss": self.losses[-1] if self.losses else None,
            "first_loss": self.losses[0] if self.losses else None,
            "skipped_steps": self.skipped,
            "tokens_per_s": round(sum(self.tokens_per_s) / len(self.tokens_per_s), 1) if self.tokens_per_s else None,
            "checkpoints": self.checkpoints,
        }


def _rewrite_metrics(path: Path, upto: int) -> None:
    """After resuming from step ``upto``, drop the lines of steps that will be run again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= upto]
    path.write_text("".join(line + "\n" for line in kept))


def _prune(out: Path, limit: int, written: list[str]) -> list[str]:
    """Keep the ``limit`` newest complete step checkpoints (0: all), deleting older ones only after a newer one is
    complete, so the checkpoint a resume would use is never touched; returns ``written`` less what was deleted."""
    complete = sorted((int(p.name.split("_")[1]), p) for p in (out / "checkpoints").glob("step_*")
                      if (p / STATE_FILE).is_file())
    if limit:
        for _step, path in complete[:-limit]:
            shutil.rmtree(path)
    return [p for p in written if Path(p).exists()]


def _save(trainer: StepTrainer, out: Path, step: int, sampler: Sampler, rank: int) -> Path:
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
