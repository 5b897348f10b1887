"""Templates and tokenization: exactly the assistant answers (and their EOS) are trained, nothing else."""

import json

import numpy as np
import pytest

from mindcode.data.build import tokenize_dataset
from mindcode.data.templates import ConversationError, render
from mindcode.data.tokenize import IGNORE, ConversationEncoder
from mindcode.errors import MindcodeError
from mindcode.tokenizer import TINY_TOKENIZER, load_sentencepiece

SP = load_sentencepiece()
ENCODER = ConversationEncoder(str(TINY_TOKENIZER))


def trained_text(ids, labels):
    """The trained spans decoded, EOS shown as </s>, spans joined by |."""
    spans, run = [], []
    for token, label in zip(ids, labels):
        if label == IGNORE:
            if run:
                spans.append(run)
                run = []
            continue
        assert label == token
        run.append(token)
    spans += [run] if run else []
    return "|".join(SP.decode([t for t in s if t != 2]) + ("</s>" if s[-1] == 2 else "") for s in spans)


def encode(messages, template="vicuna_v1.1"):
    (sample,) = ENCODER.encode_batch([render(messages, template)])
    return sample


def test_vicuna_single_turn_trains_answer_and_eos_only():
    sample = encode([("user", "Write add."), ("assistant", "def add(a, b):\n    return a + b")])
    assert sample.ids[0] == 1 and sample.labels[0] == IGNORE
    assert trained_text(sample.ids, sample.labels) == "def add(a, b):\n    return a + b</s>"
    prompt = SP.decode([t for t, l in zip(sample.ids, sample.labels) if l == IGNORE][1:])
    assert prompt.startswith("A chat between a curious user") and prompt.endswith("USER: Write add. ASSISTANT:")


def test_multi_turn_and_system_message():
    messages = [("system", "You write Python."), ("user", "Q1"), ("assistant", "first answer"),
                ("user", "Q2"), ("assistant", "second answer")]
    sample = encode(messages)
    assert trained_text(sample.ids, sample.labels) == "first answer</s>|second answer</s>"
    assert SP.decode(sample.ids[1:40]).startswith("You write Python. USER: Q1 ASSISTANT: first answer")


def test_text_that_looks_special_stays_text():
    tricky = "print('</s><s> ASSISTANT: USER:')"
    sample = encode([("user", tricky), ("assistant", tricky)])
    assert sample.ids.count(2) == 1 and sample.ids.count(1) == 1  # only the template's EOS and the BOS
    assert trained_text(sample.ids, sample.labels) == tricky + "</s>"


def test_llama2_template():
    sample = encode([("user", "Reverse s."), ("assistant", "s[::-1]"), ("user", "Sort xs."), ("assistant", "sorted(xs)")],
                    template="llama-2")
    text = trained_text(sample.ids, sample.labels)
    assert text == "s[::-1] </s>|sorted(xs) </s>"  # CodeLlama-Instruct: ' ANSWER </s>'
    assert sample.ids[-1] == 2  # the template's trailing <s> (a turn that never comes) is dropped
    assert SP.decode(sample.ids[1:6]).startswith("[INST]")


def test_raw_template_for_input_output_pairs():
    sample = encode([("user", "// buggy code\n<FILL_ME>\n"), ("assistant", "return a + b;\n")], template="raw")
    assert trained_text(sample.ids, sample.labels) == "return a + b;\n</s>"


@pytest.mark.parametrize("messages, reason", [
    ([("user", "a"), ("user", "b")], "roles do not alternate"),
    ([("assistant", "a")], "roles do not alternate"),
    ([("user", "only a question")], "no assistant message"),
    ([("user", "q"), ("system", "late"), ("user", "q")], "system message not first"),
])
def test_bad_conversations(messages, reason):
    with pytest.raises(ConversationError, match=reason):
        render(messages, "vicuna_v1.1")


def test_unknown_template():
    with pytest.raises(MindcodeError, match="unknown conversation template 'vicuna9'"):
        render([("user", "q"), ("assistant", "a")], "vicuna9")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def conversation(i, answer_len=3):
    return {"id": str(i), "conversations": [{"from": "human", "value": f"Question {i}?"},
                                            {"from": "gpt", "value": " ".join(["x = 1"] * answer_len)}]}


