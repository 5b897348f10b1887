"""``mindcode <verb>``: one entry point, the verbs in one table.

    mindcode env --json
    mindcode convert-weight --model llama --input_path HF_DIR --output_path model.ckpt --dtype bf16

Every verb prints a short human summary, or with ``--json`` one JSON object on stdout. Errors are one line on
stderr (exit 1); ``--debug`` shows the traceback. MindSpore's, MindFormers' and PyTorch's own log lines go to the
run's ``logs/frameworks.log`` (``mindcode.terminal``), not to the terminal; ``--debug`` or ``MINDCODE_LOG=info``
leaves them there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import mindcode
from mindcode.commands import (add_common_arguments, convert_weight, data, doctor, env, launch, plan, predict,
                               quickstart, report, serve, train)
from mindcode.commands import eval as eval_

from mindcode import errors, terminal

# verb -> module with HELP, add_arguments(parser), run(args) -> dict, and summary(result) -> str
VERBS: dict[str, ModuleType] = {
    "env": env,
    "doctor": doctor,
    "convert-weight": convert_weight,
    "data": data,
    "eval": eval_,
    "train": train,
    "plan": plan,
    "predict": predict,
    "quickstart": quickstart,
    "report": report,
    "serve": serve,
    "launch": launch,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindcode", description=mindcode.__doc__)
    parser.add_argument("--version", action="version", version=f"mindcode {mindcode.__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, module in VERBS.items():
        sub = verbs.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        if not getattr(module, "NESTED", False):
            add_common_arguments(sub)
    return parser


@contextlib.contextmanager
def framework_output_to_stderr() -> Iterator[None]:
    """With ``--debug`` (framework output left on the terminal), file descriptor 1 points at stderr while the verb
    runs: frameworks that print to stdout (MindFormers does, at import) cannot corrupt the one result printed there."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def log_dir(module: ModuleType, args: argparse.Namespace, verb: str) -> Path:
    """Where a verb's framework logs go: its own choice (``log_dir(args)``: the run's folder), else runs/logs/VERB."""
    if hasattr(module, "log_dir"):
        try:
            return Path(module.log_dir(args)) / "logs"
        except Exception:  # noqa: BLE001 - a bad config is reported by the verb itself, with the right message
            pass
    return Path("runs") / "logs" / verb


def run_verb(module: ModuleType, args: argparse.Namespace, prog: str) -> int:
    """Run one verb with mindcode's output conventions; returns the exit status."""
    verb = prog.split()[-1]
    quiet = not args.debug and os.environ.get("MINDCODE_LOG", "").lower() not in ("info", "debug")
    capture = terminal.quiet(log_dir(module, args, verb)) if quiet else framework_output_to_stderr()
    failure = None
    with capture as log_path:
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, force=True,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        try:
            result = module.run(args)
        except BrokenPipeError:
            raise  # the reader of stdout left (main returns quietly)
        except Exception as exc:  # one line, always; --debug has the rest
            if args.debug:
                raise
            failure = errors.one_line(exc)
    pointer = f" (framework logs: {log_path})" if log_path and log_path.is_file() and log_path.stat().st_size else ""
    if failure is not None:
        print(f"{prog}: error: {failure}{pointer}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(module.summary(result))
        if pointer:
            print(f"framework logs: {log_path}", file=sys.stderr)
    return 0 if result.get("ok", True) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_verb(VERBS[args.verb], args, prog=f"mindcode {args.verb}")
    except BrokenPipeError:  # `mindcode data inspect ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
