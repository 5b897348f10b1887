"""Training throughput per backend and device: tokens/s/device and model FLOPs utilisation (MFU), next to
transformers' ``Trainer`` on the same model, rows and settings.

    python scripts/bench_train.py --steps 30                                   # tiny, both backends, this machine
    python scripts/bench_train.py --preset codellama-7b --backends gpu --modes lora --seq_length 4096 \
        --batch_size 1 --peak_tflops 989                                       # one H100 (bf16 dense peak)
    python scripts/bench_train.py --layouts --steps 30                          # gpu: 2-process layouts vs 1 process

For ``--preset P`` the weights are random (``float32`` for tiny, else ``bfloat16``), written once as an HF directory
that both backends and the baseline load; the rows are random token ids (no padding: every token is trained), the
same rows for every run. Each backend runs its shipped config of that model in one process: the full fine-tune
(``tiny_cpu``, ``codellama_7b_finetune``, ...) and LoRA (``lora_tiny_cpu``, ``codellama_7b_lora``, ...), with the
layout set to one device, no accumulation, ``--batch_size`` rows of ``--seq_length`` tokens. The baseline is
transformers' ``Trainer`` (``--no-hf_trainer`` leaves it out; the gpu backend's device) with the config's precision,
gradient checkpointing, learning rate and schedule, fused AdamW on CUDA, and PEFT's LoRA for the LoRA run. A full
7B fine-tune in one process holds float32 weights, gradients and AdamW moments (``mindcode plan``: 117.5 GiB): on
one H100 run ``--modes lora``, the full run on an H200. The first
``--warmup`` steps (compilation, allocator warm-up) are left out.

MFU = (6 * params + 12 * layers * hidden * seq) * tokens/s / peak FLOP/s (the dense estimate plus attention's score
and value products, as PaLM's appendix counts them), the same count for LoRA, whose frozen base computes no weight
gradients (about a third less work). Without --peak_tflops it is not reported. ``--layouts`` runs the gpu twin of
``tiny_cpu`` in one process and in each 2-process layout (torchrun through `mindcode launch`, gloo on a CPU) and
prints every layout's tokens/s and its ratio to the single process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.config import load_config  # noqa: E402
from mindcode.data.build import COLUMNS, Outputs  # noqa: E402
from mindcode.presets import PRESETS  # noqa: E402
from mindcode.train.loop import train  # noqa: E402

# the shipped configs of each preset: full fine-tune, LoRA
CONFIGS = {"tiny": ("tiny_cpu", "lora_tiny_cpu"), "codellama-7b": ("codellama_7b_finetune", "codellama_7b_lora"),
           "deepseek-coder-6.7b": ("deepseek_coder_6_7b_finetune", "deepseek_coder_6_7b_lora"),
           "qwen2.5-coder-7b": ("qwen2_5_coder_7b_finetune", "qwen2_5_coder_7b_lora")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(CONFIGS))
    parser.add_argument("--seq_length", type=int, help="tokens a row (default: 128 for tiny, else 4096)")
    parser.add_argument("--batch_size", type=int, help="rows a step (default: 4 for tiny, else 1)")
    parser.add_argument("--modes", default="full,lora", help="full fine-tune and/or LoRA: full, lora or full,lora")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the average")
    parser.add_argument("--backends", default="gpu,ascend")
    parser.add_argument("--hf_trainer", action=argparse.BooleanOptionalAction, default=True,
                        help="transformers' Trainer on the same model and rows (on the gpu backend's device)")
    parser.add_argument("--peak_tflops", type=float, help="the device's peak dense FLOP/s in TFLOP/s, for MFU")
    parser.add_argument("--layouts", action="store_true", help="gpu: 2-process layouts against one process")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= {"full", "lora"}:
        parser.error(f"--modes {args.modes}: full, lora or full,lora")
    from tests.conftest import write_hf_checkpoint

    tiny = args.preset == "tiny"
    shape = PRESETS[args.preset]
    length = args.seq_length or (128 if tiny else 4096)
    batch = args.batch_size or (4 if tiny else 1)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    write_hf_checkpoint(work / "init", shape, seed=0, dtype="float32" if tiny else "bfloat16")
    rows = random_rows(work, shape.vocab_size, length, batch * (args.steps + 1), "ascend" in args.backends)
    flops_per_token = 6 * shape.num_params() + 12 * shape.num_layers * shape.hidden_size * length
    report: dict = {"preset": args.preset, "params": shape.num_params(), "seq_length": length, "batch_size": batch,
                    "steps": args.steps}
    for mode in modes:
        entry = report.setdefault(mode, {})
        for backend in args.backends.split(","):
            config = one_device_config(backend, CONFIGS[args.preset][mode == "lora"], work, length, batch, args.steps)
            summary = train(config, progress=False)
            entry[backend] = measured(mean_step(work / backend / "metrics.jsonl", args.warmup), batch * length,
                                      flops_per_token, args.peak_tflops, device=summary["device"])
        if args.hf_trainer:
            config = one_device_config("gpu", CONFIGS[args.preset][mode == "lora"], work, length, batch, args.steps)
            step, device = hf_trainer_step(config, work / "init", rows, args.steps, args.warmup)
            entry["hf_trainer"] = measured(step, batch * length, flops_per_token, args.peak_tflops, device=device)
            if "gpu" in entry:
                ratio = entry["gpu"]["tokens_per_s"] / entry["hf_trainer"]["tokens_per_s"]
                entry["gpu_over_hf_trainer"] = round(ratio, 3)
        if "gpu" in entry and "ascend" in entry:
            entry["ascend_over_gpu"] = round(entry["ascend"]["tokens_per_s"] / entry["gpu"]["tokens_per_s"], 3)
    if args.layouts:
        report["layouts"] = layouts(work, args)
    print(json.dumps(report))
    return 0


def random_rows(work: Path, vocab: int, length: int, count: int, mindrecord: bool) -> np.ndarray:
    """``count`` rows of ``length + 1`` random token ids (no padding, every position trained) as the backends' data
    (``npy/``, and ``t.mindrecord`` for ascend); the rows returned for the baseline."""
    ids = np.random.default_rng(0).integers(7, vocab, size=(count, length + 1)).astype(np.int32)
    outputs = Outputs(str(work / "t.mindrecord") if mindrecord else None, str(work / "npy"), COLUMNS["qa"],
                      length + 1, "qa")
    outputs.write(input_ids=ids, labels=ids)
    outputs.commit()
    return ids


def one_device_config(backend: str, name: str, work: Path, length: int, batch: int, steps: int):
    """The shipped config on one device: no accumulation, no checkpoints, the bench's rows and init."""
    extra = ["mindformers.enable_parallel_optimizer=false"] if backend == "ascend" else []
    return load_config(ROOT / f"configs/{backend}/{name}.yaml", [
        f"data.mindrecord={work / 't.mindrecord'}", f"data.npy={work / 'npy'}", f"training.init={work / 'init'}",
        f"training.output_dir={work / backend}", f"training.max_steps={steps}", "training.save_steps=0",
        f"training.batch_size={batch}", "training.gradient_accumulation_steps=1",
        f"model.model_config.seq_length={length}",
        "parallel_config.data_parallel=1", "parallel_config.model_parallel=1", "parallel_config.pipeline_stage=1",
        "parallel_config.use_seq_parallel=false", "parallel_config.micro_batch_num=1", *extra])


