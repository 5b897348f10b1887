"""A mindcode training config in MindFormers' own format (the sections ``run_mindformer.py`` and
``mindformers.Trainer`` read): what the ascend backend hands to MindFormers' Trainer, and what it writes to
``OUTPUT_DIR/mindformers.yaml``: a complete MindFormers job, run as is by MindFormers' own entry
(``python -m backends.ascend.run_mindformer --config OUTPUT_DIR/mindformers.yaml``).

The job loads its weights through MindFormers (``load_checkpoint``: the converted init; ``auto_trans_ckpt`` where the
layout splits weights, so each rank reads and casts only its slice), saves through its ``CheckpointMonitor``
(``integrated_save: False``: each rank its own slices, as MindFormers' CodeLlama-34B card does; pipeline parallel
refuses integrated saves), logs through ``MFLossMonitor``, and stops at ``training.max_steps`` (``TrainCallBack``).
mindcode's own run feeds the same config to MindFormers' Trainer in process with two differences: mindcode's loop
replaces the callbacks (its metrics, checkpoints and resume), and a resumed run loads its own checkpoint instead of
the init. ``docs/mindformers_conformance.md`` compares the 34B jobs key by key with MindFormers' own YAMLs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from backends.ascend.lora import pet_config
from backends.ascend.model import model_settings
from backends.ascend.parallel import mindformers_sections, per_token_loss, semi_auto
from mindcode.config import TrainConfig
from mindcode.parallel import Layout

CPU_WRAPPER = "CpuSafeTrainOneStepCell"  # backends/ascend/cells.py registers it on MindSpore's CPU target


def init_checkpoint(config: TrainConfig) -> Path:
    """Where a run keeps ``training.init`` converted to a MindSpore checkpoint (MindFormers' ``load_checkpoint``)."""
    qkv_concat = bool(config.model.model_config.get("qkv_concat", False))
    return Path(config.training.output_dir) / "init" / ("model_qkv_concat.ckpt" if qkv_concat else "model.ckpt")


def mindformers_config(config: TrainConfig, device: str, layout: Layout,
                       num_rows: int | None = None) -> dict[str, Any]:
    """The MindFormers job of a run on ``device`` (``CPU`` or ``Ascend``) in ``layout``; ``num_rows``: the dataset's
    rows, when known, for the epochs MindFormers is asked to run (it stops at ``max_steps`` either way)."""
    t, s, o = config.training, config.schedule, config.optimizer
    semi = semi_auto(layout, config.mindformers)
    per_rank = config.mindformers.rows_per_forward(t.batch_size // layout.data_parallel, t.gradient_accumulation_steps,
                                                   layout)  # MindFormers' batch_size: the rows of one forward
    accumulation = t.gradient_accumulation_steps if semi else 1  # MindFormers' own accumulation cell
    per_token = per_token_loss(layout, semi, accumulation, config.preference_stage)
    steps_per_epoch = max(1, num_rows // t.batch_size) if num_rows else 1
    ascend = device != "CPU"
    settings, _overridden = model_settings(config.model.model_config, device)
    model_config = {**config.model.model_config, "batch_size": per_rank, **settings}
    if per_token:  # the model's loss then returns (sum, count), which MindFormers' pipeline wrapper divides
        model_config["calculate_per_token_loss"] = True
    if config.lora is not None:
        model_config["pet_config"] = pet_config(config.lora)
    dataset = train_dataset(config, per_rank, ascend)
    schedule = {"type": "CosineWithWarmUpLR", "learning_rate": s.learning_rate, "lr_end": s.lr_end,
                "warmup_lr_init": s.warmup_lr_init, "num_cycles": s.num_cycles, "total_steps": t.max_steps}
    schedule.update({"warmup_ratio": s.warmup_ratio} if s.warmup_ratio is not None else
                    {"warmup_steps": s.warmup_steps})
    m = config.mindformers
    context = {"mode": 0, "device_target": device, "max_call_depth": 10000, "save_graphs": False,
               "device_id": int(os.environ.get("DEVICE_ID", 0))}
    if ascend:  # MindFormers' CodeLlama card: a memory cap below the 64 GB of a 910B, and its O1 graph level
        context.update({"max_device_memory": m.max_device_memory, "jit_config": {"jit_level": m.jit_level}})
    return {
        "seed": t.seed,
        "output_dir": str(Path(t.output_dir) / "mindformers"),
        # weights through MindFormers' own loading; where the layout splits them, each rank transforms and reads
        # only its slice (``auto_trans_ckpt``), never the whole init
        "load_checkpoint": str(init_checkpoint(config)),
        "auto_trans_ckpt": semi,
        "resume_training": False,
        "run_mode": "train",
        # the top-level key is the one MindFormers' Trainer copies into its wrappers and loss monitor
        "calculate_per_token_loss": per_token,
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "llama"},
        # MindFormers counts whole epochs; TrainCallBack stops the job at max_steps
        "runner_config": {"epochs": -(-t.max_steps // steps_per_epoch), "batch_size": per_rank,
                          "sink_mode": ascend, "sink_size": 1, "gradient_accumulation_steps": accumulation},
        "runner_wrapper": {"type": "MFTrainOneStepCell" if ascend else CPU_WRAPPER,
                           "scale_sense": m.loss_scale, "use_clip_grad": True, "max_grad_norm": t.max_grad_norm,
                           "calculate_per_token_loss": per_token},
        "optimizer": {"type": o.type, "betas": list(o.betas), "eps": o.eps, "weight_decay": o.weight_decay},
        "lr_schedule": schedule,
        "train_dataset": dataset,
        "train_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": dataset},
        "do_eval": False,
        **mindformers_sections(layout, m, t.output_dir, device),
        "callbacks": [
            {"type": "MFLossMonitor"},
            {"type": "CheckpointMonitor", "prefix": "mindcode", "save_checkpoint_steps": t.save_steps or t.max_steps,
             "integrated_save": False, "async_save": False, "keep_checkpoint_max": t.save_total_limit or t.max_steps},
            {"type": "TrainCallBack", "stop_step": t.max_steps},
        ],
        "context": context,
        "model": {"arch": dict(config.model.arch), "model_config": model_config},
    }


def train_dataset(config: TrainConfig, per_rank: int, ascend: bool) -> dict[str, Any]:
    """MindFormers' ``train_dataset``: the MindRecord file, ``per_rank`` rows a step."""
    return {
        "data_loader": {"type": "MindDataset", "dataset_dir": config.data.mindrecord, "shuffle": config.data.shuffle},
        # the network's inputs (MindFormers passes dataset columns by these names); for dpo/simpo mindcode feeds
        # the pairs as rows plus their reference log-probabilities, from its preference MindRecord columns
        "input_columns": ["input_ids", "labels"] + (["reference"] if config.preference_stage else []),
        "num_parallel_workers": 8 if ascend else 1, "python_multiprocessing": False,
        "drop_remainder": True, "batch_size": per_rank, "repeat": 1, "numa_enable": False, "prefetch_size": 1,
    }


TRAIN_HEADER = ("the job MindFormers' Trainer runs (MindFormers' format). Run it with MindFormers' own entry:\n"
                "# python -m backends.ascend.run_mindformer --config THIS_FILE (under msrun_launcher.sh)")


def write_yaml(values: dict[str, Any], path: Path, what: str = TRAIN_HEADER) -> None:
    """``values`` as a MindFormers YAML at ``path`` (temp file + rename), headed by a comment saying ``what`` it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(f"# Written by mindcode: {what}\n" + yaml.safe_dump(values, sort_keys=False, width=120))
    os.replace(tmp, path)
