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

from mindcode.errors import MindcodeError
from mindcode.parallel import Layout

# MindFormers writes each rank's strategy as OUTPUT_DIR/mindformers/strategy/ckpt_strategy_rank_N.ckpt (its output
# dir + "strategy/", this name with the rank appended); the export merges them from there
STRATEGY_FILE = "ckpt_strategy.ckpt"


def semi_auto(layout: Layout) -> bool:
    return layout.model_parallel > 1 or layout.pipeline_stage > 1


def strategy_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "mindformers" / "strategy"


def check_target(layout: Layout, device: str, where: str, lora: bool = False) -> None:
    """On MindSpore's CPU target only data parallelism runs (semi-auto parallel is refused at graph compile)."""
    if lora and semi_auto(layout):
        raise MindcodeError(f"{where}: lora with model_parallel/pipeline_stage > 1 is not supported on ascend (its "
                            f"adapters are not split by the strategy files); train LoRA data parallel")
    if device == "CPU" and semi_auto(layout):
        key = "model_parallel" if layout.model_parallel > 1 else "pipeline_stage"
        raise MindcodeError(f"{where}.{key} {getattr(layout, key)}: MindSpore's semi-auto parallel needs Ascend "
                            f"(or GPU) devices; on its CPU target only data_parallel runs")


def data_shard(layout: Layout, rank: int) -> tuple[int, int]:
    """Which slice of each global batch a rank is fed: semi-auto parallel feeds every rank all of it."""
    return (0, 1) if semi_auto(layout) else (layout.coords(rank).data, layout.data_parallel)


def rows_per_step(layout: Layout, batch_size: int, accumulation: int) -> int:
    """MindFormers' ``batch_size``: rows of one data-parallel slice of one micro-batch. Semi-auto parallel splits
    the batch into MindFormers' own micro-batches (pipeline ``micro_batch_num``, gradient accumulation); data
    parallelism feeds each rank its slice whole (mindcode's token-weighted cell splits it, see ``train.py``)."""
    if not semi_auto(layout):
        return batch_size // layout.data_parallel
    return batch_size // layout.data_parallel // layout.micro_batch_num // accumulation


def mindformers_sections(layout: Layout, section: Any, output_dir: str | Path, device: str) -> dict[str, Any]:
    """``use_parallel``, ``parallel``, ``parallel_config``, ``recompute_config`` and ``micro_batch_interleave_num``
    of the MindFormers YAML for this layout (``section``: the config's ``mindformers`` section)."""
    parallel_config = {**layout.as_dict(), "gradient_aggregation_group": 4}
    recompute = {"recompute": section.recompute, "select_recompute": False,
                 "parallel_optimizer_comm_recompute": False, "mp_comm_recompute": True,
                 "recompute_slice_activation": True}
    common = {"parallel_config": parallel_config, "recompute_config": recompute, "micro_batch_interleave_num": 1}
    if not semi_auto(layout):  # mindcode sets MindSpore's data-parallel mode itself before the Trainer starts
        optimizer = section.enable_parallel_optimizer and device != "CPU"
        return {"use_parallel": False, "parallel": {"parallel_mode": 0, "gradients_mean": True,
                                                    "enable_parallel_optimizer": optimizer}, **common}
    return {
        "use_parallel": True,
        "parallel": {"parallel_mode": 1, "gradients_mean": False, "full_batch": True, "enable_alltoall": False,
                     "search_mode": "sharding_propagation", "enable_parallel_optimizer": section.enable_parallel_optimizer,
                     "strategy_ckpt_save_file": STRATEGY_FILE,
                     "parallel_optimizer_config": {"gradient_accumulation_shard": False,
                                                   "parallel_optimizer_threshold": 64}},
        **common,
    }
