"""Generation throughput: mindcode's decoder on each backend next to transformers' ``generate`` (the baseline).

    python scripts/bench_predict.py --new_tokens 64
    python scripts/bench_predict.py --backends gpu --preset codellama-7b   # on a CUDA GPU (random bf16 weights)

Greedy decoding of random prompts (32 tokens) at batch 1 and batch 32, new tokens/s; all of them generate exactly
``--new_tokens`` tokens (EOS ignored) so the work is the same. The baseline runs transformers' ``generate`` on the
same weights (gpu side). Prints one JSON object.
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
    args = parser.parse_args()
    import torch

    from tests.conftest import write_hf_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    hf = write_hf_checkpoint(work / "hf", PRESETS[args.preset], seed=0)
    rng = np.random.default_rng(0)
    config = GenerationConfig(max_new_tokens=args.new_tokens, eos_token_id=-1)
    report: dict = {"preset": args.preset, "prompt_tokens": 32, "new_tokens": args.new_tokens}
    length = 32 + args.new_tokens
    for batch in (1, 32):
        prompts = [[1, *rng.integers(7, PRESETS[args.preset].vocab_size, 31).tolist()] for _ in range(batch)]
        row = {}
        for backend in args.backends.split(","):
            generator = Generator(backend, str(hf), str(TINY_TOKENIZER) if args.preset == "tiny" else None,
                                  max_length=length, max_rows=batch) if args.preset == "tiny" else None
            generator.run(prompts[:1], GenerationConfig(max_new_tokens=2, eos_token_id=-1))  # compile / warm up
            start = time.perf_counter()
            generator.run(prompts, config)
            row[backend] = round(batch * args.new_tokens / (time.perf_counter() - start), 1)
        model = generator.model if "gpu" not in args.backends else Generator("gpu", str(hf), str(TINY_TOKENIZER),
                                                                             max_length=length).model
        ids = torch.tensor(prompts)
        with torch.no_grad():
            model.generate(ids[:1], max_new_tokens=2, do_sample=False)
            start = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
            row["transformers_generate"] = round(batch * args.new_tokens / (time.perf_counter() - start), 1)
        if "gpu" in row:
            row["gpu_over_generate"] = round(row["gpu"] / row["transformers_generate"], 2)
        report[f"batch_{batch}_tokens_per_s"] = row
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
