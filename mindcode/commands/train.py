"""``mindcode train --config CONFIG``: fine-tune or pretrain on the config's backend.

    mindcode train --config configs/gpu/tiny_cpu.yaml --max_steps 20
    mindcode train --config configs/ascend/tiny_cpu.yaml --resume          # from the latest checkpoint
    mindcode train --config configs/ascend/tiny_cpu.yaml --resume_from runs/tiny_cpu/ascend/checkpoints/step_10
    mindcode train --config configs/gpu/tiny_cpu.yaml schedule.learning_rate=3e-4
    mindcode train --config configs/ascend/codellama_34b_finetune_16p.yaml --dry_run   # review a 16-device job here
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from backends import BACKENDS, get_backend
from mindcode.terminal import interactive
from mindcode.commands.plan import summary as plan_summary
from mindcode.config import check_data, load_config
from mindcode.errors import MindcodeError
from mindcode.parallel import check_model, resolve
from mindcode.plan.devices import detect_device, get_device
from mindcode.plan.memory import plan
from mindcode.train.loop import train

HELP = "train on a config's backend (metrics.jsonl, checkpoints, resume)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/{ascend,gpu}/*.yaml")
    parser.add_argument("--backend", choices=list(BACKENDS), help="override the config's backend")
    parser.add_argument("--output_dir", help="override training.output_dir")
    parser.add_argument("--max_steps", type=int, help="override training.max_steps")
    parser.add_argument("--save_steps", type=int, help="override training.save_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the output dir")
    parser.add_argument("--resume_from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    parser.add_argument("--dry_run", action="store_true",
                        help="validate, plan the memory, write the config the framework would get; build nothing")
    parser.add_argument("--device", help="--dry_run: the device to plan for (default: the backend's usual one)")
    parser.add_argument("--force", action="store_true", help="start even when `mindcode plan` says it does not fit")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. schedule.learning_rate=3e-4")


def log_dir(args: argparse.Namespace) -> str:
    """Framework logs go to OUTPUT_DIR/logs."""
    return args.output_dir or load_config(args.config, list(args.overrides), backend=args.backend).training.output_dir


def run(args: argparse.Namespace) -> dict[str, Any]:
    overrides = list(args.overrides)
    for flag, key in (("output_dir", "training.output_dir"), ("max_steps", "training.max_steps"),
                      ("save_steps", "training.save_steps")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    config = load_config(args.config, overrides, backend=args.backend)
    if args.dry_run:
        return dry_run(config, args.device)
    backend = get_backend(config.backend)
    rank, world = backend.init_distributed()  # one process, or one of torchrun's / msrun's
    if not args.force:
        check_fits(config, world)
    resume = args.resume_from or args.resume or None
    return train(config, resume=resume, progress=interactive(), rank=rank, world_size=world)


def check_fits(config: Any, world: int) -> None:
    """On an accelerator, refuse a job that `mindcode plan` says does not fit (the CPU is not checked)."""
    device = detect_device(config.backend)
    if device is None:
        return
    result = plan(config, device, world)
    if not result["fits"]:
        raise MindcodeError(f"{result['advice']} (mindcode plan --config {config.source}; --force to start anyway)")


def dry_run(config: Any, device: str | None) -> dict[str, Any]:
    """Everything a launch would decide, for the world the layout implies, with no model, data or weights: the
    memory plan and the framework's own config (``OUTPUT_DIR/mindformers.yaml`` or ``parallel_layout.json``)."""
    t = config.training
    where = f"{config.source}: parallel_config"
    layout = resolve(config.parallel_config, int(os.environ.get("WORLD_SIZE", os.environ.get("MS_WORKER_NUM", 0)))
                     or None, where)
    check_model(layout, config.model.shape(), config.model.seq_length, t.batch_size, where)
    memory = plan(config, get_device(device, config.backend), layout.world_size)
    out = Path(t.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = get_backend(config.backend).write_run_config(config, layout, out)
    absent = []
    try:
        check_data(config)
    except MindcodeError as exc:
        absent.append(f"data: {exc}")
    if t.init and not (Path(t.init) / "config.json").is_file():
        absent.append(f"training.init {t.init!r}: no HF checkpoint there")
    return {"dry_run": True, "backend": config.backend, "config": config.source, "layout": layout.as_dict(),
            "world_size": layout.world_size, "written": written, "plan": memory, "absent": absent,
            "ok": memory["fits"]}


def summary(result: dict[str, Any]) -> str:
    if result.get("dry_run"):
        lines = [f"[{result['backend']} dry run] {result['config']}: {result['world_size']} processes, "
                 f"dp{result['layout']['data_parallel']}/mp{result['layout']['model_parallel']}/"
                 f"pp{result['layout']['pipeline_stage']}; wrote {', '.join(result['written'])}",
                 plan_summary(result["plan"])]
        lines += [f"not on this machine (fine for a dry run): {a}" for a in result["absent"]]
        return "\n".join(lines)
    if result["first_loss"] is None:
        return (f"[{result['backend']} on {result['device']}] nothing to do: resumed at step {result['resumed_from']} "
                f"of {result['steps']}; weights in {result['final_weights']}")
    return (f"[{result['backend']} on {result['device']}] {result['steps']} steps "
            f"(from {result['resumed_from']}): loss {result['first_loss']:.4f} -> {result['final_loss']:.4f}, "
            f"{result['tokens_per_s']} tokens/s, {result['seconds']} s; metrics in {result['output_dir']}/metrics.jsonl, "
            f"weights in {result['final_weights']}")
