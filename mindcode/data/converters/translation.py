"""Code translation sets -> OpenAI ``messages`` with an instruction naming the source and target language.

Sources (``--source``) and the row shapes they ship:
- ``codetransocean``: CodeTransOcean JSONL rows, one language per key (``{"id", ..., "C#": code, "Java": code}``);
  which two keys are source and target follows the dataset's own preprocessing, by key position per subset
  (``--subset MultilingualTrans|NicheTrans``: 3rd -> 4th key; ``LLMTrans``: 4th -> 3rd; ``DLTrans``: 2nd -> 3rd),
  or by name with ``--source_lang/--target_lang``.
- ``codexglue-trans``: CodeXGLUE code-to-code-trans rows ``{"id", "java", "cs"}``; ``--direction java-cs|cs-java``.
- ``codexglue-refine``: CodeXGLUE code-refinement rows ``{"id", "buggy", "fixed"}`` (Java) -> fix the bug.
- ``codetranslatorllm``: CodeTranslatorLLM rows, Fortran -> Rust (the direction the dataset has); the column names
  are ``--source_field``/``--target_field``.
"""

from __future__ import annotations

import argparse
import re

from mindcode.errors import MindcodeError
from mindcode.data.io import Record, RecordError, Rejects, require

HELP = "code translation / refinement sets -> chat messages"

CODETRANSOCEAN_POSITIONS = {"MultilingualTrans": (2, 3), "NicheTrans": (2, 3), "LLMTrans": (3, 2), "DLTrans": (1, 2)}
CODEXGLUE_NAMES = {"java": "Java", "cs": "C#"}
FENCE = {"C#": "csharp", "C++": "cpp", "Visual Basic": "vbnet"}


def fence(lang: str) -> str:
    return FENCE.get(lang, lang.lower().replace(" ", ""))


def code_block(code: str, lang: str) -> str:
    """``code`` in a Markdown fence longer than any run of backticks inside it (CommonMark's rule), so a triple
    backtick in the code (a docstring, a Markdown string) cannot close the block early."""
    ticks = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", code)), default=0))
    return f"{ticks}{fence(lang)}\n{code}\n{ticks}"


def translation_messages(code: str, target: str, source_lang: str, target_lang: str) -> list[dict[str, str]]:
    prompt = f"Translate the following {source_lang} code to {target_lang}.\n\n{code_block(code, source_lang)}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": code_block(target, target_lang)}]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True,
                        choices=["codetransocean", "codexglue-trans", "codexglue-refine", "codetranslatorllm"])
    parser.add_argument("--subset", choices=sorted(CODETRANSOCEAN_POSITIONS),
                        help="codetransocean: which subset's key layout the rows have (required there, unless "
                             "--source_lang/--target_lang name the keys)")
    parser.add_argument("--source_lang", help="codetransocean: source language key (overrides --subset)")
    parser.add_argument("--target_lang", help="codetransocean: target language key (overrides --subset)")
    parser.add_argument("--direction", choices=["java-cs", "cs-java"], default="java-cs",
                        help="codexglue-trans (default: java-cs)")
    parser.add_argument("--source_field", default="program_code",
                        help="codetranslatorllm: the Fortran column (default: program_code)")
    parser.add_argument("--target_field", default="rust_code_translation",
                        help="codetranslatorllm: the Rust column (default: rust_code_translation)")


def make(args: argparse.Namespace):
    if bool(args.source_lang) != bool(args.target_lang):
        given = "--source_lang" if args.source_lang else "--target_lang"
        raise MindcodeError(f"{given} without {'--target_lang' if args.source_lang else '--source_lang'}: give both "
                            f"language keys, or neither (then --subset picks them by position)")
    if args.source == "codetransocean" and not args.source_lang and not args.subset:
        raise MindcodeError(f"--source codetransocean: give --subset ({'|'.join(sorted(CODETRANSOCEAN_POSITIONS))}), "
                            "which says where each row's source and target keys are, or --source_lang/--target_lang")
    def row(record: Record, src_lang: str, tgt_lang: str, code: str, target: str) -> list[dict]:
        return [{"id": str(record.data.get("id", record.index)), "source_lang": src_lang, "target_lang": tgt_lang,
                 "dataset": args.source, "messages": translation_messages(code, target, src_lang, tgt_lang)}]

    def codetransocean(record: Record, rejects: Rejects) -> list[dict]:
        if args.source_lang and args.target_lang:
            src, tgt = args.source_lang, args.target_lang
        else:
            keys = list(record.data)
            i, j = CODETRANSOCEAN_POSITIONS[args.subset]
            if len(keys) <= max(i, j):
                raise RecordError(record, None, f"{args.subset} rows have a language at key positions {i} and {j}; "
                                                f"this row has keys {keys}")
            src, tgt = keys[i], keys[j]
        return row(record, src, tgt, require(record, src), require(record, tgt))

    def codexglue_trans(record: Record, rejects: Rejects) -> list[dict]:
        src, tgt = args.direction.split("-")
        return row(record, CODEXGLUE_NAMES[src], CODEXGLUE_NAMES[tgt], require(record, src), require(record, tgt))

    def codexglue_refine(record: Record, rejects: Rejects) -> list[dict]:
        buggy, fixed = require(record, "buggy"), require(record, "fixed")
        prompt = f"Fix the bug in the following Java code.\n\n{code_block(buggy, 'Java')}"
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": code_block(fixed, "Java")}]
        return [{"id": str(record.data.get("id", record.index)), "source_lang": "Java", "target_lang": "Java",
                 "dataset": args.source, "messages": messages}]

    def codetranslatorllm(record: Record, rejects: Rejects) -> list[dict]:
        return row(record, "Fortran", "Rust", require(record, args.source_field), require(record, args.target_field))

    return {"codetransocean": codetransocean, "codexglue-trans": codexglue_trans,
            "codexglue-refine": codexglue_refine, "codetranslatorllm": codetranslatorllm}[args.source]
