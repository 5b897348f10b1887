"""Training step on PyTorch: transformers' LlamaForCausalLM with the same math as the ascend backend's MindFormers
step: AdamW (decoupled decay on matrices only, bias correction), MindFormers' CosineWithWarmUpLR formula, and
MindFormers' global-norm clipping (``g * c / (max(norm, c) + 1e-6)``), in any ``parallel_config`` layout.

The model is built on the meta device, split into this rank's pipeline stage, tensor-parallelized and sharded
(``backends/gpu/parallel.py``), then filled from the HF init. Whatever the layout, the step's loss is the mean over
every trained token of the global batch: each rank, micro-batch and pipeline micro-batch adds its tokens' summed
cross entropy divided by the global token count. Master weights and AdamW state are float32; ``torch.precision:
bf16`` computes in bf16 on every layout (FSDP2's mixed-precision policy, else autocast, the pipeline schedule
included) on CUDA and on the CPU; what each rank really computed in is observed and reported
(``summary["precision"]``).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from backends.gpu import checkpoint
from backends.gpu.lora import add_lora, set_adapter
from backends.gpu.model import build_model, checkpoint_dtype, empty_model, materialize
from backends.gpu.parallel import (apply_fsdp, apply_tensor_parallel, check_supported, decoder_layers, device_mesh,
                                   gradients_as_weights, local_device, pipeline_stage_module)
from backends.gpu.precision import training_precision
from backends.gpu.preference import preference_losses, sequence_logps
from mindcode.config import TrainConfig, data_columns, learning_rate
from mindcode.convert.lora import initial_adapter
from mindcode.errors import MindcodeError
from mindcode.parallel import check_model, data_parallel_sharding, resolve
from mindcode.train.step_math import decay_groups, input_tokens
from mindcode.train.preference import as_pairs, pair_rows


def _pairs(values: Any) -> np.ndarray:
    return as_pairs(values.float().cpu().numpy())


def checkpoint_layers(model: Any, every: int) -> None:
    """Activation checkpointing (non-reentrant) of every ``every``-th decoder layer, counted from layer 0: with 1
    every layer, else torchtitan's selective activation checkpointing by layer (the others keep their activations)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for index, layer in enumerate(decoder_layers(model)):
        layer.gradient_checkpointing = index % every == 0


def compile_layers(model: Any) -> None:
    """``torch.compile`` each decoder layer on its own (torchtitan's way): one graph serves every layer, inside
    FSDP2's per-layer units and pipeline stages."""
    for layer in decoder_layers(model):
        layer.compile()


def _local(tensor: Any) -> Any:
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def token_loss_sum(logits: Any, targets: Any) -> Any:
    """Summed next-token cross entropy over the trained targets (``-100`` elsewhere), in float32."""
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
                                             reduction="sum")


