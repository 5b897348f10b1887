"""Training throughput per backend and device: tokens/s/device and model FLOPs utilisation (MFU).

    python scripts/bench_train.py --steps 30                      # the tiny configs, both backends, on this machine
    python scripts/bench_train.py --backends gpu --peak_tflops 989 # on a CUDA GPU (H100 bf16 dense peak)
    python scripts/bench_train.py --layouts --steps 30              # gpu: 2-process FSDP2/TP/PP vs 1 process

Each backend trains its `tiny_cpu` twin from the same HF init on the same tokenized data; the first steps (graph
compilation, warm-up) are excluded. MFU = (6 * params + 12 * layers * hidden * seq) * tokens/s / peak FLOP/s (the
dense estimate plus attention's score and value products, as PaLM's appendix counts them); without --peak_tflops it
is not reported. ``--layouts`` runs the gpu twin in one process and in
each 2-process layout (torchrun through `mindcode launch`, gloo on a CPU) and prints every layout's tokens/s and its
ratio to the single process: what each layout costs (on a CPU, the price of its communication).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
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
    parser.add_argument("--layouts", action="store_true", help="gpu: 2-process layouts against one process")
    args = parser.parse_args()
    from backends.gpu.model import build_model  # noqa: F401 (torch is needed for the shared init)
    from mindcode.presets import PRESETS
    from tests.conftest import write_hf_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    (work / "c.json").write_text(json.dumps(make_conversations(512)))
    tokenize_dataset("qa", str(work / "c.json"), str(TINY_TOKENIZER), 128, output_file=str(work / "t.mindrecord"),
                     torch_output=str(work / "npy"), progress=False)
    write_hf_checkpoint(work / "init", PRESETS["tiny"])
    shape = PRESETS["tiny"]
    params = shape.num_params()
    flops_per_token = 6 * params + 12 * shape.num_layers * shape.hidden_size * 128  # rows of 128 tokens
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
            entry["mfu"] = round(flops_per_token * tokens_per_s / (args.peak_tflops * 1e12), 6)
        report[backend] = entry
    if args.layouts:
        report["layouts"] = layouts(work, args)
    if "gpu" in report and "ascend" in report:
        report["ascend_over_gpu"] = round(report["ascend"]["tokens_per_s"] / report["gpu"]["tokens_per_s"], 3)
    print(json.dumps(report))
    return 0


LAYOUTS = {
    "fsdp2 (dp2)": ["parallel_config.data_parallel=2", "torch.distributed=fsdp"],
    "ddp (dp2)": ["parallel_config.data_parallel=2", "torch.distributed=ddp"],
    "tensor (mp2)": ["parallel_config.model_parallel=2"],
    "tensor+sequence (mp2)": ["parallel_config.model_parallel=2", "parallel_config.use_seq_parallel=true"],
    "pipeline 1f1b (pp2, 2 micro)": ["parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2"],
}


def mean_tokens_per_s(run: Path, warmup: int) -> float:
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")][warmup:]
    return sum(r["tokens_per_s"] for r in rows) / len(rows)


def layouts(work: Path, args: argparse.Namespace) -> dict:
    base = [f"data.npy={work / 'npy'}", f"data.mindrecord={work / 't.mindrecord'}", f"training.init={work / 'init'}",
            f"training.max_steps={args.steps}", "training.save_steps=0"]
    single = mean_tokens_per_s(work / "gpu", args.warmup) if (work / "gpu").exists() else None
    if single is None:
        train(load_config(ROOT / "configs/gpu/tiny_cpu.yaml", [*base, f"training.output_dir={work / 'gpu'}"]),
              progress=False)
        single = mean_tokens_per_s(work / "gpu", args.warmup)
    result = {"1 process": {"tokens_per_s": round(single, 1), "ratio": 1.0}}
    for name, extra in LAYOUTS.items():
        out = work / name.split()[0]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([sys.executable, "-m", "mindcode", "launch", "--nproc_per_node", "2", "--master_port",
                        str(port), "--log_dir", str(out) + "_logs", "--", "train", "--config",
                        "configs/gpu/tiny_cpu.yaml", *base, *extra, f"training.output_dir={out}"],
                       cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHON": sys.executable})
        value = mean_tokens_per_s(out, args.warmup)
        result[name] = {"tokens_per_s": round(value, 1), "ratio": round(value / single, 3)}
    return result


if __name__ == "__main__":
    sys.exit(main())
