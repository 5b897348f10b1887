"""Training throughput per backend and device: tokens/s/device and model FLOPs utilisation (MFU).

    python scripts/bench_train.py --steps 30                      # the tiny configs, both backends, on this machine
    python scripts/bench_train.py --backends gpu --peak_tflops 989 # on a CUDA GPU (H100 bf16 dense peak)

Each backend trains its `tiny_cpu` twin from the same HF init on the same tokenized data; the first steps (graph
compilation, warm-up) are excluded. MFU = 6 * params * tokens/s / peak FLOP/s (the usual dense estimate, attention
FLOPs left out); without --peak_tflops it is not reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.config import load_config  # noqa: E402
from mindcode.data.build import tokenize_dataset  # noqa: E402
from mindcode.tokenizer import TINY_TOKENIZER  # noqa: E402
from mindcode.train.loop import train  # noqa: E402
from scripts.bench_data import make_conversations  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the average")
    parser.add_argument("--backends", default="gpu,ascend")
    parser.add_argument("--peak_tflops", type=float, help="the device's peak dense FLOP/s in TFLOP/s, for MFU")
    args = parser.parse_args()
    from backends.gpu.model import build_model  # noqa: F401 (torch is needed for the shared init)
    from mindcode.presets import PRESETS
    from tests.conftest import write_hf_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    (work / "c.json").write_text(json.dumps(make_conversations(512)))
    tokenize_dataset("qa", str(work / "c.json"), str(TINY_TOKENIZER), 128, output_file=str(work / "t.mindrecord"),
                     torch_output=str(work / "npy"), progress=False)
    write_hf_checkpoint(work / "init", PRESETS["tiny"])
    params = PRESETS["tiny"].num_params()
    report = {"model": "tiny", "params": params, "seq_length": 128, "batch_size": 4, "steps": args.steps}
    for backend in args.backends.split(","):
        config = load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml", [
            f"data.mindrecord={work / 't.mindrecord'}", f"data.npy={work / 'npy'}", f"training.init={work / 'init'}",
            f"training.output_dir={work / backend}", f"training.max_steps={args.steps}", "training.save_steps=0"])
        summary = train(config, progress=False)
        rows = [json.loads(line) for line in open(work / backend / "metrics.jsonl")][args.warmup:]
        tokens_per_s = sum(r["tokens_per_s"] for r in rows) / len(rows)
        entry = {"device": summary["device"], "tokens_per_s": round(tokens_per_s, 1),
                 "step_time_s": round(sum(r["step_time_s"] for r in rows) / len(rows), 4)}
        if args.peak_tflops:
            entry["mfu"] = round(6 * params * tokens_per_s / (args.peak_tflops * 1e12), 6)
        report[backend] = entry
    if "gpu" in report and "ascend" in report:
        report["ascend_over_gpu"] = round(report["ascend"]["tokens_per_s"] / report["gpu"]["tokens_per_s"], 3)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
