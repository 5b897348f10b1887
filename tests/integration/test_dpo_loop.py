"""The alignment loop on the tiny default, through the CLI: SFT (gpu) -> predict on the DPO prompts -> attach the
SFT model's answers as rejected -> tokenize pairs -> DPO (ascend, from the SFT weights) -> predict -> BLEU."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mindcode.data.io import write_jsonl
from mindcode.quickstart.dataset import translation_rows
from mindcode.tokenizer import TINY_TOKENIZER

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def mindcode(*args):
    done = subprocess.run([sys.executable, "-m", "mindcode", *map(str, args), "--json"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_sft_predict_attach_dpo_evaluate(tmp_path):
    rows = translation_rows(40)
    write_jsonl(tmp_path / "train.jsonl", rows[:32])
    write_jsonl(tmp_path / "test.jsonl", rows[32:])
    common = ["--model_file", TINY_TOKENIZER, "--seq_length", 256, "--template", "llama-2"]
    seq = "model.model_config.seq_length=256"

    # SFT on the translation pairs (gpu backend, random init)
    mindcode("data", "translation", "--source", "codexglue-trans", "--data_path", tmp_path / "train.jsonl",
             "--output_path", tmp_path / "sft.json")
    mindcode("data", "tokenize", "--dataset_type", "qa", "--input_glob", tmp_path / "sft.json", *common,
             "--torch_output", tmp_path / "sft_npy")
    sft = mindcode("train", "--config", "configs/gpu/tiny_cpu.yaml", "--output_dir", tmp_path / "sft",
                   "--max_steps", 30, f"data.npy={tmp_path / 'sft_npy'}", seq)

    # DPO pairs: the reference translation is chosen, the SFT model's own (sampled) answer rejected
    mindcode("data", "dpo", "--data_path", tmp_path / "train.jsonl", "--source_lang", "java", "--target_lang", "cs",
             "--output_path", tmp_path / "pairs.jsonl")
    mindcode("predict", "--config", "configs/gpu/tiny_cpu.yaml", "--checkpoint", sft["final_weights"],
             "--tokenizer", TINY_TOKENIZER, "--input", tmp_path / "pairs.jsonl", "--chat", "--max_new_tokens", 40,
             "--output", tmp_path / "sft_answers.jsonl", "--max_length", 256, "--do_sample", "true", "--seed", 0)
    attached = mindcode("data", "dpo-attach", "--data_path", tmp_path / "pairs.jsonl", "--predictions",
                        tmp_path / "sft_answers.jsonl", "--output_path", tmp_path / "pairs_full.jsonl",
                        "--on-error", "skip")
    assert attached["written"] + sum(attached["skipped_by_reason"].values()) == 32 and attached["written"] >= 16
    tokenized = mindcode("data", "tokenize", "--dataset_type", "dpo", "--input_glob", tmp_path / "pairs_full.jsonl",
                         *common, "--output_file", tmp_path / "dpo.mindrecord")
    assert tokenized["pairs"] == attached["written"]

    # DPO on the ascend backend from the SFT weights (also the reference model)
    dpo = mindcode("train", "--config", "configs/ascend/dpo_tiny_cpu.yaml", "--output_dir", tmp_path / "dpo",
                   f"data.mindrecord={tmp_path / 'dpo.mindrecord'}", f"training.init={sft['final_weights']}", seq,
                   "schedule.learning_rate=5e-4")
    steps = [json.loads(line) for line in open(tmp_path / "dpo" / "metrics.jsonl")]
    assert abs(steps[0]["loss"] - math.log(2)) < 1e-4
    assert steps[-1]["rewards/margin"] > steps[0]["rewards/margin"]
    assert dpo["stage"] == "dpo"

    # evaluate the aligned model on held-out translations
    test = [{"id": r["id"], "prompt": f"Translate the following Java code to C#.\n\n```java\n{r['java']}\n```"}
            for r in rows[32:]]
    write_jsonl(tmp_path / "test_prompts.jsonl", test)
    write_jsonl(tmp_path / "references.jsonl", [{"id": r["id"], "reference": r["cs"]} for r in rows[32:]])
    mindcode("predict", "--config", "configs/ascend/dpo_tiny_cpu.yaml", "--checkpoint",
             Path(dpo["final_weights"]) / "model.ckpt", "--tokenizer", TINY_TOKENIZER, "--input",
             tmp_path / "test_prompts.jsonl", "--chat", "--max_new_tokens", 40, "--max_length", 256,
             "--output", tmp_path / "dpo_answers.jsonl", "--backend", "gpu")
    scores = mindcode("eval", "bleu", "--predictions", tmp_path / "dpo_answers.jsonl", "--references",
                      tmp_path / "references.jsonl", "--extract-code")
    assert 0.0 <= scores["sacrebleu"] <= 100.0 and scores["n"] == 8
    print(f"\n{tokenized['pairs']} pairs; DPO margin {steps[0]['rewards/margin']:.3f} -> {steps[-1]['rewards/margin']:.3f}, "
          f"loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}; held-out BLEU {scores['sacrebleu']:.1f}")
