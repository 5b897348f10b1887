"""``mindcode predict``: generate completions on either backend; ``predict humaneval`` writes HumanEval samples.

    mindcode predict --config configs/gpu/tiny_cpu.yaml --checkpoint HF_DIR --tokenizer tokenizer.model \\
        --input prompts.jsonl --output out.jsonl --max_new_tokens 64
    mindcode predict humaneval --config configs/ascend/tiny_cpu.yaml --checkpoint model.ckpt \\
        --tokenizer tokenizer.model --n_samples 1 --limit 20 --output samples.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from backends import BACKENDS, get_backend
from mindcode.terminal import interactive
from mindcode.data.io import read_records, write_jsonl
from mindcode.errors import MindcodeError
from mindcode.eval import tasks
from mindcode.eval.langs import LANGUAGES
from mindcode.predict.decode import GenerationConfig
from mindcode.predict.run import AUTO_TEMPLATE, Generator, predict_rows
from mindcode.tokenizer import tokenizer_file

HELP = "generate completions (greedy, sampling, beam search) on either backend; 'humaneval' for samples"


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", choices=["humaneval", "humanevalfix", "humanevalexplain"],
                        help="humaneval: sample the bundled (or --problem_file) problems; humanevalfix: fixes; "
                             "humanevalexplain: descriptions, or with --descriptions the code written from them")
    parser.add_argument("--config", help="a training config (its backend and model shape); not needed with --backend "
                                         "and an HF checkpoint directory (its config.json has the shape)")
    parser.add_argument("--backend", choices=list(BACKENDS), help="override the config's backend")
    parser.add_argument("--checkpoint", required=True, help="HF directory or MindSpore .ckpt (either backend)")
    parser.add_argument("--tokenizer", help=TOKENIZER_HELP)
    parser.add_argument("--input", help='JSONL of {"id", "prompt"}; with --chat, "messages" or a TRL prompt (a '
                        'message list, or a string as the user turn), so DPO pairs feed it directly')
    parser.add_argument("--output", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--do_sample", type=_bool, default=False)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=0)
    parser.add_argument("--num_beams", type=int, default=1)
    parser.add_argument("--num_return_sequences", type=int, default=1)
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--stop", nargs="*", default=[], help="stop sequences (the completion is cut before them)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chat", action="store_true", help="inputs carry messages, rendered with --template")
    parser.add_argument("--template", default=AUTO_TEMPLATE,
                        help="--chat's template: a FastChat name, hf (the tokenizer's own chat_template), or auto "
                             "(default: llama-2, CodeLlama-Instruct's, with a sentencepiece tokenizer; hf with an HF one)")
    parser.add_argument("--max_length", type=int, default=0,
                        help="prompt + new tokens the model is built for (default: each batch's longest prompt + "
                             "--max_new_tokens, rounded up to a power of two, at least 256)")
    parser.add_argument("--n_samples", type=int, default=1, help="humaneval: samples per task")
    parser.add_argument("--limit", type=int, default=0, help="humaneval: only the first K tasks")
    parser.add_argument("--language", choices=list(LANGUAGES), default="python",
                        help="humaneval: the problems' language (bigcode's prompts, stop words and truncation)")
    parser.add_argument("--problem_file", help="humaneval: HumanEvalPack JSONL (needed but for python)")
    parser.add_argument("--descriptions", help='humanevalexplain: {"task_id", "description"} JSONL written by its '
                                               "first run; the second writes the code (eval humanevalexplain)")


TOKENIZER_HELP = ("a sentencepiece tokenizer.model, an HF tokenizer.json, or a directory with either (default: the "
                  "checkpoint's HF directory)")


def check_tokenizer(args: argparse.Namespace) -> None:
    """Without --tokenizer the checkpoint must be an HF directory that carries its tokenizer."""
    path = Path(args.checkpoint)
    if not args.tokenizer and not (path.is_dir() and tokenizer_file(path)):
        raise MindcodeError(f"{path}: no tokenizer.json or tokenizer.model there; give --tokenizer")


def chosen_backend(args: argparse.Namespace) -> str:
    """``--backend``, else the config's; an HF checkpoint directory needs no config, a ``.ckpt`` does."""
    if not args.config:
        if not args.backend:
            raise MindcodeError("give --backend ascend|gpu (or --config, whose backend is used)")
        if not Path(args.checkpoint).is_dir():
            raise MindcodeError(f"{args.checkpoint}: a MindSpore checkpoint needs --config (its model shape)")
        return args.backend
    return args.backend or (yaml.safe_load(open(args.config)) or {}).get("backend", "gpu")


def check_predict_fits(config_path: str, backend: str, world: int, rows: int, max_length: int) -> None:
    """On an accelerator, before any weight is read: stop with one line when `mindcode plan --task predict` says
    ``rows`` sequences of ``max_length`` tokens (0: its 4096-token window) do not fit (the CPU is not checked)."""
    from mindcode.config import load_config
    from mindcode.plan.devices import detect_device
    from mindcode.plan.memory import plan

    device = detect_device(backend)
    if device is None or not str(config_path).endswith((".yaml", ".yml")):
        return
    config = load_config(config_path, [f"parallel_config.model_parallel={world}"], backend=backend)
    result = plan(config, device, world, task="predict", batch=rows, length=max_length or None)
    if not result["fits"]:
        raise MindcodeError(f"{result['advice']} (mindcode plan --config {config_path} --task predict "
                            f"--batch_size {rows} --max_length {result['length']})")


