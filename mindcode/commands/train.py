"""``mindcode train --config CONFIG``: fine-tune or pretrain on the config's backend.

    mindcode train --config configs/gpu/tiny_cpu.yaml --max_steps 20
    mindcode train --config configs/ascend/tiny_cpu.yaml --resume          # from the latest checkpoint
    mindcode train --config configs/ascend/tiny_cpu.yaml --resume_from runs/tiny_cpu/ascend/checkpoints/step_10
    mindcode train --config configs/gpu/tiny_cpu.yaml training.schedule.learning_rate=3e-4
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from backends import get_backend
from mindcode.config import load_config
from mindcode.train.loop import train

HELP = "train on a config's backend (metrics.jsonl, checkpoints, resume)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/{ascend,gpu}/*.yaml")
    parser.add_argument("--backend", choices=["ascend", "gpu"], help="override the config's backend")
    parser.add_argument("--output_dir", help="override training.output_dir")
    parser.add_argument("--max_steps", type=int, help="override training.max_steps")
    parser.add_argument("--save_steps", type=int, help="override training.save_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the output dir")
    parser.add_argument("--resume_from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. schedule.learning_rate=3e-4")


def run(args: argparse.Namespace) -> dict[str, Any]:
    overrides = list(args.overrides)
    for flag, key in (("output_dir", "training.output_dir"), ("max_steps", "training.max_steps"),
                      ("save_steps", "training.save_steps")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    config = load_config(args.config, overrides, backend=args.backend)
    rank, world = get_backend(config.backend).init_distributed()  # one process, or one of torchrun's / msrun's
    resume = args.resume_from or args.resume or None
    return train(config, resume=resume, progress=sys.stderr.isatty(), rank=rank, world_size=world)


def summary(result: dict[str, Any]) -> str:
    if result["first_loss"] is None:
        return (f"[{result['backend']} on {result['device']}] nothing to do: resumed at step {result['resumed_from']} "
                f"of {result['steps']}; weights in {result['final_weights']}")
    return (f"[{result['backend']} on {result['device']}] {result['steps']} steps "
            f"(from {result['resumed_from']}): loss {result['first_loss']:.4f} -> {result['final_loss']:.4f}, "
            f"{result['tokens_per_s']} tokens/s, {result['seconds']} s; metrics in {result['output_dir']}/metrics.jsonl, "
            f"weights in {result['final_weights']}")
