"""The shared ``parallel_config`` handed to MindFormers, the way its own CodeLlama-34B YAMLs run.

- data parallel only (``model_parallel`` and ``pipeline_stage`` 1): MindSpore's ``DATA_PARALLEL`` mode, set up by
  mindcode under msrun; each rank reads its slice of the global batch (what MindSpore's CPU target can run).
- model or pipeline parallel: MindFormers' semi-auto parallel (``use_parallel: True``, ``parallel_mode: 1``,
  ``full_batch: True``: every rank is fed the whole global batch and MindSpore slices it), the parallel optimizer,
  a strategy file under the run, MindFormers' ``TransformerOpParallelConfig`` (built by its
  ``build_parallel_config``) inside the model, and its Trainer's ``PipelineCell`` over ``micro_batch_num``
  micro-batches. MindSpore runs this on Ascend (and GPU) devices only: on its CPU target it stops at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcode.config import MindFormersSection
from mindcode.errors import MindcodeError
from mindcode.parallel import Layout

# Whether MindSpore builds its parallel optimizer for an optimizer type in data-parallel mode: ``nn/optim/optimizer.py``
# refuses any optimizer class without ``_support_parallel_optimizer = True`` there (semi-auto parallel shards any
# optimizer in the compiler). mindcode's AdamW is MindFormers' ``AdamW``, which lacks it; a test checks this table
# against the class MindFormers builds. So a job with the parallel optimizer runs semi-auto (``semi_auto``).
PARALLEL_OPTIMIZER_IN_DATA_PARALLEL = {"AdamW": False}

# MindFormers writes each rank's strategy as OUTPUT_DIR/mindformers/strategy/ckpt_strategy_rank_N.ckpt (its output
# dir + "strategy/", this name with the rank appended); the export merges them from there
STRATEGY_FILE = "ckpt_strategy.ckpt"


def semi_auto(layout: Layout, section: MindFormersSection | None) -> bool:
    """Whether the job runs MindFormers' semi-auto parallel (``MindFormersSection.semi_auto``: the one rule, which
    ``mindcode plan`` follows too)."""
    return (section or MindFormersSection()).semi_auto(layout)


def strategy_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "mindformers" / "strategy"


def check_target(layout: Layout, semi: bool, device: str, where: str, tied: bool = False) -> None:
    """On MindSpore's CPU target only data parallelism runs (semi-auto parallel is refused at graph compile)."""
    if tied and semi:
        raise MindcodeError(f"{where}: tie_word_embeddings under semi-auto parallel is not supported on ascend (not "
                            f"verified on Atlas); train it data parallel")
    if device == "CPU" and semi and layout.model_parallel == layout.pipeline_stage == 1:
        raise MindcodeError(f"{where}: mindformers.enable_parallel_optimizer with data_parallel "
                            f"{layout.data_parallel} runs MindSpore's semi-auto parallel, which needs Ascend (or GPU) "
                            f"devices; on its CPU target set it false")
    if device == "CPU" and semi:
        key = "model_parallel" if layout.model_parallel > 1 else "pipeline_stage"
        raise MindcodeError(f"{where}.{key} {getattr(layout, key)}: MindSpore's semi-auto parallel needs Ascend "
                            f"(or GPU) devices; on its CPU target only data_parallel runs")


def per_token_loss(layout: Layout, semi: bool, accumulation: int, preference: bool) -> bool:
    """MindFormers' ``calculate_per_token_loss``: where its cells split a step into micro-batches (pipeline, or
    accumulation in semi-auto mode), the loss is the mean over every trained token of the step rather than the
    mean of the micro-batches' means. Preference losses are per pair (every micro-batch holds as many pairs)."""
    return semi and (layout.pipeline_stage > 1 or accumulation > 1) and not preference


def reported_loss(loss: float, layout: Layout, semi: bool, accumulation: int, per_token: bool) -> float:
    """The step's loss from what MindFormers' step cell returns, as its ``MFLossMonitor`` reports it: pipeline and
    accumulation cells sum their micro-batches' losses unless the loss is per token (then the cell divides). The
    value is the last stage's: with ``pipeline_result_broadcast`` every rank holds it."""
    if per_token:
        return loss
    if layout.pipeline_stage > 1:
        loss /= layout.micro_batch_num
    if semi and accumulation > 1:
        loss /= accumulation
    return loss


def data_shard(layout: Layout, semi: bool, rank: int) -> tuple[int, int]:
    """Which slice of each global batch a rank is fed: semi-auto parallel feeds every rank all of it."""
    return (0, 1) if semi else (layout.coords(rank).data, layout.data_parallel)


def mindformers_sections(layout: Layout, section: Any, output_dir: str | Path, device: str) -> dict[str, Any]:
    """``use_parallel``, ``parallel``, ``parallel_config``, ``recompute_config`` and ``micro_batch_interleave_num``
    of the MindFormers YAML for this layout (``section``: the config's ``mindformers`` section)."""
    parallel_config = {**layout.as_dict(), "gradient_aggregation_group": 4}
    recompute = {"recompute": section.recompute, "select_recompute": False,
                 "parallel_optimizer_comm_recompute": False, "mp_comm_recompute": True,
                 "recompute_slice_activation": True}
    common = {"parallel_config": parallel_config, "recompute_config": recompute, "micro_batch_interleave_num": 1}
    if not semi_auto(layout, section):  # MindSpore's data-parallel mode (mindcode's run sets it up before the Trainer)
        return {"use_parallel": layout.world_size > 1,
                "parallel": {"parallel_mode": 0, "gradients_mean": True, "enable_parallel_optimizer": False},
                **common}
    return {
        "use_parallel": True,
        "parallel": {"parallel_mode": 1, "gradients_mean": False, "full_batch": True, "enable_alltoall": False,
                     "search_mode": "sharding_propagation", "enable_parallel_optimizer": section.enable_parallel_optimizer,
                     "strategy_ckpt_save_file": STRATEGY_FILE,
                     # the last stage's loss on every rank (MindFormers: "the loss on the last card is valid"), so
                     # the logged loss and the NaN decision are the same everywhere
                     "pipeline_result_broadcast": layout.pipeline_stage > 1,
                     "parallel_optimizer_config": {"gradient_accumulation_shard": False,
                                                   "parallel_optimizer_threshold": 64}},
        **common,
    }