class Trainer:
    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1):
        self.config = config
        t, o = config.training, config.optimizer
        shape = config.model.shape()
        where = f"{config.source}: parallel_config"
        self.layout = layout = resolve(config.parallel_config, world_size, where)
        check_model(layout, shape, config.model.seq_length, t.batch_size, where)
        check_supported(layout, config.torch, config.lora is not None, config.preference_stage,
                        shape.tie_word_embeddings)
        rows = t.batch_size // layout.data_parallel
        if rows % t.gradient_accumulation_steps or (rows // t.gradient_accumulation_steps) % layout.micro_batch_num:
            raise MindcodeError(f"{where}: each data-parallel rank's {rows} rows do not split into "
                                f"training.gradient_accumulation_steps {t.gradient_accumulation_steps} x "
                                f"micro_batch_num {layout.micro_batch_num} equal parts")
        self.rank, self.world_size = rank, world_size
        self.coords = layout.coords(rank)
        self.data_shard = (self.coords.data, layout.data_parallel)  # the sampler's rank and size
        device = local_device()
        self.device = str(device)
        self.mesh = device_mesh(layout, device)
        self.fsdp = data_parallel_sharding(config, layout, device.type)[0]  # the rule mindcode plan follows
        self.precision = training_precision(config, device.type)
        self.vocab_parallel_loss = config.torch.splits_logits(layout, config.preference_stage)
        self._local_vocab: int | None = None  # the logits' last dimension on this rank, seen at the first step
        self.init_dtype = checkpoint_dtype(t.init)
        torch.manual_seed(t.seed + self.coords.data)  # dropout: each data-parallel rank its own masks
        self.model = self._build(shape, device)
        named = [(n, p) for n, p in self._module().named_parameters() if p.requires_grad]  # LoRA: adapters only
        decay, rest = decay_groups(named)
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}],
                                           lr=config.schedule.learning_rate, betas=tuple(o.betas), eps=o.eps,
                                           fused=device.type == "cuda")  # CUDA: one fused kernel for the update
        self.optimizer_step = 0
        self.summary = {"parallel": layout.as_dict(), "data_parallel": config.torch.distributed,
                        "optimizer_groups": {"weight_decay": int(self._sum(len(decay), "pp")),  # all stages'
                                             "no_weight_decay": int(self._sum(len(rest), "pp"))}}
        self.autocast = self.precision.compute == "bfloat16" and not self.fsdp  # FSDP2's policy casts by itself
        if device.type == "cuda":  # fp32 matrix products in TF32 (bf16 ones are unaffected)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        self._observed: dict[str, str] = {}
        self._unsharded: int | None = None  # FSDP2's unsharded gradients between micro-batches, measured once
        self._hooks = [layer.mlp.register_forward_hook(self._observe) for layer in decoder_layers(self._module())]
        self.schedule = self._pipeline(device) if layout.pipeline_stage > 1 else None
        folder = Path(config.data.npy)
        names = data_columns(config, {p.stem for p in folder.glob("*.npy")})
        self.columns = [np.load(folder / f"{c}.npy", mmap_mode="r") for c in names]
        self.num_rows = len(self.columns[0])

    def _build(self, shape: Any, device: Any) -> Any:
        """Meta model -> pipeline stage -> tensor parallel -> activation checkpointing -> FSDP2 -> this rank's
        weights from the init -> DDP (torchtitan's order)."""
        config, layout, t = self.config, self.layout, self.config.training
        lora = config.lora
        adapter = initial_adapter(shape, lora.rank, lora.alpha, lora.target_modules, t.seed) if lora else None
        if config.torch.load_in_4bit:  # QLoRA: bitsandbytes quantizes while loading, on this rank's GPU
            model = build_model(shape, t.init, device, load_in_4bit=True)
            if config.torch.gradient_checkpointing:
                checkpoint_layers(model, config.torch.checkpoint_every)
            model = add_lora(model, lora)
            set_adapter(model, adapter)
            if config.torch.compile:
                compile_layers(model)
        else:
            model = empty_model(shape)
            if config.torch.gradient_checkpointing:
                checkpoint_layers(model, config.torch.checkpoint_every)
            if lora is not None:
                model = add_lora(model, lora)
                frozen = getattr(torch, self.precision.frozen)
                for param in model.parameters():  # on the meta device: the init is read straight into this dtype
                    if not param.requires_grad:
                        param.data = param.data.to(frozen)
            if layout.pipeline_stage > 1:
                model = pipeline_stage_module(model, layout, self.coords.pipeline)
            if layout.model_parallel > 1:
                apply_tensor_parallel(model, layout, self.mesh["tp"], vocab_parallel_loss=self.vocab_parallel_loss)
            if config.torch.compile:
                compile_layers(model)
            if self.fsdp:
                apply_fsdp(model, self.mesh["dp"], self.precision.compute, layout.pipeline_stage > 1)
            materialize(model, device, t.init)
            if adapter is not None:
                set_adapter(model, adapter)
        if layout.data_parallel > 1 and not self.fsdp:
            model = torch.nn.parallel.DistributedDataParallel(
                model, process_group=self.mesh["dp"].get_group(), gradient_as_bucket_view=True,  # no 2nd grad copy
                device_ids=[device.index] if device.type == "cuda" else None)
        return model

    def _pipeline(self, device: Any) -> Any:
        """This rank's ``torch.distributed.pipelining`` stage and its schedule over ``micro_batch_num`` micro-batches;
        gradients are summed over micro-batches (the loss is already token-weighted)."""
        from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

        stage = PipelineStage(self.model, self.coords.pipeline, self.layout.pipeline_stage, device,
                              group=self.mesh["pp"].get_group())
        kind = {"1f1b": Schedule1F1B, "gpipe": ScheduleGPipe}[self.config.torch.pipeline_schedule]
        return kind(stage, n_microbatches=self.layout.micro_batch_num, scale_grads=False,
                    loss_fn=lambda logits, targets: token_loss_sum(logits, targets) * self._loss_scale)

    def batches(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.sort(indices)  # mmap reads in file order, then back to the sampler's order
        back = np.argsort(np.argsort(indices))
        rows = [np.asarray(column[order])[back] for column in self.columns]
        if len(rows) == 4:  # preference pairs: each chosen row followed by its rejected row
            return pair_rows(rows[0], rows[2]), pair_rows(rows[1], rows[3])
        return rows[0], rows[1]

    def fit(self, start: int, stop: int, batch_at: Any, on_step: Any) -> None:
        """Optimizer steps ``start..stop-1`` in a Python loop (see ``mindcode.train.loop``)."""
        for step in range(start, stop):
            arrays = batch_at(step)
            tick = time.perf_counter()
            m = self.step(*arrays)
            on_step(step, m, time.perf_counter() - tick)
        self.summary["precision"] = self.precision_report()
        # the head's output each rank held: the vocabulary slice under loss_parallel, else the whole vocabulary
        self.summary["logits"] = {"vocab_parallel_loss": self.vocab_parallel_loss, "local_vocab": self._local_vocab}

    def step(self, input_ids: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> dict[str, Any]:
        self.model.train()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if reference is None:
            loss, extra = self._sft_backward(input_ids, labels), {}
        else:
            loss, extra = self._preference_backward(input_ids, labels, reference)
        result = {**self._update(loss), **extra, "tokens": input_tokens(input_ids)}
        if torch.cuda.is_available():
            result["device_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return result

    def logps(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and token counts of pairs, ``[b, 2]`` each, without training."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            sums, counts = sequence_logps(self.model, *self._tensors(input_ids, labels))
        return _pairs(sums), _pairs(counts)

    def _tensors(self, *arrays: np.ndarray) -> list[Any]:
        return [torch.as_tensor(np.asarray(a), dtype=torch.long, device=self.device) for a in arrays]

    def _autocast(self) -> Any:
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.autocast)

    def _observe(self, module: Any, args: Any, output: Any) -> None:
        """The dtype a decoder layer's MLP really computed in (its output), noted once."""
        self._observed.setdefault("activations", str(output.dtype).removeprefix("torch."))

    def precision_report(self) -> dict[str, Any]:
        """Per rank (gathered from all ranks): the dtype its decoder layers computed in, its master weights' and
        the gradient reduction's."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        params = [p for p in self._module().parameters() if p.requires_grad]
        master = str(params[0].dtype).removeprefix("torch.") if params else None
        reduce = "float32" if self.precision.compute == "bfloat16" and self.fsdp else master  # FSDP2's reduce_dtype
        mine = {"rank": self.rank, "activations": self._observed.get("activations"), "master_weights": master,
                "gradient_reduce": reduce if self.layout.data_parallel > 1 else None}
        ranks = [mine]
        if dist.is_initialized():
            ranks = [None] * self.world_size
            dist.all_gather_object(ranks, mine)
        return {"compute": self.precision.compute, "master": self.precision.master, "per_rank": ranks}

    def _gradient_sync(self, enabled: bool) -> Any:
        """Data-parallel gradient reduction only on the last micro-batch of a step. (With pipeline stages torch's
        PipelineStage decides it: it reduces at the end of each schedule step, i.e. once per accumulation part.)"""
        if self.fsdp:
            if enabled and self.config.training.gradient_accumulation_steps > 1 and self._unsharded is None:
                self._unsharded = self._unsharded_gradient_bytes()  # what the earlier micro-batches left behind
            self.model.set_requires_gradient_sync(enabled)
            return contextlib.nullcontext()
        if isinstance(self.model, torch.nn.parallel.DistributedDataParallel) and not enabled:
            return self.model.no_sync()
        return contextlib.nullcontext()

    def _sft_backward(self, input_ids: np.ndarray, labels: np.ndarray) -> float:
        micro = self.config.training.gradient_accumulation_steps
        parts = list(zip(np.array_split(input_ids, micro), np.array_split(labels, micro)))
        total = self._sum(float(sum(int((lab[:, 1:] != -100).sum()) for _, lab in parts)), "dp")
        # DDP and FSDP average gradients over the data-parallel ranks; the factor dp undoes that average
        dp = self.layout.data_parallel
        self._loss_scale = dp / max(total, 1.0)
        loss: Any = 0.0  # kept on the device until the step ends: one host sync per step, not per micro-batch
        for i, (ids, lab) in enumerate(parts):
            ids, lab = self._tensors(ids, lab)
            with self._gradient_sync(i == micro - 1):
                if self.schedule is not None:
                    loss += self._pipeline_backward(ids, lab)
                    continue
                with self._autocast():
                    logits = self.model(input_ids=ids[:, :-1]).logits
                with self._loss_parallel():  # the cross entropy and its backward over vocabulary shards
                    part = token_loss_sum(logits, lab[:, 1:]) * self._loss_scale
                    part.backward()
                if self._local_vocab is None:
                    self._local_vocab = _local(logits).shape[-1]
                loss = loss + part.detach()
        return self._sum(self._sum(float(loss) / dp, "dp"), "pp")

    def _loss_parallel(self) -> Any:
        if not self.vocab_parallel_loss:
            return contextlib.nullcontext()
        from torch.distributed.tensor.parallel import loss_parallel

        return loss_parallel()

    def _pipeline_backward(self, ids: Any, lab: Any) -> float:
        """One pass of the pipeline schedule (forward and backward of every micro-batch); the loss is seen by the
        last stage only, the others add 0."""
        last = self.coords.pipeline == self.layout.pipeline_stage - 1
        losses: list[Any] = []
        with self._autocast():  # the schedule runs the stage's forwards: bf16 there too
            if self.coords.pipeline == 0:
                self.schedule.step(ids[:, :-1])
            elif last:
                self.schedule.step(target=lab[:, 1:], losses=losses)
            else:
                self.schedule.step()
        return float(sum(float(x.detach()) for x in losses)) if last else 0.0

    def _preference_backward(self, input_ids, labels, reference) -> tuple[float, dict[str, np.ndarray]]:
        """The pairs' mean loss over the global batch, in micro-batches of whole pairs; gradients accumulated."""
        pairs = len(reference)
        micro = self.config.training.gradient_accumulation_steps
        dp = self.layout.data_parallel
        chosen_tokens = self._sum(float((labels[0::2, 1:] != -100).sum()), "dp")
        total_pairs = pairs * dp
        loss_sum, sums, counts = 0.0, [], []
        for i, part in enumerate(np.array_split(np.arange(pairs), micro)):
            rows = np.stack([2 * part, 2 * part + 1], axis=1).reshape(-1)  # whole pairs, in pair_rows order
            ids, lab = self._tensors(input_ids[rows], labels[rows])
            ref = torch.as_tensor(reference[part], dtype=torch.float32, device=ids.device)
            with self._gradient_sync(i == micro - 1):
                with self._autocast():
                    logps, n = sequence_logps(self.model, ids, lab)
                losses = preference_losses(self.config, logps, n, ref)
                chosen = logps[0::2]
                part_loss = losses.sum() / total_pairs - self.config.preference.rpo_alpha * chosen.sum() / chosen_tokens
                (part_loss * dp).backward()  # DDP/FSDP average gradients over ranks; this undoes the 1/dp
            loss_sum += float(part_loss.detach())
            sums.append(_pairs(logps.detach()))
            counts.append(_pairs(n))
        return self._sum(loss_sum, "dp"), {"logps": np.concatenate(sums), "counts": np.concatenate(counts)}

    def _update(self, loss: float) -> dict[str, Any]:
        """MindFormers' clipping by the global norm, the schedule's learning rate and one AdamW step, unless anything
        is not finite."""
        if self.layout.model_parallel > 1:
            gradients_as_weights(self.model)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = float(self._global_norm(grads))
        lr = learning_rate(self.config.schedule, self.optimizer_step, self.config.training.max_steps)
        finite = np.isfinite(loss) and np.isfinite(norm)
        if finite:
            clip = self.config.training.max_grad_norm
            coef = min(1.0, clip / (max(norm, clip) + 1e-6))
            if coef < 1.0:  # one launch per kind of tensor, not one per parameter
                from torch.distributed.tensor import DTensor

                for kind in (True, False):
                    group = [g for g in grads if isinstance(g, DTensor) is kind]
                    if group:
                        torch._foreach_mul_(group, coef)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.optimizer_step += 1
            if "memory" not in self.summary:
                self.summary["memory"] = self._measure()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss, "lr": lr, "grad_norm": norm, "skipped": not finite}

    def _unsharded_gradient_bytes(self) -> int:
        """The unsharded gradients FSDP2 holds between micro-batches while gradient sync is off (its accumulated
        float32 copies, or the unsharded parameters' own gradients), summed over this rank's FSDP modules."""
        total = 0
        for module in self.model.modules():
            state = module._get_fsdp_state() if hasattr(module, "_get_fsdp_state") else None
            group = getattr(state, "_fsdp_param_group", None) if state is not None else None
            for param in group.fsdp_params if group is not None else []:
                grad = param.unsharded_accumulated_grad
                if grad is None:
                    grad = getattr(param, "_unsharded_param", None)
                    grad = grad.grad if grad is not None else None
                total += grad.numel() * grad.element_size() if grad is not None else 0
        return total

    def _measure(self) -> dict[str, Any]:
        """Every rank's summed tensor bytes after its first update: its shards of the weights, their gradients and
        AdamW's moments (what ``mindcode plan`` predicts exactly), and the CUDA allocator's peak."""
        from torch.distributed.tensor import DTensor

        def nbytes(tensors: Any) -> int:
            local = [t.to_local() if isinstance(t, DTensor) else t for t in tensors]
            return sum(t.numel() * t.element_size() for t in local)

        params = list(self.model.parameters())
        moments = [state[k] for state in self.optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")]
        mine = {"rank": self.rank, "weights": nbytes(params),
                "gradients": nbytes(p.grad for p in params if p.grad is not None), "optimizer": nbytes(moments)}
        if self._unsharded is not None:
            mine["unsharded_gradients"] = self._unsharded
        if self.schedule is not None:  # torch's PipelineStage: a receive buffer per micro-batch, made up front
            stage = self.schedule._stage
            buffers = [info.buffer for infos in (*stage.args_recv_info.values(), *stage.grad_recv_info.values())
                       for info in infos if info.buffer is not None]
            mine["pipeline_buffers"] = nbytes(buffers)
        if torch.cuda.is_available():
            mine["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
        ranks = [mine]
        if dist.is_initialized():
            ranks = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, mine)
        return {"measured_per_rank": ranks}

    def _global_norm(self, grads: list[Any]) -> Any:
        """The L2 norm of every gradient of the model, whatever shards them: DTensor gradients (FSDP2, tensor
        parallel) by DTensor's own reduction per mesh and placement, then summed over pipeline stages."""
        from torch.distributed.tensor import DTensor

        groups: dict[Any, list[Any]] = {}
        for g in grads:
            key = (id(g.device_mesh), tuple(g.placements)) if isinstance(g, DTensor) else None
            groups.setdefault(key, []).append(g)
        square = torch.zeros((), dtype=torch.float64, device=self.device)
        for key, members in groups.items():
            norm = torch.nn.utils.get_total_norm(members, norm_type=2.0)
            norm = norm.full_tensor() if isinstance(norm, DTensor) else norm
            square = square + norm.double() ** 2
        if self.layout.pipeline_stage > 1:
            dist.all_reduce(square, group=self.mesh["pp"].get_group())
        return square.sqrt()

    def sum_over_data_parallel(self, values: np.ndarray) -> np.ndarray:
        if self.mesh is None or self.mesh["dp"].size() == 1:
            return values
        tensor = torch.from_numpy(np.ascontiguousarray(values)).to(self.device)
        dist.all_reduce(tensor, group=self.mesh["dp"].get_group())
        return tensor.cpu().numpy()

    def _sum(self, value: float, dim: str) -> float:
        """``value`` summed over the ranks of mesh dimension ``dim`` (``dp`` or ``pp``)."""
        if self.mesh is None or self.mesh[dim].size() == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, group=self.mesh[dim].get_group())
        return float(tensor.item())

    def _module(self) -> Any:
        return getattr(self.model, "module", self.model)  # DDP wraps the model; FSDP2 and compile do not

    def save(self, directory: Path) -> None:
        """Every rank writes its shards of the trained weights and AdamW state (``torch.distributed.checkpoint``;
        frozen LoRA base weights are left out, they come from ``training.init``), its RNG, and the optimizer step."""
        checkpoint.save(self._module(), self.optimizer, directory, self.rank, self.optimizer_step, self.layout)

    def load(self, directory: Path) -> None:
        self.optimizer_step = checkpoint.load(self._module(), self.optimizer, directory, self.rank, self.layout)

    def export(self, directory: Path) -> None:
        """The trained model as an HF directory in the init's dtype (written from the shards, never gathered on one
        device), or with LoRA the PEFT adapter (``adapter_config.json`` + ``adapter_model.safetensors``)."""
        if self.config.lora is not None:
            checkpoint.export_adapter(self._module(), self.config, directory, self.rank)
        else:
            checkpoint.export_hf(self._module(), self.config.model.shape(), self.init_dtype, directory, self.rank)