def log_dir(args: argparse.Namespace) -> str:
    return str(Path(args.output).parent)


def run(args: argparse.Namespace) -> dict[str, Any]:
    backend = chosen_backend(args)
    check_tokenizer(args)
    max_length = args.max_length  # 0: sized by the prompts (mindcode.predict.run.length_bucket)
    problems: list[dict[str, Any]] = []
    if args.task:
        problems = task_problems(args)
        task = tasks.TASKS[(args.task, args.language)]
        rows = explain_rows(args, problems) if args.task == "humanevalexplain" else [
            {"id": p["task_id"], "prompt": task.prompt(p)} for p in problems]
        stop = [*args.stop, *task.stop_words]
    else:
        rows, stop = input_rows(args), list(args.stop)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                              temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              num_beams=args.num_beams,
                              num_return_sequences=args.n_samples if args.task else args.num_return_sequences,
                              repetition_penalty=args.repetition_penalty, seed=args.seed, stop=stop)
    # under the launcher (`mindcode launch --nproc_per_node N -- predict ...`): the model split over all N processes
    # (model_parallel N: torchrun's tensor parallel, msrun's MindFormers model parallel), every rank decoding the same
    # tokens; rank 0 writes them
    rank, world = get_backend(backend).init_distributed()
    max_rows = args.batch_size * max(args.num_beams, config.num_return_sequences)
    if args.config:
        check_predict_fits(args.config, backend, world, max_rows, max_length)
    generator = Generator(backend, args.checkpoint, args.tokenizer, args.config, max_length, max_rows=max_rows,
                          tensor_parallel=world, work_dir=log_dir(args))
    out = predict_rows(generator, rows, config, args.batch_size, args.chat, args.template, interactive())
    if args.task:
        out = task_samples(args, problems, out)
    if rank == 0:  # every rank decoded the same tokens
        write_jsonl(args.output, out)
    return {"backend": backend, "output": args.output, **generator.stats}


def task_problems(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The problems of ``--language`` a HumanEval task samples (``--limit`` of them)."""
    from mindcode.eval.humaneval import default_problem_file, read_problems

    pack_only = args.task != "humaneval"  # HumanEvalPack's fields needed
    if not args.problem_file and (pack_only or args.language != "python"):
        raise MindcodeError(f"{args.task} --language {args.language} needs --problem_file (HumanEvalPack JSONL)")
    if args.n_samples > 1 and not args.do_sample:
        raise MindcodeError("--n_samples > 1 needs --do_sample true")
    problems = [p for p in read_problems(args.problem_file or default_problem_file(), pack_only).values()
                if p["language"] == args.language]
    if not problems:
        raise MindcodeError(f"{args.problem_file}: no {args.language} problems")
    return problems[: args.limit] if args.limit else problems


def input_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--input``'s rows, each with an ``id`` and a ``prompt`` (or ``messages`` with ``--chat``)."""
    if not args.input:
        raise MindcodeError("give --input prompts.jsonl (or the humaneval task)")
    rows = [r.data for r in read_records(args.input)]
    keys = ("messages", "prompt") if args.chat else ("prompt",)
    for i, row in enumerate(rows):
        if "id" not in row or not any(k in row for k in keys):
            raise MindcodeError(f"{args.input}: record {i}: needs 'id' and '{' or '.join(keys)}'")
    return rows


def task_samples(args: argparse.Namespace, problems: list[dict[str, Any]], out: list[dict]) -> list[dict]:
    """The generations as ``eval``'s samples: completions cut where the harness cuts them, or (HumanEvalExplain's
    first half) descriptions."""
    samples = []
    by_id = {p["task_id"]: p for p in problems}
    for row in out:
        task_id = row["id"].split("#")[0]  # explain's second half numbers each description: TASK#N
        for text in row.get("completions", [row.get("completion")]):
            if args.task == "humanevalexplain" and not args.descriptions:
                samples.append({"task_id": task_id, "description": tasks.clean_description(by_id[task_id], text)})
            else:
                samples.append({"task_id": task_id, "completion": tasks.cut(args.language, text)})
    return samples


def explain_rows(args: argparse.Namespace, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """HumanEvalExplain's prompts: describe each function; or, given the descriptions, write code from each."""
    if not args.descriptions:
        for p in problems:
            if not isinstance(p.get("canonical_solution"), str):
                raise MindcodeError(f"{args.problem_file}: {p['task_id']}: no 'canonical_solution' to describe")
        describe = tasks.TASKS[(args.task, args.language)].prompt
        return [{"id": p["task_id"], "prompt": describe(p)} for p in problems]
    by_id = {p["task_id"]: p for p in problems}
    rows = []
    for number, record in enumerate(read_records(args.descriptions)):
        task_id, text = record.data.get("task_id"), record.data.get("description")
        if task_id not in by_id or not isinstance(text, str):
            raise MindcodeError(f"{args.descriptions}: record {number}: needs a known 'task_id' and a 'description'")
        rows.append({"id": f"{task_id}#{number}", "prompt": tasks.synthesize_prompt(by_id[task_id], text)})
    return rows


def summary(result: dict[str, Any]) -> str:
    return (f"[{result['backend']}] {result['prompts']} prompts, {result['new_tokens']} new tokens in "
            f"{result['seconds']} s ({result['tokens_per_s']} tokens/s) -> {result['output']}")
