"""Tied embeddings (SmolLM2, small Qwen2.5-Coder): the head is the embedding matrix on both backends. From one tied HF
init both train the same steps, export without an lm_head of their own, and convert into each other."""

import json
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.convert import ckpt_io
from mindcode.convert.ms_to_hf import convert_ms_to_hf
from mindcode.convert.safetensors_io import iter_tensors
from mindcode.presets import PRESETS
from mindcode.train.loop import train
from tests.conftest import write_hf_checkpoint, write_training_inputs
from tests.parity.tolerances import relative_error

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_tied_models_train_export_and_convert_alike(tmp_path):
    work = write_training_inputs(tmp_path)
    write_hf_checkpoint(work / "tied", PRESETS["tiny"].replace(tie_word_embeddings=True), seed=5)
    runs = {}
    for backend in ("gpu", "ascend"):
        config = load_config(ROOT / f"configs/{backend}/tiny_cpu.yaml", [
            f"data.mindrecord={work / 'train.mindrecord'}", f"data.npy={work / 'npy'}",
            f"training.init={work / 'tied'}", f"training.output_dir={work / backend}", "training.max_steps=6",
            "model.model_config.tie_word_embeddings=true"])
        train(config, progress=False)
        runs[backend] = [json.loads(line)["loss"] for line in (work / backend / "metrics.jsonl").read_text().splitlines()]
    worst = max(abs(a - g) / g for a, g in zip(runs["ascend"], runs["gpu"]))
    print(f"\ntied embeddings: worst per-step relative loss difference over 6 steps: {worst:.2e}")
    assert len(runs["ascend"]) == 6 and worst <= 1e-4
    ours = {t.name for t in ckpt_io.index_ckpt(work / "ascend" / "final" / "model.ckpt")}
    assert "model.tok_embeddings.embedding_weight" in ours and "lm_head.weight" not in ours
    gpu = {info.name: array for info, array in iter_tensors(work / "gpu" / "final")}
    assert "lm_head.weight" not in gpu
    assert json.loads((work / "gpu" / "final" / "config.json").read_text())["tie_word_embeddings"] is True
    convert_ms_to_hf(work / "ascend" / "final" / "model.ckpt", work / "ascend_hf",
                     str(work / "tied" / "config.json"), progress=False)
    back = {info.name: array for info, array in iter_tensors(work / "ascend_hf")}
    assert set(back) == set(gpu)
    assert max(relative_error(back[k], gpu[k]) for k in gpu) <= 1e-4


def test_a_tied_model_decodes_alike_on_both_backends(tmp_path):
    from mindcode.predict.decode import GenerationConfig
    from mindcode.predict.run import Generator
    from mindcode.tokenizer import TINY_TOKENIZER

    checkpoint = write_hf_checkpoint(tmp_path / "tied", PRESETS["tiny"].replace(tie_word_embeddings=True), seed=6)
    rng = np.random.default_rng(2)
    prompts = [[1, *rng.integers(7, 1024, size=8 + i).tolist()] for i in range(4)]
    config = GenerationConfig(max_new_tokens=20, eos_token_id=-1)
    tokens = {b: Generator(b, str(checkpoint), str(TINY_TOKENIZER), max_length=64, max_rows=4).run(prompts, config)
              for b in ("gpu", "ascend")}
    assert tokens["gpu"] == tokens["ascend"]
