"""The tokenizer's two outputs: MindRecord (read back by MindSpore and MindFormers) and .npy hold the same rows,
and the qa labels equal MindFormers' llama_preprocess scheme on well-formed conversations."""

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from backends.ascend.mindrecord import read_mindrecord
from mindcode.data.build import tokenize_dataset
from mindcode.tokenizer import TINY_TOKENIZER

pytestmark = pytest.mark.slow
TOK = str(TINY_TOKENIZER)


# Code-shaped answers: most real ones start with a newline or indentation, where the template's trailing space
# stays a lone token (MindFormers trains it); also tabs, CRLF, non-ASCII and empty lines.
ANSWER_STARTS = ["", "\n", "\n\n", "    ", "\t", "\r\n", "```python\n", "é ", " ", "\n    # ünïcode ✓\n\n"]


def conversations(n):
    rows = []
    for i in range(n):
        start = ANSWER_STARTS[i % len(ANSWER_STARTS)]
        turns = [{"from": "human", "value": f"Write function number {i} in Python."},
                 {"from": "gpt", "value": f"{start}def f{i}(x):\n    return x * {i}"}]
        if i % 3 == 0:
            turns += [{"from": "human", "value": "Now add a docstring."},
                      {"from": "gpt", "value": f'def f{i}(x):\n    """Times {i}."""\n    return x * {i}'}]
        rows.append({"id": str(i), "conversations": turns})
    return rows


def mindformers_qa_scheme(rows, seq_length):
    """MindFormers' documented qa labelling, rebuilt from its description with transformers' LlamaTokenizer
    (add_bos and add_eos on, rounds split at </s>, the instruction masked as len(tok(instruction)) - 3 ids)."""
    from fastchat.conversation import get_conv_template
    from transformers import LlamaTokenizer

    tok = LlamaTokenizer(vocab_file=TOK, add_bos_token=True, add_eos_token=True, legacy=True)
    conv = get_conv_template("vicuna_v1.1")
    sep = conv.sep + conv.roles[1] + ": "
    all_ids, all_labels = [], []
    for row in rows:
        conv.messages = []
        for j, turn in enumerate(row["conversations"]):
            conv.append_message(conv.roles[j % 2], turn["value"])
        rounds = conv.get_prompt().split(conv.sep2)
        ids = [1]
        for r in rounds:
            if r:
                ids += tok(r)["input_ids"][1:]
        labels = np.array(ids + [0] * (seq_length - len(ids)))
        cur = 1
        labels[:cur] = -100
        for r in rounds:
            if not r:
                break
            instruction = r.split(sep)[0] + sep
            round_len = len(tok(r)["input_ids"]) - 1
            labels[cur: cur + len(tok(instruction)["input_ids"]) - 3] = -100
            cur += round_len
        labels[cur:] = -100
        all_ids.append(ids + [0] * (seq_length - len(ids)))
        all_labels.append(labels.tolist())
    return np.array(all_ids, np.int32), np.array(all_labels, np.int32)


def test_qa_mindrecord_equals_npy_equals_mindformers_scheme(tmp_path):
    rows = conversations(2100)  # more than one 1024-row batch: the writer's fast path is used from the second
    (tmp_path / "c.json").write_text(json.dumps(rows))
    summary = tokenize_dataset("qa", str(tmp_path / "c.json"), TOK, 255, output_file=str(tmp_path / "t.mindrecord"),
                               torch_output=str(tmp_path / "npy"), progress=False)
    assert summary["rows"] == 2100 and summary["truncated"] == 0
    mr = read_mindrecord(tmp_path / "t.mindrecord", ["input_ids", "labels"])
    for column in ("input_ids", "labels"):
        npy = np.load(tmp_path / "npy" / f"{column}.npy", mmap_mode="r")
        assert npy.dtype == np.int32 and npy.shape == (2100, 256)
        np.testing.assert_array_equal(mr[column], npy)
    ref_ids, ref_labels = mindformers_qa_scheme(rows, 256)
    np.testing.assert_array_equal(mr["input_ids"], ref_ids)
    np.testing.assert_array_equal(mr["labels"], ref_labels)


def test_wiki_and_packed_outputs_match(tmp_path):
    (tmp_path / "code.jsonl").write_text("".join(json.dumps({"text": f"def g{i}():\n    pass\n" * (i % 4 + 1)}) + "\n"
                                                 for i in range(200)))
    tokenize_dataset("wiki", str(tmp_path / "code.jsonl"), TOK, 127, output_file=str(tmp_path / "w.mindrecord"),
                     torch_output=str(tmp_path / "w"), progress=False)
    np.testing.assert_array_equal(read_mindrecord(tmp_path / "w.mindrecord", ["input_ids"])["input_ids"],
                                  np.load(tmp_path / "w" / "input_ids.npy"))
    (tmp_path / "c.json").write_text(json.dumps(conversations(30)))
    tokenize_dataset("qa", str(tmp_path / "c.json"), TOK, 511, output_file=str(tmp_path / "p.mindrecord"),
                     torch_output=str(tmp_path / "p"), pack=True, progress=False)
    mr = read_mindrecord(tmp_path / "p.mindrecord", ["input_ids", "labels"])
    np.testing.assert_array_equal(mr["labels"], np.load(tmp_path / "p" / "labels.npy"))


