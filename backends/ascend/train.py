"""Training on MindSpore through MindFormers' Trainer: its LlamaForCausalLM, AdamW, CosineWithWarmUpLR and
MFTrainOneStepCell (loss scaling, global-norm clipping), driven by ``mindformers.Trainer`` over a dataset in the
shared sampler's order, with a callback that hands every step to mindcode's loop (metrics, NaN policy, checkpoints).

The MindFormers config the Trainer runs is written to ``OUTPUT_DIR/mindformers.yaml`` (MindFormers' own format) and
read back with ``MindFormerConfig``. On MindSpore's CPU target the step cell's overflow check is replaced by an
IsFinite one (the stock check calls ``NPUGetFloatStatusV2``, an Ascend-only op), registered with MindFormers as the
``CpuSafeTrainOneStepCell`` wrapper; nothing else changes. On Ascend, MindFormers' own cell is used as is.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from backends.ascend.checkpoint import save_checkpoint
from backends.ascend.lora import adapter_arrays, add_lora
from backends.ascend.mindformers_config import CPU_WRAPPER, mindformers_config, write_yaml
from backends.ascend.model import build_model, model_settings
from backends.ascend.parallel import check_target, data_shard, semi_auto, strategy_dir
from backends.ascend.preference import preference_loss_cell, sequence_logps_cell
from mindcode.config import TrainConfig, data_columns
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from mindcode.convert.safetensors_io import checkpoint_dtype
from mindcode.convert.lora import initial_adapter, peft_config
from mindcode.errors import MindcodeError
from mindcode.parallel import check_model, resolve
from mindcode.train.once import make_once
from mindcode.train.preference import as_pairs


def _register_cpu_safe_step_cell() -> None:
    """Register ``CpuSafeTrainOneStepCell`` (once) as a MindFormers wrapper type."""
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
    from mindformers.wrapper.wrapper import MFTrainOneStepCell
    from mindspore import Tensor, ops

    if MindFormerRegister.is_exist(MindFormerModuleType.WRAPPER, CPU_WRAPPER):
        return

    class CpuSafeTrainOneStepCell(MFTrainOneStepCell):
        """MFTrainOneStepCell with an IsFinite overflow check that MindSpore's CPU kernels support."""

        def start_overflow_check(self, pre_cond, compute_input):
            return Tensor(False), compute_input

        def get_overflow_status(self, status, compute_output):
            return ops.stack([ops.logical_not(ops.isfinite(g).all()) for g in compute_output]).any()

    MindFormerRegister.register_cls(CpuSafeTrainOneStepCell, module_type=MindFormerModuleType.WRAPPER,
                                    alias=CPU_WRAPPER)


def _as_pretrained(cell: Any, model: Any) -> Any:
    """A loss cell wrapped as a MindFormers ``PreTrainedModel`` (what its Trainer accepts), the way MindFormers'
    own ``LoraModel`` wraps a model; the parameter names stay the model's."""
    from mindformers.models.modeling_utils import PreTrainedModel

    class Objective(PreTrainedModel):
        def __init__(self):
            super().__init__(model.config, auto_prefix=False)
            self.objective = cell

        def construct(self, input_ids, labels, reference=None):  # the dataset's column names (passed by name)
            if reference is None:
                return self.objective(input_ids, labels)
            return self.objective(input_ids, labels, reference)

    return Objective()


