"""``mindcode launch``: run a mindcode verb on several processes/nodes through msrun (ascend) or torchrun (gpu).

    mindcode launch --nnodes 2 --node_rank 0 --nproc_per_node 8 --master_addr 10.0.0.1 --master_port 8118 \\
        -- train --config configs/ascend/codellama_34b_finetune_16p.yaml
    mindcode launch --nproc_per_node 2 --dry_run -- train --config configs/gpu/tiny_cpu.yaml

The backend comes from the verb's ``--config`` (or ``--backend``). Before starting, a preflight checks that the
master port is free (on the master node) and that the node has as many visible devices as processes
(``ASCEND_RT_VISIBLE_DEVICES`` / ``CUDA_VISIBLE_DEVICES``; a host with no accelerator runs on its CPU).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

from backends import get_backend
from mindcode.errors import MindcodeError

HELP = "launch a verb on msrun/torchrun (multi-process, multi-node) after a preflight"
ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nnodes", type=int, default=1)
    parser.add_argument("--node_rank", type=int, default=0)
    parser.add_argument("--nproc_per_node", type=int, default=1)
    parser.add_argument("--master_addr", default="127.0.0.1")
    parser.add_argument("--master_port", type=int, default=None, help="default: 8118 (msrun), 29500 (torchrun)")
    parser.add_argument("--log_dir", default="output/launch_log")
    parser.add_argument("--cluster_time_out", type=int, default=7200)
    parser.add_argument("--dry_run", action="store_true", help="print the command and the preflight, run nothing")
    parser.add_argument("--force", action="store_true", help="launch even when `mindcode plan` says it does not fit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- VERB ARGS (e.g. -- train --config X.yaml)")


def visible_devices(backend: str) -> tuple[str, int]:
    return get_backend(backend).visible_devices()


def preflight(args: argparse.Namespace, backend: str, port: int) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    if args.node_rank == 0:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the launcher's own server binds it
            try:
                s.bind((args.master_addr, port))
            except OSError as exc:
                raise MindcodeError(f"preflight: master port {args.master_addr}:{port} is not free ({exc.strerror})")
        checks["master_port"] = f"{args.master_addr}:{port} free"
    variable, count = visible_devices(backend)
    if count and count < args.nproc_per_node:
        raise MindcodeError(f"preflight: {args.nproc_per_node} processes per node but {count} devices visible "
                            f"({variable})")
    checks["devices"] = f"{count} visible ({variable})" if count else "none: processes run on the CPU"
    return checks


def _flag(verb: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in the launched verb's arguments."""
    for i, arg in enumerate(verb):
        if arg == name and i + 1 < len(verb):
            return verb[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def memory_check(verb: list[str], backend: str, world: int, force: bool) -> str:
    """A ``train`` job on this host's accelerator must fit by `mindcode plan` (``--force`` overrides)."""
    from mindcode.config import load_config
    from mindcode.plan.devices import detect_device
    from mindcode.plan.memory import plan

    device = detect_device(backend) if verb[0] == "train" else None
    if device is None:
        return "not checked (no accelerator here)" if verb[0] == "train" else "not a training job"
    config = load_config(_flag(verb, "--config"), [a for a in verb if "=" in a and not a.startswith("-")],
                         backend=_flag(verb, "--backend"))
    result = plan(config, device, world)
    if not result["fits"] and not force:
        raise MindcodeError(f"preflight: {result['advice']} (--force to launch anyway)")
    return f"peak {result['peak'] / 2**30:.1f} of {device.capacity / 2**30:.1f} GiB per device"


def run(args: argparse.Namespace) -> dict[str, Any]:
    verb = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not verb:
        raise MindcodeError("give the verb to launch after --, e.g. -- train --config configs/gpu/tiny_cpu.yaml")
    if any(" " in a for a in verb):
        raise MindcodeError("launcher arguments cannot contain spaces (msrun/torchrun get one command string)")
    backend = _flag(verb, "--backend")
    if backend is None:
        if _flag(verb, "--config") is None:
            raise MindcodeError("the launched verb needs --config (its backend picks msrun or torchrun)")
        config = Path(_flag(verb, "--config"))
        if not config.is_file():
            raise MindcodeError(f"{config}: no such config file")
        backend = (yaml.safe_load(config.read_text()) or {}).get("backend", "gpu")
    port = args.master_port or get_backend(backend).default_port
    memory = memory_check(verb, backend, args.nnodes * args.nproc_per_node, args.force)
    if args.force and verb[0] == "train":
        verb = [*verb, "--force"]  # checked here; the workers must not refuse it again
    launcher = ROOT / "scripts" / get_backend(backend).launcher
    command = ["bash", str(launcher), " ".join(["mindcode", *verb]), str(args.nnodes * args.nproc_per_node),
               str(args.nproc_per_node), args.master_addr, str(port), str(args.node_rank), args.log_dir, "True",
               str(args.cluster_time_out)]
    checks = {**preflight(args, backend, port), "memory": memory}
    result = {"backend": backend, "command": command, "preflight": checks, "dry_run": args.dry_run}
    if not args.dry_run:
        result["returncode"] = subprocess.run(command).returncode
        result["ok"] = result["returncode"] == 0
        if not result["ok"]:
            result["failed_ranks"] = worker_errors(Path(args.log_dir))
    return result


def log_dir(args: argparse.Namespace) -> str:
    return args.log_dir


def worker_errors(directory: Path) -> list[dict[str, Any]]:
    """Each worker log's last error line (msrun: ``worker_N.log``; torchrun: ``*/attempt_K/N/stderr.log``)."""
    logs = {int(p.stem.split("_")[1]): p for p in directory.glob("worker_*.log") if p.stem.split("_")[1].isdigit()}
    for path in sorted(directory.glob("*/attempt_*/*/stderr.log")):
        if path.parent.name.isdigit():
            logs[int(path.parent.name)] = path  # the latest attempt wins
    found = []
    for rank, path in sorted(logs.items()):
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower() and not line.startswith("File ")]
        if errors or lines:
            found.append({"rank": rank, "line": (errors or lines)[-1][:300], "log": str(path)})
    return [f for f in found if "error" in f["line"].lower()] or found


def summary(result: dict[str, Any]) -> str:
    shown = " ".join(f'"{a}"' if " " in a else a for a in result["command"])
    checks = "; ".join(f"{k}: {v}" for k, v in result["preflight"].items())
    state = "dry run" if result["dry_run"] else f"exit status {result['returncode']}"
    lines = [f"[{result['backend']}] {shown}", f"preflight: {checks}", state]
    lines += [f"  rank {f['rank']}: {f['line']} ({f['log']})" for f in result.get("failed_ranks", [])]
    return "\n".join(lines)
