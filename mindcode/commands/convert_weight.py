"""``mindcode convert-weight``: HF <-> MindSpore (MindFormers names), streamed; MindFormers' flag names.

    mindcode convert-weight --model llama --input_path CodeLlama-7b-hf --output_path codellama_7b.ckpt
    mindcode convert-weight --reversed --input_path trained.ckpt --output_path hf_out --config codellama-7b
    mindcode convert-weight merge-lora --input_path CodeLlama-7b-hf --adapter lora_dir_or.ckpt --output_path merged_hf
    mindcode convert-weight export-lora --input_path final/adapter.ckpt --output_path peft_adapter
    mindcode convert-weight merge-ranks --input_path output/checkpoint --strategy output/strategy --output_path full.ckpt
    mindcode convert-weight split-ranks --input_path full.ckpt --strategy strategy.ckpt --output_path per_rank/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mindcode.terminal import interactive
from mindcode.convert.hf_to_ms import DTYPE_FLAGS, FORMATS, convert_hf_to_ms
from mindcode.convert.lora import export_peft, read_adapter
from mindcode.convert.ms_to_hf import convert_ms_to_hf
from mindcode.errors import MindcodeError

HELP = "convert weights HF <-> MindSpore (.ckpt/safetensors with MindFormers names), streamed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["merge-lora", "export-lora", "merge-ranks", "split-ranks"],
                        help="merge-lora: base + LoRA adapter -> merged weights (an HF directory, or a .ckpt / "
                             ".safetensors file from an HF base); export-lora: MindFormers LoRA .ckpt -> PEFT adapter; "
                             "merge-ranks: DIR/rank_N/*.ckpt + strategy -> one .ckpt; split-ranks: the reverse")
    parser.add_argument("--model", default="llama", choices=["llama"], help="model family (llama covers CodeLlama)")
    parser.add_argument("--input_path", required=True,
                        help="HF directory (config.json + *.safetensors or pytorch_model*.bin); with --reversed a .ckpt")
    parser.add_argument("--output_path", required=True, help="the .ckpt to write; with --reversed an HF directory")
    parser.add_argument("--dtype", choices=list(DTYPE_FLAGS), default=None,
                        help="cast weights to this dtype (default: keep each tensor's source dtype)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="ckpt", help="MindSpore output format")
    parser.add_argument("--reversed", action="store_true", help="MindSpore -> HF")
    parser.add_argument("--qkv_concat", action="store_true",
                        help="HF -> MindSpore: MindFormers' fused w_qkv / w_gate_hidden (model_config.qkv_concat)")
    parser.add_argument("--config", help="--reversed from a .ckpt: HF config.json, mindcode/MindFormers YAML, or preset")
    parser.add_argument("--max_shard_size", default="5GB", help="--reversed: largest safetensors shard")
    parser.add_argument("--verify", action="store_true", help="re-read the output and compare every tensor")
    parser.add_argument("--adapter", help="merge-lora: a PEFT adapter directory or a MindFormers LoRA .ckpt")
    parser.add_argument("--lora_alpha", type=float, help="LoRA alpha, when no adapter_config.json says it")
    parser.add_argument("--strategy", help="merge-ranks/split-ranks: a MindSpore strategy file (.ckpt protobuf or "
                                           ".json, from strategy_ckpt_save_file)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    progress = interactive()
    if args.action in ("merge-ranks", "split-ranks"):
        if not args.strategy:
            raise MindcodeError(f"{args.action} needs --strategy (the strategy file(s) of the per-rank layout)")
        from backends.ascend import distributed

        action = distributed.merge_ranks if args.action == "merge-ranks" else distributed.split_ranks
        return action(args.input_path, args.strategy, args.output_path, progress)
    if args.action == "export-lora":
        return export_peft(args.input_path, args.output_path, args.lora_alpha, progress=progress)
    if args.action == "merge-lora":
        if not args.adapter:
            raise MindcodeError("merge-lora needs --adapter (a PEFT directory or a MindFormers LoRA .ckpt)")
        adapter = read_adapter(args.adapter, args.lora_alpha)
        if Path(args.input_path).is_dir() and Path(args.output_path).suffix in (".ckpt", ".safetensors"):
            fmt = Path(args.output_path).suffix[1:]
            return convert_hf_to_ms(args.input_path, args.output_path, args.dtype, fmt, args.verify, progress, adapter,
                                    args.qkv_concat)
        return convert_ms_to_hf(args.input_path, args.output_path, args.config, args.dtype, args.max_shard_size,
                                args.verify, progress, adapter)
    if args.reversed:
        return convert_ms_to_hf(args.input_path, args.output_path, args.config, args.dtype, args.max_shard_size,
                                args.verify, progress)
    return convert_hf_to_ms(args.input_path, args.output_path, args.dtype, args.fmt, args.verify, progress,
                            qkv_concat=args.qkv_concat)


def summary(result: dict[str, Any]) -> str:
    if "devices" in result:  # merge-ranks / split-ranks
        count = result.get("ranks_read", result.get("ranks_written"))
        return (f"wrote {result['output_path']} ({count} ranks of a {result['devices']}-device layout) "
                f"in {result['seconds']:.1f} s")
    if "target_modules" in result:  # export-lora
        return (f"wrote the PEFT adapter {result['output_path']}: {result['tensors']} tensors, r={result['rank']}, "
                f"lora_alpha={result['lora_alpha']}, targets {', '.join(result['target_modules'])}")
    merged = result.get("merged_lora")
    dtypes = ", ".join(f"{n} {d}" for d, n in result["dtypes"].items())
    verified = ", verified" if result.get("verified") else ""
    return (f"wrote {result['output_path']}: {result['tensors']} tensors ({dtypes}), {result['bytes'] / 1e6:.1f} MB "
            f"in {result['seconds']:.1f} s ({result['bytes_per_s'] / 1e6:.0f} MB/s), peak RSS "
            f"{result['peak_rss_mb']:.0f} MB{verified}; dropped {len(result['dropped'])}"
            + (f"; merged LoRA into {merged['weights']} weights (scale {merged['scale']:g})" if merged else ""))