def test_mindformers_dataset_reads_the_file(tmp_path):
    import mindspore.dataset as ds
    from mindformers.dataset import CausalLanguageModelDataset

    (tmp_path / "c.json").write_text(json.dumps(conversations(8)))
    tokenize_dataset("qa", str(tmp_path / "c.json"), TOK, 255, output_file=str(tmp_path / "t.mindrecord"),
                     progress=False)
    loader = ds.MindDataset(str(tmp_path / "t.mindrecord"), columns_list=["input_ids", "labels"], shuffle=False)
    dataset = CausalLanguageModelDataset(data_loader=loader, input_columns=["input_ids", "labels"], batch_size=4,
                                         num_parallel_workers=1)
    batches = list(dataset.create_dict_iterator(output_numpy=True, num_epochs=1))
    assert len(batches) == 2 and batches[0]["input_ids"].shape == (4, 256)
    np.testing.assert_array_equal(batches[0]["labels"], read_mindrecord(tmp_path / "t.mindrecord", ["labels"])["labels"][:4])


def test_a_failing_run_leaves_no_mindrecord(tmp_path):
    rows = conversations(3000) + [{"id": "bad", "conversations": [{"from": "gpt", "value": "no question"}]}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(Exception, match="record 3000"):
        tokenize_dataset("qa", str(tmp_path / "c.jsonl"), TOK, 255, output_file=str(tmp_path / "t.mindrecord"),
                         torch_output=str(tmp_path / "npy"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "npy"] and not list((tmp_path / "npy").iterdir())


def test_cli_validate_and_inspect(tmp_path):
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        good, {**good, "rejected": "a"}, {"conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]},
        {"fim_prefix": "a", "fim_middle": "b"}]))
    cmd = [sys.executable, "-m", "mindcode", "data", "validate", "--input", str(tmp_path / "pairs.jsonl"), "--json"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["by_reason"] == {"chosen == rejected": 1, "roles do not alternate": 1, "FIM marker field missing": 1}
    assert "pairs.jsonl: record 1, line 2" in report["examples"][0]

    (tmp_path / "c.json").write_text(json.dumps(conversations(2)))
    tokenize_dataset("qa", str(tmp_path / "c.json"), TOK, 255, output_file=str(tmp_path / "t.mindrecord"), progress=False)
    cmd = [sys.executable, "-m", "mindcode", "data", "inspect", "--input", str(tmp_path / "t.mindrecord"),
           "--model_file", TOK, "--index", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ASSISTANT:[[ \ndef f1(x):\n    return x * 1</s>]]" in result.stdout  # the space before it is trained


def test_pretraining_rows_train_on_both_backends_alike(tmp_path):
    """`--dataset_type wiki` writes MindFormers' input-only rows; both trainers train every token of them (labels =
    input ids), from one init, with the same per-step losses."""
    from mindcode.config import load_config
    from mindcode.presets import PRESETS
    from mindcode.train.loop import train
    from tests.conftest import write_hf_checkpoint

    root = Path(__file__).resolve().parents[2]
    source = (root / "mindcode" / "data" / "tokenize.py").read_text()  # real code, blank-line paragraphs
    (tmp_path / "code.txt").write_text(source * 4)
    summary = tokenize_dataset("wiki", str(tmp_path / "code.txt"), TOK, 128, output_file=str(tmp_path / "w.mindrecord"),
                               torch_output=str(tmp_path / "w_npy"), progress=False)
    assert summary["rows"] >= 8 and summary["masked_fraction"] < 0.01  # all but each row's first token trained
    assert not (tmp_path / "w_npy" / "labels.npy").exists()  # input-only, as MindFormers writes pretraining data
    write_hf_checkpoint(tmp_path / "init", PRESETS["tiny"], seed=1)
    losses = {}
    for backend in ("gpu", "ascend"):
        overrides = [f"data.mindrecord={tmp_path / 'w.mindrecord'}", f"data.npy={tmp_path / 'w_npy'}",
                     f"training.init={tmp_path / 'init'}", f"training.output_dir={tmp_path / backend}",
                     "training.max_steps=5"]
        out = train(load_config(root / f"configs/{backend}/tiny_cpu.yaml", overrides), progress=False)
        losses[backend] = [json.loads(line)["loss"] for line in open(Path(out["output_dir"]) / "metrics.jsonl")]
        assert out["rows_dropped_per_epoch"] == summary["rows"] % 4  # the sampler's leftovers are reported
    worst = max(abs(a - g) / g for a, g in zip(losses["ascend"], losses["gpu"]))
    assert len(losses["gpu"]) == 5 and worst <= 1e-4, losses
