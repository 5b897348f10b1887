"""The tokenizer files mindcode ships and a loader for any sentencepiece (CodeLlama-style) model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError

# Trained by scripts/train_tokenizer.py (`make tokenizer`); 1024 pieces, <unk>/<s>/</s> = 0/1/2 like CodeLlama.
TINY_TOKENIZER = Path(__file__).parent / "assets" / "tiny_code.model"


def load_sentencepiece(path: str | Path = TINY_TOKENIZER) -> Any:
    """A ``sentencepiece.SentencePieceProcessor`` for ``path``; a missing or unreadable file raises naming it."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such tokenizer model file")
    processor = spm.SentencePieceProcessor()
    try:
        processor.Load(str(path))
    except (OSError, RuntimeError) as exc:
        raise MindcodeError(f"{path}: not a sentencepiece model ({exc})") from None
    return processor
