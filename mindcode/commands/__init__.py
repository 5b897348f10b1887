"""One module per CLI verb: HELP, add_arguments(parser), run(args) -> dict, summary(result) -> str.

A verb with steps of its own (``mindcode data <step>``) sets ``NESTED = True`` and adds the common options to each
step's parser itself.
"""

import argparse


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
