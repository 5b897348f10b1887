"""The layout ``mindcode plan`` proposes when the given one does not fit: the cheapest layout of the same devices
that does, in the order a torchtitan user picks one (data parallel with sharded weights first, then tensor
parallel, with sequence parallel, within a node, then pipeline stages across nodes): the fewest pipeline stages,
then the smallest model-parallel group, every candidate checked by the same plan (and the same layout checks) as
the job itself."""

from __future__ import annotations

import dataclasses
from typing import Any

from mindcode.errors import MindcodeError


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(config: Any, world: int, per_node: int, task: str) -> list[Any]:
    """``parallel_config`` sections of ``world`` devices, cheapest first (train: pp, then mp; predict: mp only). A
    pipeline gets one row per micro-batch (MindFormers' 34B layout: the fewest bubbles, the least activation
    memory), or the config's own micro-batch count."""
    section, t = config.parallel_config, config.training
    found = []
    for pp in divisors(world) if task == "train" else [1]:
        for mp in divisors(world // pp):
            if mp > per_node:  # a model-parallel group stays within a node's fast links
                continue
            dp = world // pp // mp
            rows = t.batch_size // dp // t.gradient_accumulation_steps
            micros = [m for m in dict.fromkeys([rows, section.micro_batch_num]) if m >= pp] if pp > 1 else [1]
            found += [dataclasses.replace(section, data_parallel=dp, model_parallel=mp, pipeline_stage=pp,
                                          micro_batch_num=micro, use_seq_parallel=mp > 1) for micro in micros]
    return found


def suggest_layout(config: Any, device: Any, world: int, task: str, plan: Any, **options: Any) -> dict | None:
    """The first candidate that fits by ``plan`` (``mindcode.plan.memory.plan``): its ``parallel_config`` and peak;
    None when no layout of ``world`` devices fits."""
    current = config.parallel_config
    for section in candidates(config, world, device.per_node, task):
        if (section.model_parallel, section.pipeline_stage) == (current.model_parallel, current.pipeline_stage):
            continue  # the layout that did not fit
        trial = dataclasses.replace(config, parallel_config=section)
        try:
            result = plan(trial, device, world, task, suggest=False, **options)
        except MindcodeError:  # the model or batch does not divide this way
            continue
        if result["fits"]:
            keys = ("data_parallel", "model_parallel", "pipeline_stage", "micro_batch_num", "use_seq_parallel")
            return {"parallel_config": {k: getattr(section, k) for k in keys}, "peak": result["peak"]}
    return None