def mean_step(metrics: Path, warmup: int) -> float:
    steps = [json.loads(line)["step_time_s"] for line in open(metrics)][warmup:]
    return sum(steps) / len(steps)


def measured(step_time: float, tokens: int, flops_per_token: int, peak_tflops: float | None, device: str) -> dict:
    entry = {"device": device, "tokens_per_s": round(tokens / step_time, 1), "step_time_s": round(step_time, 4)}
    if peak_tflops:
        entry["mfu"] = round(flops_per_token * tokens / step_time / (peak_tflops * 1e12), 6)
    return entry


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
    if args.preset != "tiny":
        raise SystemExit("--layouts runs the tiny model (2 processes on this host)")
    base = [f"data.npy={work / 'npy'}", f"data.mindrecord={work / 't.mindrecord'}", f"training.init={work / 'init'}",
            f"training.max_steps={args.steps}", "training.save_steps=0"]
    train(load_config(ROOT / "configs/gpu/tiny_cpu.yaml", [*base, f"training.output_dir={work / 'single'}"]),
          progress=False)
    single = mean_tokens_per_s(work / "single", args.warmup)
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


def hf_trainer_step(config, init: Path, rows: np.ndarray, steps: int, warmup: int) -> tuple[float, str]:
    """transformers' ``Trainer`` on the init (PEFT's LoRA for a LoRA config, its frozen base in bf16 as mindcode keeps
    it), the same rows (in the ``Trainer``'s own shuffled order), the config's batch, precision, gradient checkpointing
    and optimizer settings: its mean step time after ``warmup``, the device."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from backends.gpu.parallel import local_device

    device = local_device()
    cuda = device.type == "cuda"
    t, o, s, section = config.training, config.optimizer, config.schedule, config.torch
    bf16 = cuda and section.precision == "bf16"
    base_dtype = torch.bfloat16 if bf16 and config.lora is not None else torch.float32  # LoRA trains fp32 adapters
    model = AutoModelForCausalLM.from_pretrained(init, torch_dtype=base_dtype, attn_implementation="sdpa")
    if config.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(model, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    length = rows.shape[1] - 1
    dataset = [{"input_ids": torch.tensor(r[:length], dtype=torch.long),
                "labels": torch.tensor(r[:length], dtype=torch.long)} for r in rows]
    timer = StepTimer()
    arguments = TrainingArguments(
        output_dir=str(init.parent / "hf_trainer"), per_device_train_batch_size=t.batch_size, max_steps=steps,
        learning_rate=s.learning_rate, weight_decay=o.weight_decay, adam_beta1=o.betas[0], adam_beta2=o.betas[1],
        adam_epsilon=o.eps, max_grad_norm=t.max_grad_norm, lr_scheduler_type="cosine", warmup_steps=s.warmup_steps,
        bf16=bf16, gradient_checkpointing=section.gradient_checkpointing,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        save_strategy="no", logging_strategy="no", report_to=[], dataloader_num_workers=0, seed=t.seed,
        use_cpu=not cuda, disable_tqdm=True)
    with contextlib.redirect_stdout(sys.stderr):  # its end-of-run metrics: this script's stdout is the report
        Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[timer]).train()
    return float(np.mean(np.diff(timer.marks)[max(0, warmup - 1):])), str(device)


class StepTimer:
    """A transformers ``Trainer`` callback: the time at each step's end (every other event does nothing)."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_step_end(self, *args, **kwargs) -> None:
        self.marks.append(time.perf_counter())

    def __getattr__(self, name: str):
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


if __name__ == "__main__":
    sys.exit(main())
