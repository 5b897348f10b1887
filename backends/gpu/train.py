"""Training step on PyTorch: transformers' LlamaForCausalLM with the same math as the ascend backend's MindFormers
step: AdamW (decoupled decay on matrices only, bias correction), MindFormers' CosineWithWarmUpLR formula, and
MindFormers' global-norm clipping (``g * c / (max(norm, c) + 1e-6)``). bf16 autocast on CUDA, float32 on the CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from backends.gpu.lora import add_lora
from backends.gpu.preference import preference_losses, sequence_logps
from mindcode.config import TrainConfig, data_columns, learning_rate
from mindcode.convert.lora import initial_adapter
from mindcode.errors import MindcodeError
from mindcode.train.preference import as_pairs


def _pairs(values: Any) -> np.ndarray:
    return as_pairs(values.float().cpu().numpy())


class Trainer:
    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1):
        import torch

        from backends.gpu.model import build_model

        self.config, self.torch = config, torch
        t, o = config.training, config.optimizer
        torch.manual_seed(t.seed)
        model = build_model(config.model.shape(), t.init or None, load_in_4bit=config.torch.load_in_4bit)
        self.device = str(next(model.parameters()).device)
        if config.torch.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        if config.lora is not None:
            lora = config.lora
            model = add_lora(model, lora, initial_adapter(config.model.shape(), lora.rank, lora.alpha,
                                                          lora.target_modules, t.seed))
        self.model = model
        self.rank, self.world_size = rank, world_size
        if world_size > 1:
            self.model = self._distributed(model)
        trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # LoRA: the adapters only
        decay = [p for n, p in trained if p.ndim > 1 and not n.endswith(".bias")]
        rest = [p for n, p in trained if not (p.ndim > 1 and not n.endswith(".bias"))]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}],
                                           lr=config.schedule.learning_rate, betas=tuple(o.betas), eps=o.eps)
        self.optimizer_step = 0
        self.autocast = self.device.startswith("cuda") and config.torch.precision == "bf16"
        if config.torch.compile:
            self.model = torch.compile(self.model)
        self.columns = [np.load(Path(config.data.npy) / f"{c}.npy", mmap_mode="r") for c in data_columns(config)]
        self.num_rows = len(self.columns[0])

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
        rows = [np.asarray(column[order])[back] for column in self.columns]
        if len(rows) == 4:  # preference pairs: the chosen rows, then the rejected rows
            return np.concatenate([rows[0], rows[2]]), np.concatenate([rows[1], rows[3]])
        return rows[0], rows[1]

    def fit(self, start: int, stop: int, batch_at: Any, on_step: Any) -> None:
        """Optimizer steps ``start..stop-1`` in a Python loop (see ``mindcode.train.loop``)."""
        for step in range(start, stop):
            arrays = batch_at(step)
            tick = time.perf_counter()
            m = self.step(*arrays)
            on_step(step, m, time.perf_counter() - tick)

    def step(self, input_ids: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> dict[str, Any]:
        self.model.train()
        if reference is None:
            loss, extra = self._sft_backward(input_ids, labels), {}
        else:
            loss, extra = self._preference_backward(input_ids, labels, reference)
        return {**self._update(loss), **extra, "tokens": int((input_ids[:, :-1] != 0).sum())}

    def logps(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and token counts of pairs, ``[b, 2]`` each, without training."""
        self.model.eval()
        with self.torch.no_grad(), self._autocast():
            sums, counts = sequence_logps(self.model, *self._tensors(input_ids, labels))
        return _pairs(sums), _pairs(counts)

    def _tensors(self, *arrays: np.ndarray) -> list[Any]:
        device = next(self.model.parameters()).device
        return [self.torch.as_tensor(a, dtype=self.torch.long, device=device) for a in arrays]

    def _autocast(self) -> Any:
        return self.torch.autocast("cuda", dtype=self.torch.bfloat16, enabled=self.autocast)

    def _preference_backward(self, input_ids, labels, reference) -> tuple[Any, dict[str, np.ndarray]]:
        """The pairs' mean loss over the global batch, in micro-batches of whole pairs; gradients accumulated."""
        torch = self.torch
        pairs = len(reference)
        micro = self.config.training.gradient_accumulation_steps
        chosen_tokens = self._all_sum(float((labels[:pairs, 1:] != -100).sum()))
        total_pairs = pairs * self.world_size
        loss_sum, sums, counts = 0.0, [], []
        for part in np.array_split(np.arange(pairs), micro):
            rows = np.concatenate([part, part + pairs])
            ids, lab = self._tensors(input_ids[rows], labels[rows])
            ref = torch.as_tensor(reference[part], dtype=torch.float32, device=ids.device)
            with self._autocast():
                logps, n = sequence_logps(self.model, ids, lab)
            losses = preference_losses(self.config, logps, n, ref)
            chosen = logps[: len(part)]
            part_loss = losses.sum() / total_pairs - self.config.preference.rpo_alpha * chosen.sum() / chosen_tokens
            (part_loss * self.world_size).backward()  # DDP averages gradients over ranks; this undoes the 1/world
            loss_sum += float(part_loss.detach())
            sums.append(_pairs(logps.detach()))
            counts.append(_pairs(n))
        return torch.tensor(self._all_sum(loss_sum)), {"logps": np.concatenate(sums), "counts": np.concatenate(counts)}

    def _sft_backward(self, input_ids: np.ndarray, labels: np.ndarray) -> Any:
        torch = self.torch
        micro = self.config.training.gradient_accumulation_steps
        # The step's loss is the mean over every trained token of the global batch, whatever the split into
        # micro-batches and data-parallel ranks: each part is weighted by its share of the trained tokens.
        trained = [int((lab[:, 1:] != -100).sum()) for lab in np.array_split(labels, micro)]
        total = self._all_sum(float(sum(trained)))
        loss_sum = 0.0
        for ids, lab, n in zip(np.array_split(input_ids, micro), np.array_split(labels, micro), trained):
            ids, lab = self._tensors(ids, lab)
            with self._autocast():
                part = self.model(input_ids=ids, labels=lab).loss * (n / total)
            (part * self.world_size).backward()  # DDP averages gradients over ranks; this undoes the 1/world
            loss_sum = loss_sum + float(part.detach())
        return torch.tensor(self._all_sum(loss_sum))

    def _update(self, loss: Any) -> dict[str, Any]:
        """MindFormers' clipping, the schedule's learning rate and one AdamW step, unless anything is not finite."""
        torch = self.torch
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
        return {"loss": loss.item(), "lr": lr, "grad_norm": norm.item(), "skipped": not finite}

    def _all_sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = self.torch.tensor([value], dtype=self.torch.float64, device=next(self.model.parameters()).device)
        self.torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def _module(self) -> Any:
        return getattr(self.model, "module", getattr(self.model, "_orig_mod", self.model))

    def _trained(self) -> dict[str, Any]:
        return {n: p for n, p in self._module().named_parameters() if p.requires_grad}

    def save(self, directory: Path) -> None:
        """Trained weights (safetensors; frozen LoRA base weights are left out, they come from ``training.init``),
        AdamW state and the optimizer's step (which drives the schedule)."""
        from safetensors.torch import save_file

        if self.rank:
            return
        state = {k: v.detach().contiguous().cpu() for k, v in self._trained().items()}
        save_file(state, str(directory / "model.safetensors"))
        self.torch.save({"optimizer": self.optimizer.state_dict(), "rng": self.torch.get_rng_state()},
                        directory / "optimizer.pt")
        (directory / "step.json").write_text(json.dumps({"optimizer_step": self.optimizer_step}))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        path = directory / "model.safetensors"
        if not path.is_file():
            raise MindcodeError(f"{directory}: no model.safetensors (not a gpu-backend checkpoint)")
        state = load_file(str(path))
        missing, unexpected = sorted(set(self._trained()) - set(state)), sorted(set(state) - set(self._trained()))
        if missing or unexpected:
            raise MindcodeError(f"{path}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self._module().load_state_dict(state, strict=False)
        state = self.torch.load(directory / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.torch.set_rng_state(state["rng"])
        self.optimizer_step = json.loads((directory / "step.json").read_text())["optimizer_step"]

    def export(self, directory: Path) -> None:
        """The trained model as an HF directory (``final/``: config.json + model.safetensors), or with LoRA the
        PEFT adapter (``adapter_config.json`` + ``adapter_model.safetensors``)."""
        self._module().save_pretrained(str(directory), safe_serialization=True)
