"""``mindcode predict``: load a checkpoint on a backend (converting on the fly), format prompts, decode, write JSONL.

A checkpoint is an HF directory (its ``config.json`` defines the shape) or a MindSpore ``.ckpt`` (the shape comes
from ``--config``); either runs on either backend: the gpu backend gets a ``.ckpt`` converted to a temporary HF
directory, the ascend backend an HF directory converted to a temporary ``.ckpt``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from mindcode.terminal import progress_bar

from mindcode.convert.hf_to_ms import convert_hf_to_ms, read_hf_config
from mindcode.convert.ms_to_hf import convert_ms_to_hf, resolve_config
from mindcode.errors import MindcodeError
from mindcode.predict.decode import GenerationConfig, Session, generate
from mindcode.tokenizer import HFTokenizer, load_tokenizer, tokenizer_file

# Without --max_length the model is sized for the batch: prompt + new tokens rounded up to a power of two, at least
# this many (a few compiled shapes, not one per prompt), at most the model's positions.
MIN_LENGTH = 256


def length_bucket(needed: int, positions: int) -> int:
    return min(positions, max(MIN_LENGTH, 1 << max(0, needed - 1).bit_length()))


def config_pad_id(config: str) -> int | None:
    """The pad id a training YAML (``model.model_config.pad_token_id``) or a preset gives; None otherwise."""
    import yaml

    from mindcode.presets import PRESETS

    if config in PRESETS:
        return PRESETS[config].pad_token_id
    if Path(config).suffix in (".yaml", ".yml") and Path(config).is_file():
        model_config = ((yaml.safe_load(Path(config).read_text()) or {}).get("model") or {}).get("model_config") or {}
        pad = model_config.get("pad_token_id")
        return int(pad) if isinstance(pad, int) else None
    return None


def _check_converted_once(path: Path, processes: int, native: str) -> None:
    """A model split over processes is not converted by each of them (a 34B conversion per rank)."""
    if processes > 1:
        raise MindcodeError(f"{path}: convert it once to {native} (mindcode convert-weight) for a prediction "
                            f"split over {processes} processes")


class Generator:
    def __init__(self, backend_name: str, checkpoint: str, tokenizer: str | None, config: str | None = None,
                 max_length: int = 0, max_rows: int = 8, tensor_parallel: int = 1, work_dir: str | None = None):
        from backends import get_backend

        self.backend = get_backend(backend_name)
        # None: token ids in and out only; an HF directory brings its own tokenizer unless another is named
        path = Path(checkpoint)
        if tokenizer is None and path.is_dir() and tokenizer_file(path):
            tokenizer = str(path)
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer else None
        self.max_length, self.max_rows = max_length, max_rows
        self._tmp = tempfile.TemporaryDirectory(prefix="mindcode-predict-")
        native_kind = self.backend.native_checkpoint
        if path.is_dir():  # the shape is the directory's; a config may name the pad id (docs/models.md, "Pad ids")
            self.shape = read_hf_config(path)
            pad = config_pad_id(config) if config else None
            if pad is None and isinstance(self.tokenizer, HFTokenizer):
                pad = self.tokenizer.pad_for_model()
            if pad is not None:
                self.shape = self.shape.replace(pad_token_id=pad)
            if native_kind == "ckpt":
                native = Path(self._tmp.name) / "model.ckpt"
                _check_converted_once(path, tensor_parallel, "a MindSpore .ckpt")
                convert_hf_to_ms(path, native, progress=False)
            else:
                native = path
        elif path.is_file():
            if not config:
                raise MindcodeError(f"{path}: a MindSpore checkpoint needs --config (YAML, config.json or preset)")
            self.shape = resolve_config(config)
            if native_kind == "hf":
                native = Path(self._tmp.name) / "hf"
                _check_converted_once(path, tensor_parallel, "an HF directory")
                convert_ms_to_hf(path, native, config, progress=False)
            else:
                native = path
        else:
            raise MindcodeError(f"{path}: no such checkpoint (an HF directory or a .ckpt)")
        if self.tokenizer is not None:
            # a sentencepiece model has exactly the model's pieces; an HF vocabulary may be padded out in the model
            size, vocab = self.tokenizer.vocab_size, self.shape.vocab_size
            if size > vocab or (self.tokenizer.kind == "sentencepiece" and size != vocab):
                raise MindcodeError(f"{tokenizer}: {size} tokens, the model has {vocab}")
        # a fixed window when asked for one, else sized by the prompts (``length_bucket``), never more than the
        # model's positions: a 16k-token KV cache for 200-token HumanEval prompts is what does not fit
        self.sized_by_prompts = not max_length
        self.max_length = min(max_length, self.shape.max_position_embeddings) if max_length else 0
        self.native = native
        self._extra = {"tensor_parallel": tensor_parallel, "work_dir": work_dir} if tensor_parallel > 1 else {}
        self._model: Any = None
        self._built = 0

    @property
    def model(self) -> Any:
        """The backend's model with a cache for ``max_rows`` sequences of ``max_length`` tokens (built on first use,
        rebuilt only when a batch needs a longer bucket)."""
        length = self.max_length or length_bucket(0, self.shape.max_position_embeddings)
        if self._model is None or length != self._built:
            self._model = None  # the old cache goes before the new one is allocated
            self._model = self.backend.build_model(self.shape, length, self.native, rows=self.max_rows, **self._extra)
            self.max_length = self._built = length
        return self._model

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode_prompt(text)

    def run(self, prompts: list[list[int]], config: GenerationConfig) -> list[list[list[int]]]:
        longest = max(len(p) for p in prompts)
        if self.sized_by_prompts:
            self.max_length = max(self._built, length_bucket(longest + config.max_new_tokens,
                                                             self.shape.max_position_embeddings))
        if longest + config.max_new_tokens > self.max_length:
            raise MindcodeError(f"a prompt of {longest} tokens + {config.max_new_tokens} new ones exceeds "
                                f"--max_length {self.max_length}")
        rows = len(prompts) * max(config.num_beams, config.num_return_sequences)
        session = self.session(prompts, max(rows, self.max_rows))
        stops = config.stop

        def stopped(tokens: list[int]) -> bool:
            return bool(stops) and any(s in self.tokenizer.decode(tokens) for s in stops)

        return generate(session, prompts, config, stopped)

    def decoding(self, config: GenerationConfig) -> GenerationConfig:
        """``config`` for this model and tokenizer: stop at the tokenizer's ids, never generate the model's pad
        (unless it is a stop id, which ends the row anyway)."""
        stops, pad = self.tokenizer.stop_ids, self.shape.pad_token_id
        return dataclasses.replace(config, eos_token_id=stops, suppress_tokens=[] if pad in stops else [pad])

    def session(self, prompts: list[list[int]], max_rows: int) -> Session:
        """A decoding session of the model, for up to ``max_rows`` rows of up to ``max_length`` tokens."""
        return self.backend.session(self.model, prompts, max_rows=max_rows, length=self.max_length)

    def text(self, tokens: list[int], stops: list[str]) -> str:
        text = self.tokenizer.decode(tokens)
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        return text[:cut] if cut >= 0 else text


AUTO_TEMPLATE = "auto"  # CodeLlama-Instruct's FastChat llama-2 with a sentencepiece tokenizer, hf with an HF one


def chat_template(generator: Generator, template: str) -> str:
    """The template chats are rendered with (``auto`` resolved), checked against the tokenizer before the first
    chat: one line when they do not fit."""
    from mindcode.data import hf_template
    from mindcode.data.tokenize import HF_TEMPLATE

    if template == AUTO_TEMPLATE:
        template = "llama-2" if generator.tokenizer.kind == "sentencepiece" else HF_TEMPLATE
    if template == HF_TEMPLATE:
        hf_template.check_template(generator.tokenizer)
    elif generator.tokenizer.kind != "sentencepiece":
        raise MindcodeError(f"--template {template} (FastChat) needs a sentencepiece tokenizer; "
                            f"{generator.tokenizer.path} is an HF tokenizer: use --template hf")
    return template


def chat_prompt(messages: list[tuple[str, str]], template: str, generator: Generator) -> list[int]:
    """The conversation rendered with its template (resolved and checked by ``chat_template``) up to where the assistant's answer starts: a FastChat template
    as training renders it, or ``hf``, the tokenizer's own chat template with its generation prompt, tokenized as
    transformers' ``apply_chat_template`` tokenizes it (no special tokens added)."""
    from mindcode.data import hf_template
    from mindcode.data.templates import render
    from mindcode.data.tokenize import HF_TEMPLATE, ConversationEncoder

    if template == HF_TEMPLATE:
        turns = [{"role": role, "content": content} for role, content in messages]
        return generator.tokenizer.encode(hf_template.render(generator.tokenizer, turns, add_generation_prompt=True))
    parts = render([*messages, ("assistant", "\x00")], template)
    cut = next(i for i, p in enumerate(parts) if p.kind == "text" and p.text == "\x00")
    encoder = ConversationEncoder("tokenizer", threads=1, processor=generator.tokenizer.sp)
    (sample,) = encoder.encode_batch([parts[:cut]])
    return sample.ids


