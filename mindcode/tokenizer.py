"""One tokenizer interface for predict, serve and eval: a sentencepiece ``.model`` (CodeLlama), an HF
``tokenizer.json`` (the ``tokenizers`` library, not transformers), or an HF model directory holding either.

Both give token ids without special tokens (``encode``), a prompt as the tokenizer starts one (``encode_prompt``:
CodeLlama's BOS; an HF tokenizer's own post-processor), text without special tokens (``decode``), a token's piece,
and the ids generation stops at. An HF directory also brings its chat template (``tokenizer_config.json`` or
``chat_template.jinja``) and the special tokens the template refers to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError

# Trained by scripts/train_tokenizer.py (`make tokenizer`); 1024 pieces, <unk>/<s>/</s> = 0/1/2 like CodeLlama.
TINY_TOKENIZER = Path(__file__).parent / "assets" / "tiny_code.model"

# transformers' ``clean_up_tokenization``: the spaces its decode removes when the tokenizer config asks for it
CLEAN_UP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


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


class SentencePieceTokenizer:
    """CodeLlama's kind: BOS starts a prompt, EOS ends generation, control pieces never decode."""

    kind = "sentencepiece"
    chat_template = None

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.sp = load_sentencepiece(path)
        self.vocab_size = self.sp.get_piece_size()
        self.bos_id, self.eos_id = self.sp.bos_id(), self.sp.eos_id()
        self.stop_ids = [self.eos_id]

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_prompt(self, text: str) -> list[int]:
        return [self.bos_id, *self.sp.encode(text)]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=-1)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def piece(self, token: int) -> str:
        return self.sp.id_to_piece(token)


class HFTokenizer:
    """An HF fast tokenizer (``tokenizer.json``) read with ``tokenizers``, as transformers' fast tokenizer uses it:
    ``encode_prompt`` applies the file's post-processor (BOS where it adds one), ``decode`` skips special tokens
    and cleans up spaces when ``tokenizer_config.json`` says so. ``eos_id`` is the tokenizer's EOS (what ends a
    text row); generation stops at any of ``stop_ids``: ``generation_config.json``'s ``eos_token_id`` (one id or a
    list, what transformers' ``generate`` stops at) where the directory has one, else the tokenizer's EOS."""

    kind = "hf"

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        path = Path(path)
        self.path = str(path)
        folder = path if path.is_dir() else path.parent
        file = folder / "tokenizer.json" if path.is_dir() else path
        try:
            self.tk = Tokenizer.from_file(str(file))
        except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
            raise MindcodeError(f"{file}: not an HF tokenizer.json ({str(exc).splitlines()[0]})") from None
        config = _json(folder / "tokenizer_config.json")
        self.special_tokens = {k: _content(v) for k, v in config.items()
                               if k.endswith("_token") and _content(v) is not None}
        template = folder / "chat_template.jinja"
        self.chat_template = template.read_text() if template.is_file() else config.get("chat_template")
        self.clean_up = bool(config.get("clean_up_tokenization_spaces", False))
        self.vocab_size = self.tk.get_vocab_size(with_added_tokens=True)
        self.bos_id = self._id(self.special_tokens.get("bos_token"))
        self.eos_id = self._id(self.special_tokens.get("eos_token"))
        stop = _json(folder / "generation_config.json").get("eos_token_id")
        stop = [stop] if isinstance(stop, int) else stop
        self.stop_ids = [int(t) for t in stop] if isinstance(stop, list) and stop else \
            [self.eos_id] if self.eos_id is not None else []
        if not self.stop_ids:
            raise MindcodeError(f"{folder}: the tokenizer names no eos_token (tokenizer_config.json) and there is no "
                                f"generation_config.json eos_token_id")
        if self.eos_id is None:  # text rows (wiki) end with the tokenizer's EOS; the generation one stands in
            self.eos_id = self.stop_ids[0]

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.tk.token_to_id(token)

    def pad_for_model(self) -> int:
        """A pad id that never occurs in text, for MindFormers' ``pad_token_id``: 0 when it is a special token (as
        SmolLM2's ``<|endoftext|>``), else the tokenizer's pad token or its EOS (in Qwen2.5's and DeepSeek-Coder's
        byte-level vocabularies 0 is ``!``)."""
        special = {i for i, token in self.tk.get_added_tokens_decoder().items() if token.special}
        if 0 in special:
            return 0
        pad = self._id(self.special_tokens.get("pad_token"))
        return pad if pad is not None else self.eos_id

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def encode_prompt(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=True).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tk.encode_batch(texts, add_special_tokens=False)]

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` (no special tokens added) with each token's character span."""
        encoding = self.tk.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def decode(self, ids: list[int]) -> str:
        text = self.tk.decode(ids, skip_special_tokens=True)
        if self.clean_up:
            for before, after in CLEAN_UP:
                text = text.replace(before, after)
        return text

    def decode_all(self, ids: list[int]) -> str:
        """The text with the special tokens shown (``data inspect``)."""
        return self.tk.decode(ids, skip_special_tokens=False)

    def piece(self, token: int) -> str:
        return self.tk.id_to_token(token) or ""


Tokenizer = SentencePieceTokenizer | HFTokenizer


def tokenizer_file(directory: Path) -> Path | None:
    """The tokenizer an HF model directory carries: ``tokenizer.model`` (sentencepiece: CodeLlama's own, which the
    FastChat templates need) before ``tokenizer.json`` (an HF tokenizer); None when it has neither."""
    for name in ("tokenizer.model", "tokenizer.json"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A sentencepiece ``.model`` file, an HF ``tokenizer.json``, or a model directory with either
    (``tokenizer_file``; the directory of an HF tokenizer also brings its config and chat template)."""
    path = Path(path)
    if path.is_dir():
        found = tokenizer_file(path)
        if found is None:
            raise MindcodeError(f"{path}: no tokenizer.json or tokenizer.model in this directory")
        return SentencePieceTokenizer(found) if found.suffix == ".model" else HFTokenizer(path)
    if path.suffix == ".json":
        if not path.is_file():
            raise MindcodeError(f"{path}: no such tokenizer file")
        return HFTokenizer(path)
    return SentencePieceTokenizer(path)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MindcodeError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None


def _content(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None
