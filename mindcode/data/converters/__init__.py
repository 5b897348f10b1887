"""Dataset converters: each turns one source row into canonical records (or raises ``RecordError``).

A converter module has ``HELP``, ``add_arguments(parser)`` and ``make(args) -> Converter``; a ``Converter`` is a
callable from a ``Record`` to a list of output rows (empty when the row is filtered out on purpose, which it must
count through ``rejects.add``). ``run`` streams the inputs, writes atomically and reports every skipped row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mindcode.terminal import progress_bar

from mindcode.data.converters import alpaca, commitpack, dpo, oss_instruct, repair, translation
from mindcode.data.io import Rejects, RecordError, check_output, expand_inputs, read_records, write_rows

CONVERTERS = {
    "alpaca": alpaca,
    "translation": translation,
    "dpo": dpo,
    "repair": repair,
    "commitpack": commitpack,
    "oss-instruct": oss_instruct,
}

Converter = Callable[..., list[dict[str, Any]]]


def run(convert: Converter, input_glob: str, output_path: str, on_error: str = "fail",
        progress: bool = True) -> dict[str, Any]:
    """Convert every record of every input file; returns the JSON summary."""
    start = time.perf_counter()
    check_output(output_path)
    rejects = Rejects(on_error, output_path=output_path)
    counts = {"records": 0, "written": 0}

    def rows():
        bar = progress_bar(desc="convert", unit=" records", disable=not progress)
        for path in expand_inputs(input_glob):
            for record in read_records(path):
                counts["records"] += 1
                bar.update()
                try:
                    out = convert(record, rejects)
                except RecordError as exc:
                    rejects.handle(exc)
                    continue
                counts["written"] += len(out)
                yield from out
        bar.close()

    try:
        write_rows(output_path, rows())
    except BaseException:
        rejects.discard()
        raise
    return {
        "output_path": output_path,
        "records": counts["records"],
        "written": counts["written"],
        "skipped": rejects.count,
        "skipped_by_reason": dict(rejects.reasons),
        "rejects_file": rejects.write(),
        "seconds": round(time.perf_counter() - start, 3),
    }