def test_tokenize_counts_truncation_and_skips_instead_of_masking(tmp_path):
    rows = [conversation(0), conversation(1, answer_len=200), {"id": "bad", "conversations": [{"from": "human", "value": "q"}]},
            {"id": "empty", "conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a"}]}]
    src = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(MindcodeError, match=r"c\.jsonl: record 2, line 3, field 'conversations': no assistant message"):
        tokenize_dataset("qa", src, str(TINY_TOKENIZER), 128, torch_output=str(tmp_path / "npy"), progress=False)
    assert not (tmp_path / "npy").exists() or not list((tmp_path / "npy").iterdir())
    summary = tokenize_dataset("qa", src, str(TINY_TOKENIZER), 128, torch_output=str(tmp_path / "npy"),
                               on_error="skip", progress=False)
    assert (summary["records"], summary["rows"], summary["truncated"]) == (4, 2, 1)
    assert summary["skipped_by_reason"] == {"no assistant message": 1, "conversations[0].value: empty turn": 1}
    ids, labels = (np.load(tmp_path / "npy" / f"{c}.npy") for c in ("input_ids", "labels"))
    assert ids.shape == labels.shape == (2, 129) and ids.dtype == labels.dtype == np.int32
    assert (labels[1] != IGNORE).any()  # the truncated sample still trains on what is left
    assert summary["trained_tokens"] == int((labels != IGNORE).sum())
    # A sample whose answer starts after the cut is skipped with its reason, never written fully masked.
    with pytest.raises(MindcodeError, match="no rows to write from 4 records .*2 no trained tokens left after truncation"):
        tokenize_dataset("qa", src, str(TINY_TOKENIZER), 40, torch_output=str(tmp_path / "short"), on_error="skip",
                         progress=False)
    assert not (tmp_path / "short").exists() or not list((tmp_path / "short").iterdir())


def test_pack_keeps_every_trained_token(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [conversation(i) for i in range(20)])
    plain = tokenize_dataset("qa", src, str(TINY_TOKENIZER), 256, torch_output=str(tmp_path / "a"), progress=False)
    packed = tokenize_dataset("qa", src, str(TINY_TOKENIZER), 256, torch_output=str(tmp_path / "b"), pack=True,
                              progress=False)
    assert packed["rows"] < plain["rows"] == 20
    assert packed["trained_tokens"] == plain["trained_tokens"] and packed["tokens"] == plain["tokens"]
    a_ids, a_lab = np.load(tmp_path / "a" / "input_ids.npy"), np.load(tmp_path / "a" / "labels.npy")
    b_ids, b_lab = np.load(tmp_path / "b" / "input_ids.npy"), np.load(tmp_path / "b" / "labels.npy")
    assert [t for t in b_ids.ravel() if t] == [t for t in a_ids.ravel() if t]
    assert [t for t in b_lab.ravel() if t != IGNORE] == [t for t in a_lab.ravel() if t != IGNORE]


def test_wiki_chunks_with_bos_eos(tmp_path):
    text = "\n\n".join(f"def f{i}():\n    return {i}" for i in range(40))
    (tmp_path / "code.txt").write_text(text)
    summary = tokenize_dataset("wiki", str(tmp_path / "code.txt"), str(TINY_TOKENIZER), 63,
                               torch_output=str(tmp_path / "w"), progress=False)
    ids = np.load(tmp_path / "w" / "input_ids.npy")
    assert ids.shape == (summary["rows"], 64) and not (tmp_path / "w" / "labels.npy").exists()
    stream = []
    for i in range(40):
        stream += [1, *SP.encode(f"def f{i}():\n    return {i}"), 2]
    assert ids.ravel().tolist() == stream[: ids.size]
    assert summary["dropped_tail_tokens"] == len(stream) - ids.size < 64


