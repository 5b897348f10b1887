"""``mindcode convert-weight``: HF <-> MindSpore (MindFormers names), streamed; MindFormers' flag names.

    mindcode convert-weight --model llama --input_path CodeLlama-7b-hf --output_path codellama_7b.ckpt
    mindcode convert-weight --reversed --input_path trained.ckpt --output_path hf_out --config codellama-7b
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mindcode.convert.hf_to_ms import DTYPE_FLAGS, FORMATS, convert_hf_to_ms
from mindcode.convert.ms_to_hf import convert_ms_to_hf

HELP = "convert weights HF <-> MindSpore (.ckpt/safetensors with MindFormers names), streamed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="llama", choices=["llama"], help="model family (llama covers CodeLlama)")
    parser.add_argument("--input_path", required=True,
                        help="HF directory (config.json + *.safetensors or pytorch_model*.bin); with --reversed a .ckpt")
    parser.add_argument("--output_path", required=True, help="the .ckpt to write; with --reversed an HF directory")
    parser.add_argument("--dtype", choices=list(DTYPE_FLAGS), default=None,
                        help="cast weights to this dtype (default: keep each tensor's source dtype)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="ckpt", help="MindSpore output format")
    parser.add_argument("--reversed", action="store_true", help="MindSpore -> HF")
    parser.add_argument("--config", help="--reversed: HF config.json, mindcode/MindFormers YAML, or preset name")
    parser.add_argument("--max_shard_size", default="5GB", help="--reversed: largest safetensors shard")
    parser.add_argument("--verify", action="store_true", help="re-read the output and compare every tensor")


def run(args: argparse.Namespace) -> dict[str, Any]:
    progress = sys.stderr.isatty()
    if args.reversed:
        if not args.config:
            raise SystemExit("mindcode convert-weight: error: --reversed needs --config (config.json, YAML or preset)")
        return convert_ms_to_hf(args.input_path, args.output_path, args.config, args.dtype, args.max_shard_size,
                                args.verify, progress)
    return convert_hf_to_ms(args.input_path, args.output_path, args.dtype, args.fmt, args.verify, progress)


def summary(result: dict[str, Any]) -> str:
    dtypes = ", ".join(f"{n} {d}" for d, n in result["dtypes"].items())
    verified = ", verified" if result.get("verified") else ""
    return (f"wrote {result['output_path']}: {result['tensors']} tensors ({dtypes}), {result['bytes'] / 1e6:.1f} MB "
            f"in {result['seconds']:.1f} s ({result['bytes_per_s'] / 1e6:.0f} MB/s), peak RSS "
            f"{result['peak_rss_mb']:.0f} MB{verified}; dropped {len(result['dropped'])}")
