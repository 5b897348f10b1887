"""The gpu backend: PyTorch + transformers, on CUDA GPUs or on the CPU.

Contract: may import torch and transformers (only inside functions, so registering it costs nothing);
must not import mindspore or mindformers. Native checkpoints are HF directories (safetensors + config.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mindcode.env import package_versions
from mindcode.presets import ModelConfig


class GpuBackend:
    name = "gpu"

    def info(self) -> dict[str, Any]:
        versions, missing = package_versions("torch", "transformers")
        if missing:
            reason = f"not installed: {', '.join(missing)} (pip install 'mindcode[gpu]')"
            return {"available": False, "reason": reason, "versions": versions, "device": None, "device_count": 0}
        import torch  # the device count needs the CUDA runtime that only torch can ask

        count = torch.cuda.device_count()
        return {
            "available": True,
            "reason": "",
            "versions": versions,
            "device": torch.cuda.get_device_name(0) if count else "CPU",
            "device_count": count,
        }

    def build_model(self, config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None) -> Any:
        from backends.gpu.model import build_model
        from backends.gpu.parallel import local_device

        return build_model(config, checkpoint, local_device())

    def forward(self, model: Any, input_ids: np.ndarray) -> np.ndarray:
        import torch

        model.eval()
        with torch.no_grad():
            ids = torch.as_tensor(np.asarray(input_ids, dtype=np.int64), device=model.device)
            return model(input_ids=ids).logits.float().cpu().numpy()

    def loss(self, model: Any, input_ids: np.ndarray, labels: np.ndarray) -> float:
        import torch

        model.eval()
        with torch.no_grad():
            ids = torch.as_tensor(np.asarray(input_ids, dtype=np.int64), device=model.device)
            lab = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=model.device)
            return float(model(input_ids=ids, labels=lab).loss)

    def init_distributed(self) -> tuple[int, int]:
        from backends.gpu.parallel import init_distributed

        return init_distributed()

    def session(self, model: Any, prompts: list[list[int]], max_rows: int, length: int) -> Any:
        from backends.gpu.session import Session

        return Session(model, prompts)

    def trainer(self, config: Any, rank: int = 0, world_size: int = 1) -> Any:
        from backends.gpu.train import Trainer

        return Trainer(config, rank=rank, world_size=world_size)

    def save_checkpoint(self, tensors: Iterable[tuple[str, np.ndarray, str]], path: str | Path) -> None:
        from backends.gpu.checkpoint import save_safetensors

        save_safetensors(tensors, Path(path))

    def load_checkpoint(self, path: str | Path) -> dict[str, np.ndarray]:
        from mindcode.convert.safetensors_io import iter_tensors

        path = Path(path)
        return {info.name: np.array(array) for info, array in iter_tensors(path)}
