"""``mindcode data <step>``: dataset converters, tokenization to MindRecord/.npy, validation and inspection.

    mindcode data alpaca --data_path code_alpaca.json --output_path alpaca_conv.json
    mindcode data tokenize --dataset_type qa --input_glob alpaca_conv.json --model_file tokenizer.model \\
        --seq_length 2048 --output_file train.mindrecord --torch_output train_npy
    mindcode data validate --input pairs.jsonl
    mindcode data inspect --input train.mindrecord --model_file tokenizer.model --index 3
"""

from __future__ import annotations

import argparse
from typing import Any

from mindcode.terminal import interactive
from mindcode.commands import add_common_arguments
from mindcode.data import checks, synthetic
from mindcode.data.build import COLUMNS, tokenize_dataset
from mindcode.data import converters
from mindcode.data.converters import CONVERTERS, dpo
from mindcode.errors import MindcodeError

HELP = "convert, tokenize, validate and inspect datasets"
NESTED = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    for name, module in CONVERTERS.items():
        sub = steps.add_parser(name, help=module.HELP, description=module.__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "oss-instruct":  # `oss-instruct generate` asks an endpoint instead of converting rows
            sub.add_argument("action", nargs="?", choices=["generate"])
            _endpoint_arguments(sub)
            sub.add_argument("--seeds", help="generate: JSONL of {seed (code), lang?}")
        _io_arguments(sub, data_required=name != "oss-instruct")
        module.add_arguments(sub)
    sub = steps.add_parser("magpie", help="Magpie-style instructions and answers from an endpoint")
    sub.add_argument("action", choices=["generate"])
    _endpoint_arguments(sub)
    sub.add_argument("--n", type=int, required=True, help="rows to generate")
    sub.add_argument("--template", default="llama-2", help="the served model's FastChat chat template")
    sub.add_argument("--output_path", required=True)
    sub = steps.add_parser("dpo-attach", help="attach rejected answers from a predictions JSONL to DPO pairs")
    _io_arguments(sub)
    dpo.add_attach_arguments(sub)

    sub = steps.add_parser("tokenize", help="tokenize to MindRecord and/or .npy (MindFormers' flag names)")
    sub.add_argument("--dataset_type", choices=list(COLUMNS), required=True,
                     help="qa: conversations; wiki: plain text; dpo: {prompt, chosen, rejected} pairs")
    sub.add_argument("--input_glob", required=True, help="input file or glob (.json, .jsonl, .csv, .parquet, .txt)")
    sub.add_argument("--model_file", required=True,
                     help="a sentencepiece tokenizer.model (FastChat templates), an HF tokenizer.json or a model "
                          "directory (--template hf; wiki rows take either)")
    sub.add_argument("--seq_length", type=int, required=True, help="rows hold seq_length + 1 tokens")
    sub.add_argument("--output_file", help="MindRecord file to write (MindFormers)")
    sub.add_argument("--torch_output", help="folder for input_ids.npy / labels.npy (PyTorch)")
    sub.add_argument("--template", default="vicuna_v1.1",
                     help="FastChat conversation template (vicuna_v1.1, llama-2, ...), 'raw' for no template, or "
                          "'hf': the HF tokenizer's own chat_template (trained: the assistant turns)")
    sub.add_argument("--pack", action="store_true", help="pack several conversations into one row")
    sub.add_argument("--text_field", default="text", help="wiki: the field holding the text in JSON/CSV rows")
    sub.add_argument("--on-error", dest="on_error", choices=["fail", "skip"], default="fail")

    sub = steps.add_parser("validate", help="lint records before launch; exits 1 on problems")
    sub.add_argument("--input", required=True, help="file or glob")

    sub = steps.add_parser("inspect", help="decode one tokenized row with its trained spans marked")
    sub.add_argument("--input", required=True, help="a MindRecord file or a folder with input_ids.npy")
    sub.add_argument("--model_file", required=True, help="the tokenizer the rows were made with (tokenizer.model, "
                                                         "tokenizer.json or a model directory)")
    sub.add_argument("--index", type=int, default=0)
    sub.add_argument("--half", choices=["chosen", "rejected"], default="chosen", help="preference data: which answer")
    for sub in steps.choices.values():
        add_common_arguments(sub)


def _endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="mindcode", help="model name sent to the endpoint")
    parser.add_argument("--max_tokens", type=int, default=1024)
    parser.add_argument("--temperature", type=float, default=None)


