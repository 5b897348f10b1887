"""The gpu backend: PyTorch + transformers, on CUDA GPUs or on the CPU.

Contract: may import torch and transformers (only inside functions, so registering it costs nothing);
must not import mindspore or mindformers. Native checkpoints are HF directories (safetensors + config.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import Session, StepTrainer
from mindcode.env import package_versions
from mindcode.plan.devices import GIB, Device
from mindcode.precision import Precision
from mindcode.presets import ModelConfig


class GpuBackend:
    name = "gpu"
    launcher = "torchrun_launcher.sh"
    default_port = 29500  # torchrun's default
    native_checkpoint = "hf"
    data_key = "npy"

    def accelerator(self) -> Device | None:
        if package_versions("torch")[1]:  # not installed
            return None
        import torch

        if not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        return Device(f"cuda:0 ({props.name})", "cuda", float(props.total_memory), 2 * GIB, props.name)

    def visible_devices(self) -> tuple[str, int]:
        import os

        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return "CUDA_VISIBLE_DEVICES", len([d for d in visible.split(",") if d.strip()])
        return "CUDA_VISIBLE_DEVICES", len(list(Path("/dev").glob("nvidia[0-9]*")))

    def training_precision(self, config: Any, device: str) -> Precision:
        from backends.gpu.precision import training_precision

        return training_precision(config, device)

    def inference_dtype(self, checkpoint_dtype: str, device: str) -> str:
        from backends.gpu.precision import inference_dtype

        return inference_dtype(checkpoint_dtype, device)

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

    def build_model(self, config: ModelConfig, seq_length: int, checkpoint: str | Path | None = None,
                    rows: int | None = None, settings: dict[str, Any] | None = None,
                    tensor_parallel: int = 1, work_dir: str | Path | None = None) -> Any:
        from backends.gpu.model import build_model
        from backends.gpu.parallel import local_device

        return build_model(config, checkpoint, local_device(), tensor_parallel=tensor_parallel)

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

    def write_run_config(self, config: Any, layout: Any, output_dir: Path) -> list[str]:
        """``OUTPUT_DIR/parallel_layout.json``: the mesh, each rank's coordinates and layers, and how PyTorch's
        engines are applied (what ``backends/gpu/parallel.py`` builds for this layout on CUDA)."""
        from mindcode.parallel import TENSOR_PARALLEL, describe_ranks

        values = {
            "mesh": {"names": ["pp", "dp", "tp"],
                     "shape": [layout.pipeline_stage, layout.data_parallel, layout.model_parallel]},
            "layout": layout.as_dict(),
            "data_parallel": config.torch.distributed if layout.data_parallel > 1 else None,
            "tensor_parallel": TENSOR_PARALLEL if layout.model_parallel > 1 else None,
            "pipeline_schedule": config.torch.pipeline_schedule if layout.pipeline_stage > 1 else None,
            "activation_checkpointing": {"every": config.torch.checkpoint_every}
            if config.torch.gradient_checkpointing else None,
            "precision_on_cuda": vars(self.training_precision(config, "cuda")),
            "ranks": describe_ranks(layout, config.model.shape()),
        }
        path = Path(output_dir) / "parallel_layout.json"
        path.write_text(json.dumps(values, indent=2) + "\n")
        return [str(path)]

    def session(self, model: Any, prompts: list[list[int]], max_rows: int, length: int) -> Session:
        from backends.gpu.session import Session as GpuSession

        return GpuSession(model, prompts, max_rows=max_rows, length=length)

    def trainer(self, config: Any, rank: int = 0, world_size: int = 1) -> StepTrainer:
        from backends.gpu.train import Trainer

        return Trainer(config, rank=rank, world_size=world_size)

    def save_checkpoint(self, tensors: Iterable[tuple[str, np.ndarray, str]], path: str | Path) -> None:
        from backends.gpu.checkpoint import save_safetensors

        save_safetensors(tensors, Path(path))

    def load_checkpoint(self, path: str | Path) -> dict[str, np.ndarray]:
        from mindcode.convert.safetensors_io import iter_tensors

        path = Path(path)
        return {info.name: np.array(array) for info, array in iter_tensors(path)}
