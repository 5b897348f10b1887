"""Train mindcode's tiny CodeLlama-style sentencepiece tokenizer from text the project owns (its own sources).

    python scripts/train_tokenizer.py --output mindcode/assets/tiny_code.model   # what `make tokenizer` runs

Trained like CodeLlama's: BPE with byte fallback, ``<unk>``/``<s>``/``</s>`` at ids 0/1/2, digits split, CodeLlama's
infilling pieces ``▁<PRE>``/``▁<MID>``/``▁<SUF>``/``▁<EOT>`` as control symbols (ids 3-6: text that merely looks
like them stays text), and no normalisation or whitespace collapsing (the defaults would fold newlines and indentation, so decoded code would no
longer match its source). One thread and no sampling make it deterministic for a given corpus.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import sentencepiece as spm

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = ["mindcode", "backends", "scripts", "tools", "tests"]
FIM_PIECES = ["▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"]


def corpus_lines(roots: list[Path]) -> list[str]:
    lines = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return lines


def train(lines: list[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        control_symbols=FIM_PIECES,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=1 << 16,
        minloglevel=2,
    )
    return model.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="where to write the .model file")
    parser.add_argument("--vocab_size", type=int, default=1024)
    parser.add_argument("--sources", nargs="*", default=DEFAULT_SOURCES, help="folders (under the repo) to read *.py from")
    args = parser.parse_args()
    lines = corpus_lines([ROOT / s for s in args.sources])
    model = train(lines, args.vocab_size)
    output = Path(args.output)
    tmp = output.with_suffix(".tmp")
    tmp.write_bytes(model)
    tmp.replace(output)
    print(json.dumps({"output": str(output), "vocab_size": args.vocab_size, "corpus_lines": len(lines),
                      "bytes": len(model)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
