"""``mindcode quickstart``: the whole pipeline on the embedded tiny default, both backends, one report.

data -> convert -> tokenize (MindRecord + .npy) -> one random HF init -> train on gpu (PyTorch) and ascend
(MindSpore + MindFormers) -> convert the ascend checkpoint back to HF -> greedy generation on both (HumanEval and a
Java -> C# set) -> HumanEval pass@1 and BLEU -> parity checks -> report.md / report.html.

Each step writes into its own folder ``RUN_DIR/NN_name/`` and a ``result.json``; a re-run skips finished steps
unless ``--force``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends import BACKENDS
from mindcode.data.io import write_json_array, write_jsonl
from mindcode.errors import MindcodeError
from mindcode.terminal import say
from mindcode.quickstart import dataset
from mindcode.tokenizer import TINY_TOKENIZER

ROOT = Path(__file__).resolve().parents[2]
SEQ_LENGTH = 256
STEPS = 300
HUMANEVAL_TASKS = 16
TRANSLATION_TEST = 24
GEN_LENGTH = 512  # the tiny model's positions


@dataclass
class Context:
    run_dir: Path
    backends: list[str]
    force: bool = False
    progress: bool = True
    results: dict[str, Any] = field(default_factory=dict)

    def dir(self, step: str) -> Path:
        return self.run_dir / step


# ------------------------------------------------------------------------------------------------------- steps


def step_data(ctx: Context, out: Path) -> dict[str, Any]:
    write_json_array(out / "code_alpaca.json", dataset.alpaca_rows())
    rows = dataset.translation_rows(120 + TRANSLATION_TEST)
    write_jsonl(out / "java_cs_train.jsonl", rows[:120])
    write_jsonl(out / "java_cs_test.jsonl", rows[120:])
    return {"alpaca": 360, "translation_train": 120, "translation_test": TRANSLATION_TEST}


def step_convert(ctx: Context, out: Path) -> dict[str, Any]:
    import argparse

    from mindcode.data import converters

    data = ctx.dir("01_data")
    alpaca = converters.run(converters.alpaca.make(argparse.Namespace()), str(data / "code_alpaca.json"),
                            str(out / "train_alpaca.json"), progress=False)
    parser = argparse.ArgumentParser()  # the converter's own options, as `mindcode data translation` parses them
    converters.translation.add_arguments(parser)
    trans_args = parser.parse_args(["--source", "codexglue-trans", "--direction", "java-cs"])
    trans = converters.run(converters.translation.make(trans_args), str(data / "java_cs_train.jsonl"),
                           str(out / "train_java_cs.jsonl"), progress=False)
    test = converters.run(converters.translation.make(trans_args), str(data / "java_cs_test.jsonl"),
                          str(out / "test_java_cs.jsonl"), progress=False)
    return {"alpaca": alpaca["written"], "translation": trans["written"], "translation_test": test["written"]}


def step_tokenize(ctx: Context, out: Path) -> dict[str, Any]:
    from mindcode.data.build import tokenize_dataset

    return tokenize_dataset("qa", str(ctx.dir("02_convert") / "train_*"), str(TINY_TOKENIZER), SEQ_LENGTH,
                            output_file=str(out / "train.mindrecord"), torch_output=str(out / "train_npy"),
                            progress=ctx.progress)


def step_init(ctx: Context, out: Path) -> dict[str, Any]:
    import torch
    import transformers

    from mindcode.presets import PRESETS

    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**PRESETS["tiny"].to_hf_config()))
    model.save_pretrained(str(out / "hf"), safe_serialization=True)
    return {"params": PRESETS["tiny"].num_params(), "checkpoint": str(out / "hf")}


def _train(ctx: Context, out: Path, backend: str) -> dict[str, Any]:
    from mindcode.config import load_config
    from mindcode.train.loop import train

    tok = ctx.dir("03_tokenize")
    config = load_config(ROOT / "configs" / backend / "tiny_cpu.yaml", [
        f"model.model_config.seq_length={SEQ_LENGTH}", f"data.mindrecord={tok / 'train.mindrecord'}",
        f"data.npy={tok / 'train_npy'}", f"training.init={ctx.dir('04_init') / 'hf'}",
        f"training.output_dir={out}", f"training.max_steps={STEPS}", "training.batch_size=8",
        "training.save_steps=0", "schedule.warmup_steps=5"])
    return train(config, progress=ctx.progress)


def step_train_gpu(ctx: Context, out: Path) -> dict[str, Any]:
    return _train(ctx, out, "gpu")


def step_train_ascend(ctx: Context, out: Path) -> dict[str, Any]:
    return _train(ctx, out, "ascend")


def step_convert_back(ctx: Context, out: Path) -> dict[str, Any]:
    from mindcode.convert.ms_to_hf import convert_ms_to_hf

    return convert_ms_to_hf(ctx.dir("06_train_ascend") / "final" / "model.ckpt", out / "hf", "tiny", verify=True,
                            progress=False)


def _checkpoints(ctx: Context) -> dict[str, str]:
    return {"gpu": str(ctx.dir("05_train_gpu") / "final"),
            "ascend": str(ctx.dir("06_train_ascend") / "final" / "model.ckpt")}


def step_generate(ctx: Context, out: Path) -> dict[str, Any]:
    from mindcode.data.io import read_records
    from mindcode.eval.humaneval import default_problem_file, read_problems
    from mindcode.predict.decode import GenerationConfig
    from mindcode.eval.tasks import TASKS
    from mindcode.predict.run import Generator, predict_rows

    checkpoints, summary = _checkpoints(ctx), {}
    for backend in ctx.backends:
        generator = Generator(backend, checkpoints[backend], str(TINY_TOKENIZER), config="tiny",
                              max_length=GEN_LENGTH, max_rows=8)
        problems = [p for p in read_problems(default_problem_file()).values()
                    if len(generator.encode(p["prompt"].strip())) <= GEN_LENGTH - 48][:HUMANEVAL_TASKS]
        rows = [{"id": p["task_id"], "prompt": p["prompt"].strip()} for p in problems]
        config = GenerationConfig(max_new_tokens=48, stop=list(TASKS[("humaneval", "python")].stop_words))
        samples = predict_rows(generator, rows, config, batch_size=8, progress=ctx.progress)
        write_jsonl(out / f"humaneval_{backend}.jsonl",
                    [{"task_id": s["id"], "completion": s["completion"]} for s in samples])
        he_stats = generator.stats
        tests = [r.data for r in read_records(ctx.dir("02_convert") / "test_java_cs.jsonl")]
        rows = [{"id": t["id"], "messages": t["messages"][:1]} for t in tests]
        preds = predict_rows(generator, rows, GenerationConfig(max_new_tokens=64), batch_size=8, chat=True,
                             template="vicuna_v1.1", progress=ctx.progress)
        write_jsonl(out / f"translation_{backend}.jsonl", preds)
        summary[backend] = {"humaneval": he_stats, "translation": generator.stats}
    write_jsonl(out / "translation_references.jsonl",
                [{"id": t["id"], "target": t["messages"][1]["content"], "source_lang": t["source_lang"],
                  "target_lang": t["target_lang"]} for t in tests])
    return summary


def step_evaluate(ctx: Context, out: Path) -> dict[str, Any]:
    from mindcode.eval import bleu, humaneval, texts

    gen, summary = ctx.dir("08_generate"), {}
    for backend in ctx.backends:
        he = humaneval.evaluate(str(gen / f"humaneval_{backend}.jsonl"), [1], progress=False)
        matched = texts.pair(str(gen / f"translation_{backend}.jsonl"), str(gen / "translation_references.jsonl"))
        scores = bleu.score([bleu.extract_code(p) for p, _, _ in matched],
                            [[bleu.extract_code(r) for r in refs] for _, refs, _ in matched])
        summary[backend] = {"pass@1": he["pass@1"], "humaneval_tasks": he["tasks_attempted"],
                            "humaneval_outcomes": he["outcomes"], "sandbox": he["protections"], **scores}
    return summary


def step_parity(ctx: Context, out: Path) -> dict[str, Any]:
    from backends import get_backend
    from mindcode.presets import PRESETS

    result: dict[str, Any] = {}
    curves = {b: [json.loads(line)["loss"] for line in open(ctx.dir(f"0{5 if b == 'gpu' else 6}_train_{b}") /
                                                            "metrics.jsonl")] for b in ctx.backends}
    if len(curves) == 2:
        diffs = [abs(a - g) / abs(g) for a, g in zip(curves["ascend"], curves["gpu"])]
        result["loss_max_rel_diff"] = max(diffs)
        result["loss_mean_rel_diff"] = float(np.mean(diffs))
        # The same (ascend-trained) weights in both frameworks: MindFormers on its .ckpt, transformers on its HF copy.
        rng = np.random.default_rng(0)
        ids = rng.integers(7, 1024, size=(4, 64), dtype=np.int32)
        gpu, ascend = get_backend("gpu"), get_backend("ascend")
        a = ascend.forward(ascend.build_model(PRESETS["tiny"], 64, _checkpoints(ctx)["ascend"]), ids)
        g = gpu.forward(gpu.build_model(PRESETS["tiny"], 64, ctx.dir("07_convert_back") / "hf"), ids)
        result["logits_rel_error_same_weights"] = float(np.max(np.abs(a - g)) / np.max(np.abs(g)))
        result["argmax_agreement"] = float((a.argmax(-1) == g.argmax(-1)).mean())
        gen = ctx.dir("08_generate")
        for task in ("humaneval", "translation"):
            rows = {b: [json.loads(line) for line in open(gen / f"{task}_{b}.jsonl")] for b in ctx.backends}
            same = [x.get("completion") == y.get("completion") for x, y in zip(rows["gpu"], rows["ascend"])]
            result[f"{task}_identical_generations"] = f"{sum(same)}/{len(same)}"
    return result


STEPS_TABLE = [
    ("01_data", "write the embedded datasets", step_data),
    ("02_convert", "convert to conversations and chat messages", step_convert),
    ("03_tokenize", "tokenize to MindRecord and .npy", step_tokenize),
    ("04_init", "one random HF initialisation for both backends", step_init),
    ("05_train_gpu", "fine-tune on gpu (PyTorch)", step_train_gpu),
    ("06_train_ascend", "fine-tune on ascend (MindSpore + MindFormers)", step_train_ascend),
    ("07_convert_back", "convert the ascend checkpoint to HF", step_convert_back),
    ("08_generate", "greedy generation on both backends", step_generate),
    ("09_evaluate", "HumanEval pass@1 and BLEU", step_evaluate),
    ("10_parity", "compare the backends", step_parity),
]


def run_quickstart(run_dir: str | Path, backends: list[str], force: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    from mindcode.quickstart.report import write_report

    for backend in backends:
        if backend not in BACKENDS:
            raise MindcodeError(f"--backends: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    ctx = Context(Path(run_dir), backends, force, progress)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for number, (name, what, fn) in enumerate(STEPS_TABLE, 1):
        out = ctx.dir(name)
        marker = out / "result.json"
        needs = {"05_train_gpu": "gpu", "06_train_ascend": "ascend", "07_convert_back": "ascend"}.get(name)
        if needs and needs not in backends:
            say(f"== [{number}/{len(STEPS_TABLE)}] {name}: skipped (backend {needs} not selected)")
            continue
        if marker.exists() and not force:
            ctx.results[name] = json.loads(marker.read_text())
            timings[name] = ctx.results[name].get("_seconds", 0.0)
            say(f"== [{number}/{len(STEPS_TABLE)}] {name}: done earlier (--force to redo)")
            continue
        say(f"== [{number}/{len(STEPS_TABLE)}] {name}: {what}")
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        result = fn(ctx, out)
        seconds = round(time.perf_counter() - start, 2)
        result["_seconds"] = seconds
        marker.write_text(json.dumps(result, indent=2, default=str) + "\n")
        ctx.results[name] = result
        timings[name] = seconds
        say(f"   {seconds:.1f} s")
    report = write_report(ctx.run_dir)
    return {"run_dir": str(ctx.run_dir), "backends": backends, "timings_s": timings, **report}
