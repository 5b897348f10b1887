"""``mindcode plan --config CONFIG``: the memory every rank of a job needs, before it is launched.

    mindcode plan --config configs/ascend/codellama_34b_finetune_16p.yaml
    mindcode plan --config configs/gpu/codellama_7b_finetune.yaml --device a100-40g --json
    mindcode plan --config configs/gpu/codellama_34b_finetune_16p.yaml --task predict --batch_size 20 --max_length 4096 \\
        parallel_config.pipeline_stage=1 parallel_config.micro_batch_num=1 parallel_config.model_parallel=8

Per rank shape (pipeline stages differ: the embedding, the head): weights, gradients, AdamW moments, compute copies,
activations (with the config's recomputation; the summary also gives them without), logits, the runtime's reserve,
and for ``--task predict`` the KV cache. Exit status 1 when the job does not fit, with the biggest term and what
would make it fit. The world size is the layout's (``dp x mp x pp``) unless ``--nnodes/--nproc_per_node`` say.
"""

from __future__ import annotations

import argparse
from typing import Any

from mindcode.config import load_config
from mindcode.errors import MindcodeError
from mindcode.plan.devices import DEVICES, GIB, get_device
from mindcode.plan.memory import plan

HELP = "memory per device of a job (weights, gradients, optimizer, activations, KV cache): does it fit?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/{ascend,gpu}/*.yaml")
    parser.add_argument("--device", help=f"{', '.join([*DEVICES, 'cpu'])} (default: the backend's usual device)")
    parser.add_argument("--nnodes", type=int, help="nodes (world size = nnodes x nproc_per_node)")
    parser.add_argument("--nproc_per_node", type=int, help="processes (devices) per node")
    parser.add_argument("--task", choices=["train", "predict"], default="train")
    parser.add_argument("--batch_size", type=int, default=8, help="predict: sequences decoded together (predict's)")
    parser.add_argument("--max_length", type=int, help="predict: prompt + new tokens (default 4096, at most the model's "
                                                       "positions)")
    parser.add_argument("--checkpoint_dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"],
                        help="predict on gpu: the weights' dtype (CodeLlama's: bfloat16)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. parallel_config.model_parallel=4")


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config, list(args.overrides))
    if args.nnodes and not args.nproc_per_node:
        raise MindcodeError("--nnodes needs --nproc_per_node (the world is nnodes x nproc_per_node)")
    world = (args.nnodes or 1) * args.nproc_per_node if args.nproc_per_node else None
    result = plan(config, get_device(args.device, config.backend), world, args.task, args.batch_size,
                  args.max_length, args.checkpoint_dtype)
    result["ok"] = result["fits"]
    return result


def gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def summary(result: dict[str, Any]) -> str:
    device = result["device"]
    layout = result["layout"]
    lines = [f"[{result['backend']} {result['task']}] {result['config']} on {result['world_size']} x {device['name']} "
             f"({gib(device['capacity'])}), dp{layout['data_parallel']}/mp{layout['model_parallel']}/"
             f"pp{layout['pipeline_stage']}, {', '.join(f'{k} {v}' for k, v in result['precision'].items())}"]
    for shape in result["rank_shapes"]:
        ranks = shape["ranks"]
        named = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}..{ranks[-1]} ({len(ranks)})"
        terms = ", ".join(f"{k} {gib(v)}" for k, v in shape["terms"].items() if v)
        lines.append(f"  stage {shape['stage']}, {named}: peak {gib(shape['peak'])} = {terms}")
        if "activations_without_recompute" in shape:
            lines.append(f"      activations without recomputation: {gib(shape['activations_without_recompute'])}")
    if "load" in result:
        load = result["load"]
        lines.append(f"  loading the init: {gib(load['device_bytes'])} per device, "
                     f"{gib(load['host_bytes_per_node'])} of host memory per node")
    verdict = "fits" if result["fits"] else "does NOT fit"
    lines.append(f"{verdict}: peak {gib(result['peak'])} of {gib(device['capacity'])}")
    if not result["fits"]:
        lines.append(result["advice"])
    return "\n".join(lines)
