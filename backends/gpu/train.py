"""Training step on PyTorch: transformers' LlamaForCausalLM with the same math as the ascend backend's MindFormers
step: AdamW (decoupled decay on matrices only, bias correction), MindFormers' CosineWithWarmUpLR formula, and
MindFormers' global-norm clipping (``g * c / (max(norm, c) + 1e-6)``). bf16 autocast on CUDA, float32 on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mindcode.config import TrainConfig, learning_rate
from mindcode.errors import MindcodeError


class Trainer:
    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1):
        import torch

        from backends.gpu.model import build_model

        self.config, self.torch = config, torch
        t, o = config.training, config.optimizer
        torch.manual_seed(t.seed)
        model = build_model(config.model.shape(), t.init or None)
        self.device = str(next(model.parameters()).device)
        if config.torch.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.model = model
        self.rank, self.world_size = rank, world_size
        if world_size > 1:
            self.model = self._distributed(model)
        decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not n.endswith(".bias")]
        rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and not n.endswith(".bias"))]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}],
                                           lr=config.schedule.learning_rate, betas=tuple(o.betas), eps=o.eps)
        self.optimizer_step = 0
        self.autocast = self.device.startswith("cuda") and config.torch.precision == "bf16"
        if config.torch.compile:
            self.model = torch.compile(self.model)
        self.input_ids = np.load(Path(config.data.npy) / "input_ids.npy", mmap_mode="r")
        self.labels = np.load(Path(config.data.npy) / "labels.npy", mmap_mode="r")
        self.num_rows = len(self.input_ids)

    def _distributed(self, model: Any) -> Any:
        torch = self.torch
        if self.config.torch.distributed == "fsdp":
            from torch.distributed.fsdp import FullyShardedDataParallel

            return FullyShardedDataParallel(model)
        ids = [torch.cuda.current_device()] if self.device.startswith("cuda") else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def batches(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.sort(indices)  # mmap reads in file order, then back to the sampler's order
        back = np.argsort(np.argsort(indices))
        return np.asarray(self.input_ids[order])[back], np.asarray(self.labels[order])[back]

    def step(self, input_ids: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        torch = self.torch
        device = next(self.model.parameters()).device
        self.model.train()
        micro = self.config.training.gradient_accumulation_steps
        # The step's loss is the mean over every trained token of the global batch, whatever the split into
        # micro-batches and data-parallel ranks: each part is weighted by its share of the trained tokens.
        trained = [int((lab[:, 1:] != -100).sum()) for lab in np.array_split(labels, micro)]
        total = self._all_sum(float(sum(trained)))
        loss_sum = 0.0
        for ids, lab, n in zip(np.array_split(input_ids, micro), np.array_split(labels, micro), trained):
            ids = torch.as_tensor(ids, dtype=torch.long, device=device)
            lab = torch.as_tensor(lab, dtype=torch.long, device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
                part = self.model(input_ids=ids, labels=lab).loss * (n / total)
            (part * self.world_size).backward()  # DDP averages gradients over ranks; this undoes the 1/world
            loss_sum = loss_sum + float(part.detach())
        loss = torch.tensor(self._all_sum(loss_sum))
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
        lr = learning_rate(self.config.schedule, self.optimizer_step, self.config.training.max_steps)
        norm = norm.detach()
        finite = bool(torch.isfinite(loss)) and bool(torch.isfinite(norm))
        if finite:
            clip = self.config.training.max_grad_norm
            coef = min(1.0, clip / (max(float(norm), clip) + 1e-6))
            for g in grads:
                g.mul_(coef)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.optimizer_step += 1
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item(), "lr": lr, "grad_norm": norm.item(), "skipped": not finite,
                "tokens": int((input_ids[:, :-1] != 0).sum())}

    def _all_sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = self.torch.tensor([value], dtype=self.torch.float64, device=next(self.model.parameters()).device)
        self.torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def _module(self) -> Any:
        return getattr(self.model, "module", getattr(self.model, "_orig_mod", self.model))

    def save(self, directory: Path) -> None:
        """Weights (safetensors), AdamW state and the optimizer's step (which drives the schedule)."""
        from safetensors.torch import save_file

        if self.rank:
            return
        state = {k: v.detach().contiguous().cpu() for k, v in self._module().state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        self.torch.save({"optimizer": self.optimizer.state_dict(), "rng": self.torch.get_rng_state()},
                        directory / "optimizer.pt")
        (directory / "step.json").write_text(json.dumps({"optimizer_step": self.optimizer_step}))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        path = directory / "model.safetensors"
        if not path.is_file():
            raise MindcodeError(f"{directory}: no model.safetensors (not a gpu-backend checkpoint)")
        missing, unexpected = self._module().load_state_dict(load_file(str(path)), strict=False)
        if [m for m in missing if not m.endswith("rotary_emb.inv_freq")] or unexpected:
            raise MindcodeError(f"{path}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        state = self.torch.load(directory / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.torch.set_rng_state(state["rng"])
        self.optimizer_step = json.loads((directory / "step.json").read_text())["optimizer_step"]

    def export(self, directory: Path) -> None:
        """The trained model as an HF directory (``final/``: config.json + model.safetensors)."""
        self._module().save_pretrained(str(directory), safe_serialization=True)
