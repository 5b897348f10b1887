"""``mindcode <verb>``: one entry point, the verbs in one table.

    mindcode env --json
    mindcode convert-weight --model llama --input_path HF_DIR --output_path model.ckpt --dtype bf16

Every verb prints a short human summary, or with ``--json`` one JSON object on stdout. Errors are one line on
stderr (exit 1); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import logging
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

import mindcode
from mindcode.commands import (add_common_arguments, convert_weight, data, env, launch, plan, predict, quickstart,
                               report, serve, train)
from mindcode.commands import eval as eval_

from mindcode.errors import MindcodeError

# verb -> module with HELP, add_arguments(parser), run(args) -> dict, and summary(result) -> str
VERBS: dict[str, ModuleType] = {
    "env": env,
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
    """While a verb runs, file descriptor 1 points at stderr: frameworks that log to stdout (MindFormers does, at
    import) cannot corrupt the one result the verb prints there."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_verb(module: ModuleType, args: argparse.Namespace, prog: str) -> int:
    """Run one verb with mindcode's error and output conventions; returns the exit status."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        with framework_output_to_stderr():
            result = module.run(args)
    except (MindcodeError, OSError) as exc:
        if args.debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line for anything unexpected too; --debug has the rest
        if args.debug:
            raise
        print(f"{prog}: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(module.summary(result))
    return 0 if result.get("ok", True) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_verb(VERBS[args.verb], args, prog=f"mindcode {args.verb}")


if __name__ == "__main__":
    sys.exit(main())