def predict_rows(generator: Generator, rows: list[dict[str, Any]], config: GenerationConfig, batch_size: int,
                 chat: bool = False, template: str = AUTO_TEMPLATE, progress: bool = True) -> list[dict[str, Any]]:
    if chat:
        template = chat_template(generator, template)
    start, out, new_tokens = time.perf_counter(), [], 0
    config = generator.decoding(config)
    bar = progress_bar(total=len(rows), desc="predict", unit=" prompts", disable=not progress)
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        prompts = []
        for row in batch:
            if chat:
                turns = row.get("messages", row.get("prompt"))
                turns = [{"role": "user", "content": turns}] if isinstance(turns, str) else turns
                messages = [(m["role"], m["content"]) for m in turns]
                prompts.append(chat_prompt(messages, template, generator))
            else:
                prompts.append(generator.encode(row["prompt"]))
        for row, sequences in zip(batch, generator.run(prompts, config)):
            new_tokens += sum(len(s) for s in sequences)
            texts = [generator.text(s, config.stop) for s in sequences]
            if len(sequences) == 1:
                out.append({"id": row["id"], "completion": texts[0], "token_ids": sequences[0]})
            else:
                out.append({"id": row["id"], "completions": texts, "token_ids": sequences})
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    generator.stats = {"prompts": len(rows), "new_tokens": new_tokens, "seconds": round(seconds, 3),
                       "tokens_per_s": round(new_tokens / seconds, 1) if seconds else None}
    return out