def _token_weighted(network, micro: int, world_size: int):
    """A cell whose loss is the mean over every trained token of the global batch, however the batch is split into
    ``micro`` micro-batches and ``world_size`` data-parallel ranks (the gpu backend computes the same).

    Each part's mean loss is weighted by its share of the trained tokens; with data parallelism the token count is
    all-reduced and the loss scaled by the rank count, since the gradient reducer averages over ranks. MindFormers'
    own accumulation cells need its semi-auto-parallel mode; this one differentiates the same mean in one graph
    (the same arithmetic, without accumulation's memory saving).
    """
    import mindspore as ms
    from mindspore import nn, ops

    class TokenWeightedLoss(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.network = network
            self.all_sum = ops.AllReduce() if world_size > 1 else None

        def construct(self, input_ids, labels):
            size = input_ids.shape[0] // micro
            ids, labs = ops.split(input_ids, size), ops.split(labels, size)
            total, tokens = 0.0, 0.0
            for i in range(micro):
                n = ops.cast(ops.not_equal(labs[i][:, 1:], -100), ms.float32).sum()
                total = total + self.network(ids[i], labs[i]) * n
                tokens = tokens + n
            if self.all_sum is not None:
                tokens = self.all_sum(tokens.reshape((1,))).reshape(())
            return total * world_size / tokens

    return TokenWeightedLoss()


def decays(name: str, shape: tuple[int, ...]) -> bool:
    """Weight decay on matrices only, as MindFormers groups parameters (no decay on 1-D norms and biases)."""
    return len(shape) > 1 and not name.endswith(".bias")


class Trainer:
    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1):
        ms = runtime.mindspore()
        self.config = config
        t, s, o = config.training, config.schedule, config.optimizer
        model_config = config.model.shape()
        self.device = runtime.device_target()
        where = f"{config.source}: parallel_config"
        self.layout = resolve(config.parallel_config, world_size, where)
        check_model(self.layout, model_config, config.model.seq_length, t.batch_size, where)
        check_target(self.layout, self.device, where, lora=config.lora is not None)
        self.rank, self.world_size = rank, world_size
        self.semi_auto = semi_auto(self.layout)
        self.data_shard = data_shard(self.layout, rank)
        if world_size > 1 and not self.semi_auto:  # msrun, data parallel: the step cell's reducer averages ranks
            from mindspore import ParallelMode

            ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                         device_num=world_size,
                                         enable_parallel_optimizer=config.mindformers.enable_parallel_optimizer
                                         and self.device != "CPU")
        runtime.mindformers()
        from mindformers.core.lr.lr_schedule import CosineWithWarmUpLR
        from mindformers.core.optim import AdamW

        self.mf_config = self._mindformers_config()
        ms.set_seed(t.seed)
        init = self._converted_init()
        settings, self.overridden = model_settings(config.model.model_config, self.device)
        extra = {}
        if self.semi_auto:  # the layout inside the model: MindFormers' TransformerOpParallelConfig and recompute
            from mindformers.core.parallel_config import build_parallel_config

            build_parallel_config(self.mf_config)
            extra = {"parallel_config": self.mf_config.parallel_config}
        self.model = build_model(model_config, config.model.seq_length, init, settings=settings, **extra)
        if config.lora is not None:
            lora = config.lora
            add_lora(self.model, lora, initial_adapter(model_config, lora.rank, lora.alpha, lora.target_modules, t.seed))
        self.frozen = {p.name for p in self.model.get_parameters() if not p.requires_grad}
        params = self.model.trainable_params()
        groups = [{"params": [p for p in params if decays(p.name, p.shape)], "weight_decay": o.weight_decay},
                  {"params": [p for p in params if not decays(p.name, p.shape)], "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]  # LoRA trains matrices only
        self.summary = {"parallel": self.layout.as_dict(), "semi_auto_parallel": self.semi_auto,
                        "overridden_settings": self.overridden,
                        "optimizer_groups": {"weight_decay": len(groups[0]["params"]),
                                             "no_weight_decay": len(groups[1]["params"]) if len(groups) > 1 else 0}}
        lr = CosineWithWarmUpLR(learning_rate=s.learning_rate, warmup_steps=s.warmup_steps, total_steps=t.max_steps,
                                lr_end=s.lr_end, warmup_lr_init=s.warmup_lr_init, warmup_ratio=s.warmup_ratio,
                                num_cycles=s.num_cycles)
        self.optimizer = AdamW(groups, learning_rate=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=0.0)
        micro = t.gradient_accumulation_steps
        self.pairs = t.batch_size // self.data_shard[1]
        if config.preference_stage:  # one graph over the rank's pairs (accumulation splits only the gpu backend's)
            self.preference = preference_loss_cell(self.model, config, self.pairs)
            self.network = _as_pretrained(self.preference, self.model)
            self._scores = sequence_logps_cell(self.model)
        elif (micro == 1 and world_size == 1) or self.semi_auto:  # semi-auto: MindFormers' micro-batching cells
            self.network = self.model
        else:
            self.network = _as_pretrained(_token_weighted(self.model, micro, world_size), self.model)
        self._all_sum = None
        if world_size > 1 and not self.semi_auto:
            from mindspore import nn, ops

            class AllSum(nn.Cell):
                def __init__(self):
                    super().__init__()
                    self.op = ops.AllReduce()

                def construct(self, x):
                    return self.op(x)

            self._all_sum = AllSum()
        self.step_cell = None  # MindFormers' wrapper, built by its Trainer; seen by the step callback
        self._ms = ms
        import mindspore.dataset as ds

        self._ds = ds
        self.path = config.data.mindrecord
        from backends.ascend.mindrecord import record_columns

        self.columns = data_columns(config, set(record_columns(self.path)))  # input-only rows: labels = input ids
        self.num_rows = ds.MindDataset(self.path, columns_list=self.columns[:1], shuffle=False).get_dataset_size()

    def _mindformers_config(self) -> Any:
        """Write ``OUTPUT_DIR/mindformers.yaml`` and read it back as MindFormers reads its YAMLs; its context is built
        from it first (graph mode; with semi-auto parallel, the parallel context the model is then built in)."""
        from mindformers import MindFormerConfig, build_context

        out = Path(self.config.training.output_dir)
        path = out / "mindformers.yaml" if self.rank == 0 else out / "mindformers" / f"rank_{self.rank}.yaml"
        write_yaml(mindformers_config(self.config, self.device, self.layout), path)
        mf_config = MindFormerConfig(str(path))
        if self.device == "CPU":
            _register_cpu_safe_step_cell()
        build_context(mf_config)
        return mf_config

    def _converted_init(self) -> Path:
        """The HF init as a MindSpore checkpoint, converted once per host into the run's ``init/`` (each tensor
        keeps its dtype; ``load_into`` casts where the model's parameters differ)."""
        qkv_concat = bool(self.config.model.model_config.get("qkv_concat", False))
        path = Path(self.config.training.output_dir) / "init" / ("model_qkv_concat.ckpt" if qkv_concat else "model.ckpt")
        make_once(path, lambda tmp: convert_hf_to_ms(self.config.training.init, tmp, progress=False,
                                                     qkv_concat=qkv_concat))
        return path

    def batches(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows by index through MindSpore's own MindRecord reader (pairs: the chosen rows, then the rejected)."""
        names = list(dict.fromkeys(self.columns))
        data = self._ds.MindDataset(self.path, columns_list=names, sampler=self._ds.SubsetSampler(indices.tolist()))
        rows = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
        read = {name: np.stack([r[i] for r in rows]) for i, name in enumerate(names)}
        columns = [read[name] for name in self.columns]
        if len(columns) == 4:
            return np.concatenate([columns[0], columns[2]]), np.concatenate([columns[1], columns[3]])
        return columns[0], columns[1]

    def fit(self, start: int, stop: int, batch_at: Any, on_step: Any) -> None:
        """Optimizer steps ``start..stop-1`` by ``mindformers.Trainer`` (see the module docstring)."""
        from mindformers import Trainer

        mf_config = self.mf_config
        names = ["input_ids", "labels"] + (["reference"] if self.config.preference_stage else [])
        dataset = self._ds.GeneratorDataset(_Steps(start, stop, batch_at), column_names=names, shuffle=False,
                                            num_parallel_workers=1, python_multiprocessing=False)
        callback = _step_callback(self, start, on_step)
        trainer = Trainer(args=mf_config, model=self.network, train_dataset=dataset, optimizers=self.optimizer,
                          callbacks=[callback])
        with contextlib.redirect_stdout(io.StringIO()):  # MindFormers pprints the whole config; it is in the YAML
            trainer.train()
        callback.check()

    def step_result(self, outputs: tuple, arrays: tuple) -> dict[str, Any]:
        """The loop's step record from MindFormers' step outputs (loss, overflow, scale, lr, grad norm)."""
        loss, overflow, _scale, lr, grad_norm = outputs
        if self._all_sum is not None:  # each rank holds its share (times the rank count) of the global mean
            loss = self._all_sum(loss.reshape((1,))) / self.world_size
        input_ids = arrays[0]
        result = {"loss": float(loss.asnumpy().reshape(-1)[0]), "lr": float(lr.asnumpy()),
                  "grad_norm": float(grad_norm.asnumpy().reshape(-1)[0]), "skipped": bool(overflow.asnumpy()),
                  "tokens": int((input_ids[:, :-1] != 0).sum())}
        if self.config.preference_stage:
            last = self.preference.last.asnumpy()
            result["logps"], result["counts"] = as_pairs(last[: 2 * self.pairs]), as_pairs(last[2 * self.pairs:])
        return result

    def logps(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and token counts of pairs, ``[b, 2]`` each, without training."""
        ms = self._ms
        self._scores.set_train(False)
        sums, counts = self._scores(ms.Tensor(input_ids, ms.int32), ms.Tensor(labels, ms.int32))
        return as_pairs(sums.asnumpy()), as_pairs(counts.asnumpy())

    def _state_file(self, directory: Path) -> Path:
        """Data parallel: one file (every rank holds the same state); semi-auto parallel: each rank its slices."""
        return directory / f"rank_{self.rank}" / "train_state.ckpt" if self.semi_auto else directory / "train_state.ckpt"

    def save(self, directory: Path) -> None:
        """Trained weights, AdamW moments and the optimizer's step (which drives the schedule), in one .ckpt; frozen
        weights (LoRA's base) are left out: they come from ``training.init``."""
        if self.rank and not self.semi_auto:
            return
        if self.semi_auto:  # ascend: every rank writes into the folder rank 0 made, before rank 0 renames it
            from mindspore.communication.comm_func import barrier

            barrier()
        path = self._state_file(directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ms.save_checkpoint(self.step_cell, str(path), choice_func=lambda name: name not in self.frozen)
        if self.semi_auto:
            barrier()

    def load(self, directory: Path) -> None:
        """Weights and optimizer state back into the network and the optimizer, before MindFormers wraps them."""
        params = self._ms.load_checkpoint(str(self._state_file(directory)))
        missing = set()
        for cell in (self.network, self.optimizer):
            not_loaded, _ = self._ms.load_param_into_net(cell, params)
            missing |= set(not_loaded)
        if missing - self.frozen:
            raise MindcodeError(f"{directory}: checkpoint lacks {sorted(missing - self.frozen)[:5]}")

    def export(self, directory: Path) -> None:
        """The trained weights with MindFormers names in the init's dtype: ``final/model.ckpt``, or with LoRA the
        adapter alone (``final/adapter.ckpt`` + a PEFT-style ``adapter_config.json``, as MindFormers writes one).
        Semi-auto parallel (no LoRA): every rank writes its slices, then rank 0 merges them through the strategy
        files (MindSpore's own checkpoint transform, as ``convert-weight merge-ranks``), in the parameters' dtype."""
        lora = self.config.lora
        if self.semi_auto:
            self._export_merged(directory)
            return
        if self.rank:
            return  # data parallel: every rank holds the same weights
        directory.mkdir(parents=True, exist_ok=True)
        if lora is None:
            dtype = checkpoint_dtype(self.config.training.init)
            save_checkpoint(((p.name, p.asnumpy(), dtype) for p in self.model.get_parameters()),
                            directory / "model.ckpt")
            return
        save_checkpoint(adapter_arrays(self.model), directory / "adapter.ckpt")
        config = peft_config(lora.rank, lora.alpha, lora.target_modules, lora.dropout, self.config.training.init)
        (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")

    def _export_merged(self, directory: Path) -> None:  # ascend: runs on Ascend devices only (semi-auto parallel)
        from mindspore.communication.comm_func import barrier

        from backends.ascend.distributed import merge_ranks

        ranks = Path(self.config.training.output_dir) / "final_ranks"
        (ranks / f"rank_{self.rank}").mkdir(parents=True, exist_ok=True)
        self._ms.save_checkpoint(self.model, str(ranks / f"rank_{self.rank}" / "model.ckpt"))
        barrier()
        if self.rank == 0:
            folder = strategy_dir(self.config.training.output_dir)  # ckpt_strategy_rank_N.ckpt, MindFormers' names
            strategy = folder / "ckpt_strategy_rank_0.ckpt"
            if self.layout.pipeline_stage > 1:  # one strategy file per stage: MindSpore merges them first
                strategy = folder.parent / "merged_strategy.ckpt"
                self._ms.merge_pipeline_strategys(str(folder), str(strategy))
            directory.mkdir(parents=True, exist_ok=True)
            merge_ranks(ranks, strategy, directory / "model.ckpt", progress=False)
        barrier()


class _Steps:
    """The loop's batches as a random-access source for MindSpore's ``GeneratorDataset`` (one item per step)."""

    def __init__(self, start: int, stop: int, batch_at: Any):
        self.start, self.stop, self.batch_at = start, stop, batch_at

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> tuple:
        arrays = self.batch_at(self.start + i)
        return tuple(np.asarray(a, dtype=np.float32 if k == 2 else np.int32) for k, a in enumerate(arrays))


def _step_callback(trainer: Trainer, start: int, on_step: Any) -> Any:
    """A MindSpore callback that hands each finished step to the loop's ``on_step``. An error there (a NaN with
    ``on_nan: stop``) stops the Trainer and is raised again by ``check()`` once it has returned."""
    import time

    from mindspore.train import Callback

    class StepCallback(Callback):
        def __init__(self):
            super().__init__()
            self.error: BaseException | None = None
            self.tick = 0.0

        def on_train_step_begin(self, run_context):
            self.tick = time.perf_counter()

        def on_train_step_end(self, run_context):
            if self.error is not None:
                return
            params = run_context.original_args()
            trainer.step_cell = params.train_network
            step = start + params.cur_step_num - 1
            arrays = [t.asnumpy() for t in params.train_dataset_element]
            try:
                on_step(step, trainer.step_result(params.net_outputs, arrays), time.perf_counter() - self.tick)
            except BaseException as exc:  # noqa: BLE001 - raised again by check()
                self.error = exc
                run_context.request_stop()

        def check(self) -> None:
            if self.error is not None:
                raise self.error

    return StepCallback()