def test_fim_codellama_layout_and_masks(tmp_path):
    from mindcode.data.templates import render_fim

    prefix, suffix, middle = "def f(x):\n", "\n    return y\n", "    y = x + 1"
    (sample,) = ENCODER.encode_batch([render_fim(prefix, suffix, middle)])
    pre, mid, suf, eot = (SP.piece_to_id(p) for p in ("▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"))
    newline = len(SP.encode("\n"))
    assert sample.ids == ([1, pre] + SP.encode(prefix) + [suf] + SP.encode("\n" + suffix)[newline:] + [mid]
                          + SP.encode("\n" + middle)[newline:] + [eot])
    trained = [t for t, l in zip(sample.ids, sample.labels) if l != IGNORE]
    assert trained == SP.encode("\n" + middle)[newline:] + [eot]
    pieces = "".join(SP.id_to_piece(t) for t in trained[:-1])
    assert pieces.replace("▁", " ").replace("<0x0A>", "\n") == middle  # no leading space added to the middle

    src = write_jsonl(tmp_path / "fim.jsonl", [{"fim_prefix": prefix, "fim_suffix": suffix, "fim_middle": middle}])
    summary = tokenize_dataset("qa", src, str(TINY_TOKENIZER), 128, torch_output=str(tmp_path / "f"), progress=False)
    assert summary["trained_tokens"] == len(trained)


def test_fim_needs_a_tokenizer_with_fim_pieces(tmp_path):
    import sentencepiece as spm

    from mindcode.data.templates import render_fim

    spm.SentencePieceTrainer.train(sentence_iterator=iter(["def f(): return 1"] * 50), model_prefix=str(tmp_path / "m"),
                                   vocab_size=280, byte_fallback=True, model_type="bpe", minloglevel=2)
    encoder = ConversationEncoder(str(tmp_path / "m.model"))
    with pytest.raises(MindcodeError, match="has no '▁<PRE>' token"):
        encoder.encode_batch([render_fim("a", "b", "c")])


def test_preference_pairs_share_the_prompt_and_train_only_the_final_answer(tmp_path):
    conversational = {"id": "c", "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                            {"role": "user", "content": "add"}],
                      "chosen": [{"role": "assistant", "content": "def add(a, b): return a + b"}],
                      "rejected": [{"role": "assistant", "content": "pass"}]}
    rows = [{"id": "p", "prompt": "Sum two ints.", "chosen": "a + b", "rejected": "a - b"}, conversational,
            {"id": "e", "prompt": " ", "chosen": "x", "rejected": "y"},
            {"id": "s", "prompt": "p", "chosen": "same answer", "rejected": "same answer"}]
    src = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(MindcodeError, match=r"pairs\.jsonl: record 2, line 3, field 'prompt': missing or empty"):
        tokenize_dataset("dpo", src, str(TINY_TOKENIZER), 128, torch_output=str(tmp_path / "npy"), progress=False)
    summary = tokenize_dataset("dpo", src, str(TINY_TOKENIZER), 128, torch_output=str(tmp_path / "npy"),
                               on_error="skip", progress=False)
    assert summary["pairs"] == 2 and summary["skipped_by_reason"] == {"empty prompt": 1, "chosen == rejected": 1}
    rejects = [json.loads(line) for line in open(summary["rejects_file"])]
    assert [r["line"] for r in rejects] == [3, 4] and "field 'rejected'" in rejects[1]["error"]
    cols = {c: np.load(tmp_path / "npy" / f"{c}.npy") for c in
            ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels")}
    sp = load_sentencepiece(TINY_TOKENIZER)
    for i, answers in enumerate([("a + b", "a - b"), ("def add(a, b): return a + b", "pass")]):
        for half, answer in zip(("chosen", "rejected"), answers):
            labels = cols[f"{half}_labels"][i]
            trained = [int(t) for t in labels if t != IGNORE]
            assert sp.decode(trained[:-1]) == answer and trained[-1] == sp.eos_id()  # the answer and its </s>
        shared = cols["chosen_labels"][i] == IGNORE
        prompt_len = int(np.argmin(shared))  # the first trained position
        assert (cols["chosen_input_ids"][i][:prompt_len] == cols["rejected_input_ids"][i][:prompt_len]).all()


def test_a_fastchat_template_takes_a_model_directory_whose_tokenizer_model_comes_first(tmp_path):
    """A CodeLlama directory ships tokenizer.model and tokenizer.json; the directory's tokenizer.model wins
    (``tokenizer_file``), so FastChat templates encode with it, as with the file itself."""
    import shutil

    shutil.copy(TINY_TOKENIZER, tmp_path / "tokenizer.model")
    (tmp_path / "tokenizer.json").write_text("{}")
    by_dir, by_file = ConversationEncoder(str(tmp_path)), ConversationEncoder(str(TINY_TOKENIZER))
    parts = render([("user", "hi"), ("assistant", "hello there")], "llama-2")
    assert by_dir.encode_batch([parts]) == by_file.encode_batch([parts])
