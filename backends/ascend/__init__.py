"""The ascend backend: MindSpore + MindFormers, on Atlas NPUs or on MindSpore's CPU target.

Contract: may import mindspore and mindformers (only inside functions, so registering it costs nothing);
must not import torch or transformers. On Ascend it keeps MindFormers' defaults; on CPU it applies the few settings
MindFormers needs there (graph mode, unfused RMSNorm, sliced rotary embedding, float32 everywhere).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from backends.ascend.checkpoint import load_checkpoint, save_checkpoint
from backends.base import Session, StepTrainer
from mindcode.plan.devices import DEFAULT, DEVICES, Device
from mindcode.precision import Precision
from mindcode.presets import ModelConfig


class AscendBackend:
    name = "ascend"
    launcher = "msrun_launcher.sh"
    default_port = 8118  # MindFormers' msrun_launcher.sh default
    native_checkpoint = "ckpt"
    data_key = "mindrecord"

    def accelerator(self) -> Device | None:
        return DEVICES[DEFAULT[self.name]] if runtime.ascend_device_count() else None

    def visible_devices(self) -> tuple[str, int]:
        return "ASCEND_RT_VISIBLE_DEVICES", runtime.ascend_device_count()

    def training_precision(self, config: Any, device: str) -> Precision:
        from backends.ascend.precision import training_precision

        return training_precision(config, device)

    def inference_dtype(self, checkpoint_dtype: str, device: str) -> str:
        from backends.ascend.precision import inference_dtype

        return inference_dtype(checkpoint_dtype, device)

    def info(self) -> dict[str, Any]:
        return runtime.info()

    def build_model(self, config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None,
                    rows: int | None = None, settings: dict[str, Any] | None = None,
                    tensor_parallel: int = 1, work_dir: str | Path | None = None) -> Any:
        from backends.ascend.model import build_model

        return build_model(config, seq_length, checkpoint, settings=settings, rows=rows, model_parallel=tensor_parallel,
                           work_dir=work_dir)

    def forward(self, model: Any, input_ids: np.ndarray) -> np.ndarray:
        ms = runtime.mindspore()
        model.set_train(False)
        logits, _tokens, _mask = model(ms.Tensor(np.asarray(input_ids, dtype=np.int32)))
        return logits.asnumpy()

    def loss(self, model: Any, input_ids: np.ndarray, labels: np.ndarray) -> float:
        ms = runtime.mindspore()
        model.set_train(True)
        loss = model(ms.Tensor(np.asarray(input_ids, dtype=np.int32)), ms.Tensor(np.asarray(labels, dtype=np.int32)))
        return float(loss.asnumpy().reshape(-1)[0])

    def init_distributed(self) -> tuple[int, int]:
        """Under msrun: MindSpore's communication (HCCL on Ascend, its CPU collectives here); else one process."""
        if int(os.environ.get("MS_WORKER_NUM", 1)) == 1:
            return 0, 1
        runtime.mindspore()
        from mindspore.communication import get_group_size, get_rank, init

        init()
        return get_rank(), get_group_size()

    def write_run_config(self, config: Any, layout: Any, output_dir: Path) -> list[str]:
        """``OUTPUT_DIR/mindformers.yaml``: the MindFormers config this layout gets on Ascend devices (no MindSpore
        needed to write it)."""
        from backends.ascend.mindformers_config import mindformers_config, write_yaml

        path = Path(output_dir) / "mindformers.yaml"
        write_yaml(mindformers_config(config, "Ascend", layout), path)
        return [str(path)]

    def session(self, model: Any, prompts: list[list[int]], max_rows: int, length: int) -> Session:
        from backends.ascend.session import Session as AscendSession

        # rows are padded with the model's pad id, which MindFormers' attention masks (never a text token)
        return AscendSession(model, prompts, length=length, max_rows=max_rows, pad_id=int(model.config.pad_token_id))

    def trainer(self, config: Any, rank: int = 0, world_size: int = 1) -> StepTrainer:
        from backends.ascend.train import Trainer

        return Trainer(config, rank=rank, world_size=world_size)

    def save_checkpoint(self, tensors: Iterable[tuple[str, np.ndarray, str]], path: str | Path) -> None:
        save_checkpoint(tensors, path)

    def load_checkpoint(self, path: str | Path) -> dict[str, np.ndarray]:
        return load_checkpoint(path)
