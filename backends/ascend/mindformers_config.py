"""A mindcode training config in MindFormers' own format (the sections ``run_mindformer.py`` and
``mindformers.Trainer`` read): what the ascend backend hands to MindFormers' Trainer, and what it writes to
``OUTPUT_DIR/mindformers.yaml`` so that the same run can be started with MindFormers' tools.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from backends.ascend.lora import pet_config
from backends.ascend.model import model_settings
from backends.ascend.parallel import mindformers_sections, rows_per_step, semi_auto
from mindcode.config import TrainConfig
from mindcode.parallel import Layout

CPU_WRAPPER = "CpuSafeTrainOneStepCell"  # registered by backends.ascend.train on MindSpore's CPU target


def mindformers_config(config: TrainConfig, device: str, layout: Layout) -> dict[str, Any]:
    """The MindFormers YAML of a run on ``device`` (``CPU`` or ``Ascend``) in ``layout``."""
    t, s, o = config.training, config.schedule, config.optimizer
    per_rank = rows_per_step(layout, t.batch_size, t.gradient_accumulation_steps)
    accumulation = t.gradient_accumulation_steps if semi_auto(layout) else 1  # MindFormers' own accumulation cell
    settings, _overridden = model_settings(config.model.model_config, device)
    model_config = {**config.model.model_config, "batch_size": per_rank, **settings}
    if config.lora is not None:
        model_config["pet_config"] = pet_config(config.lora)
    dataset = {
        "data_loader": {"type": "MindDataset", "dataset_dir": config.data.mindrecord, "shuffle": config.data.shuffle},
        # the network's inputs (MindFormers passes dataset columns by these names); for dpo/simpo mindcode feeds
        # the pairs as rows plus their reference log-probabilities, from its preference MindRecord columns
        "input_columns": ["input_ids", "labels"] + (["reference"] if config.preference_stage else []),
        "num_parallel_workers": 1, "python_multiprocessing": False,
        "drop_remainder": True, "batch_size": per_rank, "repeat": 1, "numa_enable": False, "prefetch_size": 1,
    }
    schedule = {"type": "CosineWithWarmUpLR", "learning_rate": s.learning_rate, "lr_end": s.lr_end,
                "warmup_lr_init": s.warmup_lr_init, "num_cycles": s.num_cycles, "total_steps": t.max_steps}
    schedule.update({"warmup_ratio": s.warmup_ratio} if s.warmup_ratio is not None else
                    {"warmup_steps": s.warmup_steps})
    return {
        "seed": t.seed,
        "output_dir": str(Path(t.output_dir) / "mindformers"),
        "load_checkpoint": "",
        "resume_training": False,
        "run_mode": "train",
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "llama"},
        "runner_config": {"epochs": 1, "batch_size": per_rank, "sink_mode": False, "sink_size": 1,
                          "gradient_accumulation_steps": accumulation},
        "runner_wrapper": {"type": CPU_WRAPPER if device == "CPU" else "MFTrainOneStepCell",
                           "scale_sense": config.mindformers.loss_scale, "use_clip_grad": True,
                           "max_grad_norm": t.max_grad_norm,
                           # MindFormers' micro-batches: the loss as the mean over every trained token of the batch
                           "calculate_per_token_loss": semi_auto(layout) and (layout.pipeline_stage > 1
                                                                              or accumulation > 1)},
        "optimizer": {"type": o.type, "betas": list(o.betas), "eps": o.eps, "weight_decay": o.weight_decay},
        "lr_schedule": schedule,
        "train_dataset": dataset,
        "train_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": dataset},
        "do_eval": False,
        **mindformers_sections(layout, config.mindformers, t.output_dir, device),
        "callbacks": [],
        "context": {"mode": 0, "device_target": device, "max_call_depth": 10000, "save_graphs": False,
                    "device_id": int(os.environ.get("DEVICE_ID", 0))},
        "model": {"arch": dict(config.model.arch), "model_config": model_config},
    }


def write_yaml(values: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("# Written by mindcode: the config MindFormers' Trainer ran (MindFormers' format).\n"
                   + yaml.safe_dump(values, sort_keys=False, width=120))
    os.replace(tmp, path)
