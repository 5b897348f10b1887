"""``mindcode convert-weight``: HF checkpoint directory -> MindSpore checkpoint (MindFormers' flag names)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mindcode.convert.hf_to_ms import DTYPE_FLAGS, convert_hf_to_ms

HELP = "convert an HF safetensors checkpoint to a MindSpore .ckpt with MindFormers names"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="llama", choices=["llama"], help="model family (llama covers CodeLlama)")
    parser.add_argument("--input_path", required=True, help="HF checkpoint directory (config.json + *.safetensors)")
    parser.add_argument("--output_path", required=True, help="MindSpore checkpoint to write (.ckpt)")
    parser.add_argument("--dtype", choices=list(DTYPE_FLAGS), default=None,
                        help="cast weights to this dtype (default: keep each tensor's source dtype)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return convert_hf_to_ms(args.input_path, args.output_path, dtype=args.dtype, progress=sys.stderr.isatty())


def summary(result: dict[str, Any]) -> str:
    dtypes = ", ".join(f"{n} {d}" for d, n in result["dtypes"].items())
    return (f"wrote {result['output_path']}: {result['tensors']} tensors ({dtypes}), "
            f"{result['bytes'] / 1e6:.1f} MB in {result['seconds']:.1f} s; dropped {len(result['dropped'])}")
