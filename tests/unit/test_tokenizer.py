import json

import numpy as np
import pytest

from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS
from mindcode.tokenizer import TINY_TOKENIZER, load_sentencepiece

CODE = 'def add(a, b):\n    """Add two numbers."""\n\treturn a + b  # ünïcode ✓\n\n\n    x = [1, 22, 333]\n'


def test_special_ids_like_codellama():
    sp = load_sentencepiece()
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert sp.get_piece_size() == PRESETS["tiny"].vocab_size


def test_code_round_trips_with_whitespace_and_unicode():
    sp = load_sentencepiece()
    ids = sp.encode(CODE)
    assert sp.decode(ids) == CODE
    assert 0 not in ids  # byte fallback: nothing becomes <unk>
    assert len(ids) < len(CODE)  # it learned merges, not only bytes


def test_transformers_llama_tokenizer_agrees():
    transformers = pytest.importorskip("transformers")
    tok = transformers.LlamaTokenizer(vocab_file=str(TINY_TOKENIZER), legacy=False)
    ids = tok(CODE).input_ids
    assert ids == [1, *load_sentencepiece().encode(CODE)]
    assert tok.decode(ids, skip_special_tokens=True) == CODE


def test_missing_model_file(tmp_path):
    with pytest.raises(MindcodeError, match="no such tokenizer model file"):
        load_sentencepiece(tmp_path / "nope.model")


def tiny_hf_tokenizer(directory):
    """A small BPE tokenizer.json trained here with the tokenizers library, with a chat template beside it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>", "<bos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([CODE] * 20, trainer)
    directory.mkdir()
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<bos>", "eos_token": "<eos>", "chat_template":
         "{% for m in messages %}{{ bos_token + m['role'] + ': ' + m['content'] + eos_token }}{% endfor %}"
         "{% if add_generation_prompt %}{{ bos_token + 'assistant: ' }}{% endif %}"}))
    return directory


def test_load_tokenizer_takes_a_model_file_a_tokenizer_json_or_a_directory(tmp_path):
    from mindcode.tokenizer import HFTokenizer, SentencePieceTokenizer, load_tokenizer

    sp = load_tokenizer(TINY_TOKENIZER)
    assert isinstance(sp, SentencePieceTokenizer) and sp.encode_prompt("x") == [1, *sp.encode("x")]
    hf = tiny_hf_tokenizer(tmp_path / "hf")
    for path in (hf, hf / "tokenizer.json"):
        tok = load_tokenizer(path)
        assert isinstance(tok, HFTokenizer) and (tok.bos_id, tok.eos_id) == (1, 0)
        assert tok.decode(tok.encode(CODE)) == CODE and tok.encode_prompt(CODE) == tok.encode(CODE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MindcodeError, match="empty: no tokenizer.json or tokenizer.model in this directory"):
        load_tokenizer(tmp_path / "empty")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MindcodeError, match="bad.json: not an HF tokenizer.json"):
        load_tokenizer(tmp_path / "bad.json")


def tokenized_with_template_hf(tmp_path):
    """One conversation tokenized with the tiny HF tokenizer's chat template into tmp_path/npy."""
    from mindcode.data.build import tokenize_dataset

    hf = tiny_hf_tokenizer(tmp_path / "hf")
    rows = [{"messages": [{"role": "user", "content": "add"}, {"role": "assistant", "content": "return a + b"}]}]
    (tmp_path / "c.json").write_text(json.dumps(rows))
    tokenize_dataset("qa", str(tmp_path / "c.json"), str(hf), 64, torch_output=str(tmp_path / "npy"), template="hf",
                     progress=False)
    return hf


def test_template_hf_trains_the_assistant_turns_and_fastchat_needs_sentencepiece(tmp_path):
    from mindcode.data.build import tokenize_dataset
    from mindcode.tokenizer import load_tokenizer

    hf = tokenized_with_template_hf(tmp_path)
    tok = load_tokenizer(hf)
    ids, labels = np.load(tmp_path / "npy" / "input_ids.npy")[0], np.load(tmp_path / "npy" / "labels.npy")[0]
    text = "<bos>user: add<eos>"
    assert tok.tk.decode(ids.tolist(), skip_special_tokens=False).startswith(text + "<bos>assistant: ")
    assert tok.tk.decode([t for t in labels.tolist() if t != -100], skip_special_tokens=False) == "return a + b<eos>"
    with pytest.raises(MindcodeError, match="FastChat templates need a sentencepiece tokenizer.model"):
        tokenize_dataset("qa", str(tmp_path / "c.json"), str(hf), 64, torch_output=str(tmp_path / "x"),
                         template="vicuna_v1.1", progress=False)
    with pytest.raises(MindcodeError, match="--template hf needs an HF tokenizer"):
        tokenize_dataset("qa", str(tmp_path / "c.json"), str(TINY_TOKENIZER), 64, torch_output=str(tmp_path / "y"),
                         template="hf", progress=False)


def test_data_inspect_shows_an_hf_rows_trained_spans_with_their_special_tokens(tmp_path):
    from mindcode.data.checks import inspect

    hf = tokenized_with_template_hf(tmp_path)
    shown = inspect(str(tmp_path / "npy"), str(hf))
    assert [(s["trained"], s["text"]) for s in shown["segments"]] == [
        (False, "<bos>user: add<eos><bos>assistant: "), (True, "return a + b<eos>")]


def test_wiki_rows_and_repair_token_counts_take_an_hf_tokenizer(tmp_path):
    from mindcode.data.build import tokenize_dataset
    from mindcode.tokenizer import load_tokenizer

    hf = tiny_hf_tokenizer(tmp_path / "hf")
    tok = load_tokenizer(hf)
    (tmp_path / "w.jsonl").write_text("".join(json.dumps({"text": CODE[:n]}) + "\n" for n in (20, 40, 60)))
    tokenize_dataset("wiki", str(tmp_path / "w.jsonl"), str(hf), 15, torch_output=str(tmp_path / "npy"),
                     progress=False)
    rows = np.load(tmp_path / "npy" / "input_ids.npy")
    stream = [t for n in (20, 40, 60) for t in (tok.bos_id, *tok.encode(CODE[:n]), tok.eos_id)]
    assert rows.shape[1] == 16 and rows.reshape(-1).tolist() == stream[:rows.size]


def test_the_pad_for_the_model_is_never_a_text_token(tmp_path):
    """0 where it is a special token (SmolLM2's <|endoftext|>, the tiny tokenizer's <eos>); where 0 is text (a
    byte-level vocabulary whose specials come last, as Qwen2.5's "!"), the tokenizer's pad token, else its EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from mindcode.tokenizer import load_tokenizer

    assert load_tokenizer(tiny_hf_tokenizer(tmp_path / "special_first")).pad_for_model() == 0
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([CODE] * 20, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.add_special_tokens(["<|endoftext|>", "<|im_end|>"])
    directory = tmp_path / "text_first"
    directory.mkdir()
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    loaded = load_tokenizer(directory)
    assert loaded.tk.id_to_token(0) == "!" and loaded.pad_for_model() == tokenizer.token_to_id("<|endoftext|>")
    (directory / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    assert load_tokenizer(directory).pad_for_model() == tokenizer.token_to_id("<|im_end|>")
