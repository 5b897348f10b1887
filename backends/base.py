"""The contract every backend implements. Small on purpose: it is an interface, not a vehicle for code reuse.

Arrays cross the boundary as numpy, so mindcode's shared code (and the parity tests) never touch a framework type.
Token conventions are MindFormers': ``input_ids``/``labels`` rows of length ``seq_length + 1``, unshifted, with
``-100`` marking positions that are not trained; the model predicts ``labels[:, 1:]`` from ``input_ids[:, :-1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mindcode.plan.devices import Device
from mindcode.precision import Precision
from mindcode.presets import ModelConfig


class Session(Protocol):
    """A decoding session (``Backend.session``): next-token logits for a batch of sequences that grows a token at
    a time; ``mindcode.predict.decode`` drives it, ``mindcode.predict.scheduler`` adds and drops rows."""

    def logits(self) -> np.ndarray:
        """``[rows, vocab]`` float32: the next-token logits of every row."""

    def add(self, prompts: list[list[int]]) -> None:
        """Start new rows from ``prompts`` (continuous batching), after the rows already there."""

    def append(self, tokens: np.ndarray) -> None:
        """One new token per row (``[rows]`` ints)."""

    def select(self, rows: np.ndarray) -> None:
        """Keep (and reorder, repeat) the rows at these indices, with their caches: beams, finished rows."""


# ``StepTrainer.fit``'s callbacks: the arrays of step N (``batches`` of the sampler's indices, plus the reference
# log-probabilities in preference training), and the record of a finished step with its seconds.
BatchAt = Callable[[int], tuple]
OnStep = Callable[[int, dict[str, Any], float], None]


class StepTrainer(Protocol):
    """What ``Backend.trainer`` returns and ``mindcode.train.loop`` drives: the loop owns the sampler, the
    schedule of steps, resuming, metrics and checkpoints (``mindcode.train.recorder``); the trainer owns the model,
    the optimizer and the framework's step."""

    num_rows: int  # rows of the training data
    data_shard: tuple[int, int]  # (this rank's data shard, the number of shards): the sampler's rank and size
    device: str  # where it trains, in the framework's words ("cuda:0", "Ascend", "CPU")
    summary: dict[str, Any]  # what the run's summary reports of the framework (layout, precision, memory, ...)

    def batches(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training arrays of these rows: ``(input_ids, labels)``, ``[b, seq+1]`` each; ``[2b, seq+1]`` for
        ``b`` preference pairs (``mindcode.train.preference.pair_rows``)."""

    def logps(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and token counts of pairs, ``[b, 2]`` each, without training (DPO's reference
        pass)."""

    def sum_over_data_parallel(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed over the data-parallel ranks by the framework's all-reduce (the same array in one
        process, and where every rank is fed the whole batch): how the reference pass joins its shares."""

    def fit(self, start: int, stop: int, batch_at: BatchAt, on_step: OnStep) -> None:
        """Optimizer steps ``start..stop-1``: each takes ``batch_at(step)`` and reports ``on_step(step, record,
        seconds)``; ``record`` holds ``loss``, ``lr``, ``grad_norm``, ``tokens`` (and more per backend)."""

    def save(self, directory: Path) -> None:
        """A resumable checkpoint (weights, optimizer, step) in the framework's own format."""

    def load(self, directory: Path) -> None:
        """Resume from ``save``'s directory."""

    def export(self, directory: Path) -> None:
        """The trained weights (or LoRA adapters) in the backend's native inference format."""


class BackendSection(Protocol):
    """A config's own section of a backend (``mindformers:`` / ``torch:``, ``mindcode/config.py``): how the backend
    maps the shared ``parallel_config`` and precision onto its framework, as ``mindcode plan`` and the trainers ask
    (the framework-neutral core reads these, never the backend's name)."""

    recompute: bool  # activation recomputation on
    checkpoint_every: int  # with it, every Nth decoder layer recomputed (1: every layer)
    load_in_4bit: bool  # the frozen base quantized (QLoRA)
    pipeline_schedule: str  # "1f1b" or "gpipe"
    pipeline_receive_buffers: bool  # a pipeline stage allocates a receive buffer per micro-batch up front
    gathers_sharded_layers: bool  # data-parallel shards of a layer are gathered to compute it (FSDP2)

    def data_parallel_sharding(self, device_kind: str) -> tuple[bool, bool]:
        """(weights and gradients, AdamW moments) sharded over the data-parallel ranks on a device of that kind."""

    def rows_per_forward(self, rows: int, accumulation: int, layout: Any) -> int:
        """Sequences one forward holds of a rank's ``rows`` a step."""

    def init_reading(self, layout: Any, reference_pass: bool) -> str:
        """How each node reads the init: ``stream`` (a tensor at a time), ``sliced`` (one process reads it whole and
        writes each rank's slice) or ``whole`` (every rank reads it whole); ``reference_pass``: dpo computes its
        reference before the first step."""

    def flash_attention(self, device_kind: str, model_config: dict[str, Any]) -> bool:
        """Whether attention runs fused (no scores kept)."""

    def splits_logits(self, layout: Any, preference: bool) -> bool:
        """Whether each rank holds only its vocabulary slice of the logits."""


class Backend(Protocol):
    name: str
    # facts the framework-neutral core asks the backend for, instead of comparing its name
    launcher: str  # the script in scripts/ that starts its processes (msrun / torchrun, the same arguments)
    default_port: int  # that launcher's master port
    native_checkpoint: str  # "ckpt": a MindSpore .ckpt file; "hf": an HF directory (safetensors + config.json)
    data_key: str  # the `data` section key of a training config it reads: "mindrecord" or "npy"

    def visible_devices(self) -> tuple[str, int]:
        """The environment variable that selects this backend's devices and how many this host exposes."""

    def accelerator(self) -> Device | None:
        """The device this host would run on, for ``mindcode plan``'s checks; None on a CPU-only host."""

    def training_precision(self, config: Any, device: str) -> Precision:
        """The dtypes of master weights, compute and AdamW moments for ``config`` on a ``device`` of that kind
        (``cuda``, ``cpu`` or ``ascend``): the policy the trainer follows and ``mindcode plan`` sizes."""

    def inference_dtype(self, checkpoint_dtype: str, device: str) -> str:
        """The dtype prediction builds the model in, for a checkpoint stored in ``checkpoint_dtype``."""

    def info(self) -> dict[str, Any]:
        """``{"available": bool, "reason": str, "versions": {...}, "device": str, "device_count": int}``.

        Must not fail when the backend's framework is missing: that is what ``available`` reports.
        """

    def build_model(self, config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None,
                    rows: int | None = None, settings: dict[str, Any] | None = None,
                    tensor_parallel: int = 1, work_dir: str | Path | None = None) -> Any:
        """A causal LM of this shape for inputs of ``seq_length`` tokens, with weights from ``checkpoint`` (this
        backend's native format) or, without one, randomly initialised (float32 on the CPU). ``rows``: for
        generation (``session``), that many sequences at most; ``settings``: a config's MindFormers dtype/kernel
        keys (ascend); ``tensor_parallel``: the model split over that many launcher processes (gpu: DTensor tensor
        parallel under torchrun; ascend: MindFormers' model parallel under msrun, on Ascend devices only);
        ``work_dir``: where a split model may keep files (ascend: the job, its strategy and each rank's slices)."""

    def forward(self, model: Any, input_ids: np.ndarray) -> np.ndarray:
        """Logits ``[batch, seq, vocab]`` (float32) for int ``input_ids`` ``[batch, seq]``."""

    def loss(self, model: Any, input_ids: np.ndarray, labels: np.ndarray) -> float:
        """Mean next-token cross entropy over the trained positions (see the module docstring)."""

    def init_distributed(self) -> tuple[int, int]:
        """``(rank, world_size)``: joins the job's process group when launched by this backend's launcher
        (torchrun / msrun), binding this process's device first; ``(0, 1)`` otherwise."""

    def write_run_config(self, config: Any, layout: Any, output_dir: Path) -> list[str]:
        """For ``train --dry_run``: write what this backend would hand its framework for ``layout`` (the
        ``mindcode.parallel.Layout``) into ``output_dir``, without importing the framework; the paths written."""

    def session(self, model: Any, prompts: list[list[int]], max_rows: int, length: int) -> Session:
        """A decoding session for up to ``max_rows`` sequences of up to ``length`` tokens, starting from
        ``prompts``."""

    def trainer(self, config: Any, rank: int = 0, world_size: int = 1) -> StepTrainer:
        """The step trainer the shared loop drives."""

    def save_checkpoint(self, tensors: Iterable[tuple[str, np.ndarray, str]], path: str | Path) -> None:
        """Write ``(name, array, dtype)`` triples (dtype ``float32``/``float16``/``bfloat16``) in the native
        format, atomically: a failed write leaves nothing at ``path``."""

    def load_checkpoint(self, path: str | Path) -> dict[str, np.ndarray]:
        """Read a native checkpoint into float32/int numpy arrays keyed by native names."""
