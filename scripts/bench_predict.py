"""Generation throughput: mindcode's decoder on each backend next to transformers' ``generate`` (the baseline).

    python scripts/bench_predict.py --new_tokens 64
    python scripts/bench_predict.py --backends gpu --preset codellama-7b --bandwidth_gbs 3350 \
        --sampling_tasks 164 --n_samples 20 --new_tokens 256             # one H100 (random bf16 weights)
    python scripts/bench_predict.py --backends gpu --new_tokens 4 --batches 1   # the smoke run the tests make
    python scripts/bench_predict.py --kv_cache --new_tokens 64             # ascend: KV cache vs none, by --max_length

Greedy decoding of random prompts (32 tokens) at batch 1 and batch 32, new tokens/s; all of them generate exactly
``--new_tokens`` tokens (EOS ignored) so the work is the same. The baseline runs transformers' ``generate`` on the
same weights (gpu side). With ``--bandwidth_gbs`` (the device's memory bandwidth) batch 1 is also given as a share
of its bound: every new token reads all the weights once, so the bound is bandwidth / weight bytes tokens/s.
HumanEval-shaped sampling (``--sampling_tasks`` prompts of 150 tokens, ``--n_samples`` samples each at temperature
0.8, top-p 0.95, one task's samples a batch, as the harness samples) runs next to ``generate`` with
``num_return_sequences``; 164 x 20 is HumanEval's pass@10 run. ``--kv_cache`` times the ascend backend's generation
(MindFormers' incremental inference) at ``--max_length`` 128 and 512 next to the way it decoded before (a full
fixed-shape forward per new token, all positions' logits to the host), for the same 8 prompts. Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.predict.decode import GenerationConfig  # noqa: E402
from mindcode.predict.run import Generator  # noqa: E402
from mindcode.presets import PRESETS  # noqa: E402
from mindcode.tokenizer import TINY_TOKENIZER  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--backends", default="gpu,ascend")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batches", default="1,32", help="batch sizes to time")
    parser.add_argument("--kv_cache", action="store_true", help="ascend: with and without the KV cache by length")
    parser.add_argument("--bandwidth_gbs", type=float, help="the device's memory bandwidth in GB/s: batch 1's bound")
    parser.add_argument("--sampling_tasks", type=int, default=4, help="HumanEval-shaped sampling: prompts (0: off)")
    parser.add_argument("--n_samples", type=int, default=4, help="HumanEval-shaped sampling: samples a prompt")
    args = parser.parse_args()
    if args.kv_cache:
        print(json.dumps(kv_cache(args.new_tokens)))
        return 0
    import torch

    from tests.conftest import write_hf_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    tiny = args.preset == "tiny"  # other presets: random bf16 weights (their real tokenizers are not needed)
    hf = write_hf_checkpoint(work / "hf", PRESETS[args.preset], seed=0, dtype="float32" if tiny else "bfloat16")
    tokenizer = str(TINY_TOKENIZER) if tiny else None
    rng = np.random.default_rng(0)
    config = GenerationConfig(max_new_tokens=args.new_tokens, eos_token_id=-1)
    report: dict = {"preset": args.preset, "prompt_tokens": 32, "new_tokens": args.new_tokens}
    length = 32 + args.new_tokens
    model = Generator("gpu", str(hf), tokenizer, max_length=length).model  # the baseline's transformers model
    for batch in batches(args):
        prompts = [[1, *rng.integers(7, PRESETS[args.preset].vocab_size, 31).tolist()] for _ in range(batch)]
        row = {}
        for backend in args.backends.split(","):  # a model per batch size: ascend's graphs have fixed shapes
            generator = Generator(backend, str(hf), tokenizer, max_length=length, max_rows=batch)
            generator.run(prompts[:1], GenerationConfig(max_new_tokens=2, eos_token_id=-1))  # compile / warm up
            start = time.perf_counter()
            generator.run(prompts, config)
            row[backend] = round(batch * args.new_tokens / (time.perf_counter() - start), 1)
        ids = torch.tensor(prompts, device=model.device)
        with torch.no_grad():
            model.generate(ids[:1], max_new_tokens=2, do_sample=False)
            start = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
            row["transformers_generate"] = round(batch * args.new_tokens / (time.perf_counter() - start), 1)
        if "gpu" in row:
            row["gpu_over_generate"] = round(row["gpu"] / row["transformers_generate"], 2)
        report[f"batch_{batch}_tokens_per_s"] = row
    if args.bandwidth_gbs and "batch_1_tokens_per_s" in report:
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        bound = args.bandwidth_gbs * 1e9 / weight_bytes
        report["batch_1_bandwidth_bound_tokens_per_s"] = round(bound, 1)
        report["batch_1_of_bound"] = {k: round(v / bound, 3) for k, v in report["batch_1_tokens_per_s"].items()
                                      if not k.endswith("_over_generate")}
    if args.sampling_tasks:
        report["sampling"] = sampling(args, hf, tokenizer, model)
    print(json.dumps(report))
    return 0


def sampling(args: argparse.Namespace, hf: Path, tokenizer: str | None, model) -> dict:
    """HumanEval-shaped sampling (see the module): new tokens/s of each backend and of ``generate``."""
    import torch

    rng = np.random.default_rng(1)
    tasks = [[1, *rng.integers(7, PRESETS[args.preset].vocab_size, 149).tolist()] for _ in range(args.sampling_tasks)]
    config = GenerationConfig(max_new_tokens=args.new_tokens, eos_token_id=-1, do_sample=True, temperature=0.8,
                              top_p=0.95, num_return_sequences=args.n_samples, seed=0)
    tokens = args.sampling_tasks * args.n_samples * args.new_tokens
    result: dict = {"tasks": args.sampling_tasks, "n_samples": args.n_samples, "prompt_tokens": 150}
    for backend in args.backends.split(","):
        generator = Generator(backend, str(hf), tokenizer, max_length=150 + args.new_tokens, max_rows=args.n_samples)
        generator.run(tasks[:1], GenerationConfig(max_new_tokens=2, eos_token_id=-1))  # compile / warm up
        start = time.perf_counter()
        for task in tasks:
            generator.run([task], config)
        result[backend] = round(tokens / (time.perf_counter() - start), 1)
    torch.manual_seed(0)
    with torch.no_grad():
        start = time.perf_counter()
        for task in tasks:
            ids = torch.tensor([task], device=model.device)
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=True, temperature=0.8, top_p=0.95, top_k=0,
                           num_return_sequences=args.n_samples, pad_token_id=0)
        result["transformers_generate"] = round(tokens / (time.perf_counter() - start), 1)
    if "gpu" in result:
        result["gpu_over_generate"] = round(result["gpu"] / result["transformers_generate"], 2)
    return result


def batches(args: argparse.Namespace) -> list[int]:
    return [int(b) for b in args.batches.split(",")]


def full_forward_decode(backend, model, prompts, new_tokens: int, length: int) -> list[list[int]]:
    """The decoding the KV cache replaced: every step re-runs the whole padded sequence."""
    rows = [list(p) for p in prompts]
    for _ in range(new_tokens):
        ids = np.zeros((len(rows), length), np.int32)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        logits = backend.forward(model, ids)
        for i, r in enumerate(rows):
            r.append(int(np.argmax(logits[i, len(r) - 1, 1:]) + 1))  # id 0 is never generated (MindFormers' pad)
    return [r[len(p):] for r, p in zip(rows, prompts)]


def kv_cache(new_tokens: int) -> dict:
    from backends import get_backend
    from tests.conftest import write_hf_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_kv_"))
    hf = write_hf_checkpoint(work / "hf", PRESETS["tiny"], seed=0)
    rng = np.random.default_rng(0)
    prompts = [[1, *rng.integers(7, 1024, 31).tolist()] for _ in range(8)]
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_id=-1)
    report: dict = {"preset": "tiny", "prompts": 8, "prompt_tokens": 32, "new_tokens": new_tokens}
    backend = get_backend("ascend")
    for length in (128, 512):
        generator = Generator("ascend", str(hf), str(TINY_TOKENIZER), max_length=length, max_rows=8)
        generator.run(prompts, GenerationConfig(max_new_tokens=2, eos_token_id=-1))  # compile both graphs
        start = time.perf_counter()
        cached = generator.run(prompts, config)
        with_cache = time.perf_counter() - start
        model = backend.build_model(PRESETS["tiny"], length, generator.native)
        full_forward_decode(backend, model, prompts, 2, length)  # compile
        start = time.perf_counter()
        plain = full_forward_decode(backend, model, prompts, new_tokens, length)
        without = time.perf_counter() - start
        report[f"max_length_{length}"] = {"kv_cache_s": round(with_cache, 3), "no_cache_s": round(without, 3),
                                          "speed_up": round(without / with_cache, 2),
                                          "same_tokens": [c[0] for c in cached] == plain}
    report["kv_cache_512_over_128"] = round(report["max_length_512"]["kv_cache_s"] /
                                            report["max_length_128"]["kv_cache_s"], 2)
    return report


if __name__ == "__main__":
    sys.exit(main())