def _io_arguments(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    parser.add_argument("--data_path", required=data_required,
                        help="input file or glob (.json, .jsonl, .csv, .parquet)")
    parser.add_argument("--output_path", required=True, help="output (.json: one JSON array; else JSON lines)")
    parser.add_argument("--on-error", dest="on_error", choices=["fail", "skip"], default="fail",
                        help="skip: go on past malformed rows and write them with their reasons to OUTPUT.rejects.jsonl")


def run(args: argparse.Namespace) -> dict[str, Any]:
    progress = interactive()
    if args.step == "tokenize":
        return tokenize_dataset(args.dataset_type, args.input_glob, args.model_file, args.seq_length,
                                args.output_file, args.torch_output, args.template, args.pack, args.on_error,
                                args.text_field, progress=progress)
    if args.step == "validate":
        return checks.validate(args.input)
    if args.step == "inspect":
        return checks.inspect(args.input, args.model_file, args.index, args.half)
    if getattr(args, "action", None) == "generate":
        if not args.endpoint:
            raise MindcodeError(f"data {args.step} generate needs --endpoint")
        endpoint = synthetic.Endpoint(args.endpoint, args.model)
        if args.step == "magpie":
            return synthetic.magpie(endpoint, args.n, args.output_path, args.template, args.max_tokens,
                                    1.0 if args.temperature is None else args.temperature, progress)
        if not args.seeds:
            raise MindcodeError("data oss-instruct generate needs --seeds")
        return synthetic.oss_instruct(endpoint, args.seeds, args.output_path, args.max_tokens,
                                      0.0 if args.temperature is None else args.temperature, progress)
    if not args.data_path:
        raise MindcodeError(f"data {args.step} needs --data_path")
    make = dpo.make_attach if args.step == "dpo-attach" else CONVERTERS[args.step].make
    return converters.run(make(args), args.data_path, args.output_path, args.on_error, progress=progress)


def summary(result: dict[str, Any]) -> str:
    if "segments" in result:  # inspect
        marked = "".join(f"[[{s['text']}]]" if s["trained"] else s["text"] for s in result["segments"])
        return (f"row {result['index']} of {result['rows']}: {result['real_tokens']} tokens, "
                f"{result['trained_tokens']} trained ([[...]] marks trained text)\n{marked}")
    if "problems" in result:  # validate
        lines = [f"{result['records']} records, {result['problems']} problems"]
        lines += [f"  {n} x {reason}" for reason, n in result["by_reason"].items()]
        lines += [f"  e.g. {e}" for e in result["examples"][:5]]
        return "\n".join(lines)
    skipped = ", ".join(f"{n} {r}" for r, n in result["skipped_by_reason"].items()) or "none"
    if "already_done" in result:  # generate
        return (f"wrote {result['written']} rows to {result['output_path']} ({result['already_done']} were there "
                f"already); skipped: {skipped}")
    if "rows" in result:  # tokenize
        outputs = " and ".join(p for p in (result["output_file"], result["torch_output"]) if p)
        rows = f"{result['pairs']} pairs" if "pairs" in result else f"{result['rows']} rows"
        return (f"{result['records']} records -> {rows} of {result['seq_length'] + 1} tokens in "
                f"{outputs}; truncated {result['truncated']}; skipped: {skipped}; "
                f"{result['tokens']} tokens ({result['tokens_per_s']}/s), masked {result['masked_fraction']:.1%}")
    rejects = f" (see {result['rejects_file']})" if result["rejects_file"] else ""
    return (f"{result['records']} records -> {result['written']} rows in {result['output_path']}; "
            f"skipped: {skipped}{rejects}")
