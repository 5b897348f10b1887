"""megadiff single-function rows (``buggy_function``, ``fixed_function``) -> RepairLLaMA repair pairs.

As RepairLLaMA builds them: comments and blank lines are stripped from both functions (a fix that only touched
comments is skipped), the two are diffed, and everything from the first to the last changed line is the bug chunk.
- ``--form ir4-or2`` (RepairLLaMA's best): input = the buggy function with ``// buggy code`` and the chunk's lines
  commented out, then ``<FILL_ME>`` indented like the first line of the fix (as RepairLLaMA's IR4 files are);
  output = the fixed chunk. The lines mindcode adds end like the input's lines (CRLF input stays CRLF).
- ``--form fim``: CodeLlama infilling parts ``{fim_prefix, fim_suffix, fim_middle}`` (the code before the chunk,
  after it, and the fixed chunk).
Rows whose functions are identical, whose fix is empty, duplicates, and (with ``--max_tokens`` and
``--model_file``) rows whose input + output is longer are skipped and counted.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import re

from mindcode.errors import MindcodeError
from mindcode.data.io import Record, Rejects, require

HELP = "megadiff rows -> RepairLLaMA IR4/OR2 pairs or CodeLlama FIM parts"
FILL = "<FILL_ME>"


def strip_java_comments(source: str) -> str:
    """Drop ``//`` and ``/* */`` comments, leaving string and char literals (and their escapes) intact."""
    out, i, n = [], 0, len(source)
    while i < n:
        two = source[i:i + 2]
        c = source[i]
        if two == "//":
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif two == "/*":
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            out.append(source[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_blank_lines(source: str) -> str:
    return re.sub(r"^\s*$\n", "", source, flags=re.MULTILINE)


def bug_chunk(buggy: str, fixed: str) -> tuple[list[str], list[str], list[str], list[str]] | None:
    """``(before, buggy_chunk, fixed_chunk, after)`` lines (with newlines), or None if nothing changed."""
    a, b = buggy.splitlines(keepends=True), fixed.splitlines(keepends=True)
    diff = list(difflib.unified_diff(a, b, n=1 << 30))[3:]
    changed = [i for i, line in enumerate(diff) if line[:1] in "+-"]
    if not changed:
        return None
    first, last = changed[0], changed[-1]
    body = [line[1:] for line in diff]
    before, after = body[:first], body[last + 1:]
    chunk = diff[first:last + 1]
    old = [line[1:] for line in chunk if not line.startswith("+")]
    new = [line[1:] for line in chunk if not line.startswith("-")]
    return before, old, new, after


def ir4_or2(buggy: str, fixed: str) -> tuple[str, str] | None:
    parts = bug_chunk(buggy, fixed)
    if parts is None:
        return None
    before, old, new, after = parts
    indent_from = new[0] if new else (old[0] if old else "")
    indent = re.match(r"[ \t]*", indent_from).group(0)
    eol = "\r\n" if "\r\n" in buggy else "\n"
    commented = [f"// buggy code{eol}"] + [f"// {line}" for line in (old or [eol])]
    return "".join(before + commented + [f"{indent}{FILL}{eol}"] + after), "".join(new)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--form", choices=["ir4-or2", "fim"], default="ir4-or2")
    parser.add_argument("--max_tokens", type=int, help="skip rows whose input + output has more tokens")
    parser.add_argument("--model_file", help="the tokenizer --max_tokens counts with (a sentencepiece tokenizer.model, "
                                             "an HF tokenizer.json, or a model directory)")


def make(args: argparse.Namespace):
    tokenizer = None
    if args.max_tokens:
        from mindcode.tokenizer import load_tokenizer

        if not args.model_file:
            raise MindcodeError("--max_tokens counts tokens with the model's tokenizer: give --model_file "
                                "(e.g. CodeLlama-7b-hf/tokenizer.model)")
        tokenizer = load_tokenizer(args.model_file)
    elif args.model_file:
        raise MindcodeError("--model_file is only used with --max_tokens")
    seen: set[bytes] = set()

    def convert(record: Record, rejects: Rejects) -> list[dict]:
        buggy = require(record, "buggy_function")
        fixed = require(record, "fixed_function")
        key = hashlib.blake2b(f"{buggy}\0{fixed}".encode(), digest_size=16).digest()
        if key in seen:
            rejects.add(record, "duplicate")
            return []
        seen.add(key)
        norm_buggy = strip_blank_lines(strip_java_comments(buggy))
        norm_fixed = strip_blank_lines(strip_java_comments(fixed))
        if norm_buggy == norm_fixed:
            rejects.add(record, "only comments or blank lines changed")
            return []
        meta = {"id": str(record.data.get("id", record.index))}
        if args.form == "fim":
            before, _old, new, after = bug_chunk(norm_buggy, norm_fixed)
            out = {**meta, "fim_prefix": "".join(before), "fim_suffix": "".join(after), "fim_middle": "".join(new)}
            if not out["fim_middle"].strip():
                rejects.add(record, "the fix only deletes lines (nothing to generate)")
                return []
            text = out["fim_prefix"] + out["fim_suffix"] + out["fim_middle"]
        else:
            source, target = ir4_or2(norm_buggy, norm_fixed)
            if not target.strip():
                rejects.add(record, "the fix only deletes lines (nothing to generate)")
                return []
            out = {**meta, "input": source, "output": target}
            text = source + target
        if tokenizer is not None and len(tokenizer.encode(text)) > args.max_tokens:
            rejects.add(record, f"longer than {args.max_tokens} tokens")
            return []
        return [out]

    return convert
