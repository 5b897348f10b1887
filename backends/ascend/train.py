"""Training on MindSpore through MindFormers' Trainer: its LlamaForCausalLM, AdamW, CosineWithWarmUpLR and
MFTrainOneStepCell (loss scaling, global-norm clipping), driven by ``mindformers.Trainer`` over a dataset in the
shared sampler's order, with a callback that hands every step to mindcode's loop (metrics, NaN policy, checkpoints).

The MindFormers job the Trainer runs is written to ``OUTPUT_DIR/mindformers.yaml`` (MindFormers' own format, see
``mindformers_config.py``) and read back with ``MindFormerConfig``; MindFormers loads the init from it (its
``load_checkpoint``, sliced per rank by ``auto_trans_ckpt`` under semi-auto parallel). On MindSpore's CPU target the
step cell's overflow check is replaced by an IsFinite one (``cells.CpuSafeTrainOneStepCell``; the stock check calls
``NPUGetFloatStatusV2``, an Ascend-only op); nothing else changes. On Ascend, MindFormers' own cell is used as is.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from backends.ascend.checkpoint import load_into, save_checkpoint
from backends.ascend.lora import adapter_arrays, add_lora
from backends.ascend.mindformers_config import init_checkpoint, mindformers_config, write_yaml
from backends.ascend.model import build_model, model_settings
from backends.ascend.parallel import check_target, data_shard, per_token_loss, reported_loss, semi_auto, strategy_dir
from backends.ascend.reference import reference_scores
from mindcode.config import TrainConfig, data_columns
from mindcode.convert import ckpt_io
from mindcode.convert.hf_to_ms import convert_hf_to_ms
from mindcode.convert.safetensors_io import checkpoint_dtype
from mindcode.convert.lora import initial_adapter, peft_config
from mindcode.errors import MindcodeError
from mindcode.parallel import check_model, resolve
from mindcode.train.once import make_once
from mindcode.train.step_math import decay_groups, input_tokens
from mindcode.train.preference import as_pairs, needs_reference_pass, pair_rows


class Trainer:
    def __init__(self, config: TrainConfig, rank: int = 0, world_size: int = 1):
        ms = runtime.mindspore()
        self.config = config
        t = config.training
        self.device = runtime.device_target()
        where = f"{config.source}: parallel_config"
        self.layout = resolve(config.parallel_config, world_size, where)
        check_model(self.layout, config.model.shape(), config.model.seq_length, t.batch_size, where)
        self.semi_auto = semi_auto(self.layout, config.mindformers)
        check_target(self.layout, self.semi_auto, self.device, where, tied=config.model.shape().tie_word_embeddings)
        self.rank, self.world_size = rank, world_size
        self.data_shard = data_shard(self.layout, self.semi_auto, rank)
        self.accumulation = t.gradient_accumulation_steps if self.semi_auto else 1  # MindFormers' accumulation
        self.per_token = per_token_loss(self.layout, self.semi_auto, self.accumulation, config.preference_stage)
        if world_size > 1 and not self.semi_auto:  # msrun, data parallel: the step cell's reducer averages ranks
            from mindspore import ParallelMode

            ms.set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                         device_num=world_size)
        runtime.mindformers()
        from backends.ascend import cells

        self._ms, self._cells = ms, cells
        import mindspore.dataset as ds

        self._ds = ds
        self.path = config.data.mindrecord
        from backends.ascend.mindrecord import record_columns

        self.columns = data_columns(config, set(record_columns(self.path)))  # input-only rows: labels = input ids
        self.num_rows = ds.MindDataset(self.path, columns_list=self.columns[:1], shuffle=False).get_dataset_size()
        self.mf_config = self._mindformers_config()
        ms.set_seed(t.seed)
        self.init = self._converted_init()
        self._build_model()
        self._build_optimizer()
        self._build_network()
        self.step_cell = None  # MindFormers' wrapper, built by its Trainer; seen by the step callback

    def _build_model(self) -> None:
        """MindFormers' LlamaForCausalLM without weights (MindFormers' Trainer loads the init into it, see
        ``fit``), LoRA adapters added with mindcode's starting values."""
        config, t = self.config, self.config.training
        model_config = config.model.shape()
        settings, self.overridden = model_settings(config.model.model_config, self.device)
        extra: dict[str, Any] = {"calculate_per_token_loss": True} if self.per_token else {}
        if self.semi_auto:  # the layout inside the model: MindFormers' TransformerOpParallelConfig and recompute
            from mindformers.core.parallel_config import build_parallel_config

            build_parallel_config(self.mf_config)
            extra["parallel_config"] = self.mf_config.parallel_config
        self.model = build_model(model_config, config.model.seq_length, settings=settings, **extra)
        self._check_init()
        self._model_args = (model_config, config.model.seq_length, settings, extra.get("parallel_config"))
        # dpo's reference pass runs before MindFormers' Trainer starts. Under semi-auto parallel it runs on a
        # reference model of its own that reads its slices through MindFormers (``reference.py``); otherwise on the
        # policy's weights, loaded here whole. Without a pass (simpo, a stored reference) MindFormers' load reads them.
        reference_pass = needs_reference_pass(config)
        whole = config.mindformers.init_reading(self.layout, reference_pass) == "whole"
        self.loaded_by_mindcode = reference_pass and whole
        self._sliced_reference = reference_pass and not whole
        self._reference: Any = None
        if self.loaded_by_mindcode:
            load_into(self.model, self.init)
        if config.lora is not None:
            lora = config.lora
            add_lora(self.model, lora, initial_adapter(model_config, lora.rank, lora.alpha, lora.target_modules, t.seed))
        self.frozen = {p.name for p in self.model.get_parameters() if not p.requires_grad}

    def _check_init(self) -> None:
        """Every parameter of the model in the init with its shape, and nothing else there (read from the file's
        index, no tensor loaded): MindFormers' own load only logs what it could not load."""
        stored = {t.name: tuple(t.shape) for t in ckpt_io.index_ckpt(self.init)}
        expected = {p.name: tuple(p.shape) for p in self.model.get_parameters()}
        missing = sorted(set(expected) - set(stored))
        unused = sorted(set(stored) - set(expected))
        wrong = sorted(n for n in set(stored) & set(expected) if stored[n] != expected[n])
        if missing or unused or wrong:
            raise MindcodeError(f"{self.init}: does not fit the model: missing {missing[:3]}, unused {unused[:3]}, "
                                f"other shapes {[(n, stored[n], expected[n]) for n in wrong[:3]]}")

    def _build_optimizer(self) -> None:
        from mindformers.core.lr.lr_schedule import CosineWithWarmUpLR
        from mindformers.core.optim import AdamW

        t, s, o = self.config.training, self.config.schedule, self.config.optimizer
        params = self.model.trainable_params()
        decayed, rest = decay_groups((p.name, p) for p in params)
        groups = [{"params": decayed, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]  # LoRA trains matrices only
        self.summary = {"parallel": self.layout.as_dict(), "semi_auto_parallel": self.semi_auto,
                        "overridden_settings": self.overridden,
                        "optimizer_groups": {"weight_decay": len(groups[0]["params"]),
                                             "no_weight_decay": len(groups[1]["params"]) if len(groups) > 1 else 0}}
        lr = CosineWithWarmUpLR(learning_rate=s.learning_rate, warmup_steps=s.warmup_steps, total_steps=t.max_steps,
                                lr_end=s.lr_end, warmup_lr_init=s.warmup_lr_init, warmup_ratio=s.warmup_ratio,
                                num_cycles=s.num_cycles)
        self.optimizer = AdamW(groups, learning_rate=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=0.0)

    def _build_network(self) -> None:
        """What MindFormers' step cell differentiates: the model, or mindcode's loss cell around it."""
        cells, t = self._cells, self.config.training
        micro = t.gradient_accumulation_steps
        self.pairs = t.batch_size // self.data_shard[1]
        if self.config.preference_stage:  # the rank's pairs in one graph, or MindFormers' micro-batches of pairs
            from backends.ascend.preference import PreferenceLoss, SequenceLogps

            self.preference = PreferenceLoss(self.model, self.config, self.pairs // self.accumulation)
            self.network = cells.Objective(self.preference, self.model)
            self._scores = SequenceLogps(self.model)
        elif (micro == 1 and self.world_size == 1) or self.semi_auto:  # semi-auto: MindFormers' micro-batching
            self.network = self.model
        else:
            self.network = cells.Objective(cells.TokenWeightedLoss(self.model, micro, self.world_size), self.model)
        self._all_sum = cells.AllSum() if self.world_size > 1 and not self.semi_auto else None

    def _mindformers_config(self) -> Any:
        """Write ``OUTPUT_DIR/mindformers.yaml`` (the job MindFormers' entry runs) and read it back as MindFormers
        reads its YAMLs; its context is built from it (graph mode; with semi-auto parallel, the parallel context the
        model is then built in). The in-process run then swaps in what mindcode's loop does itself (see
        ``mindformers_config.py``)."""
        from mindformers import MindFormerConfig, build_context
        from mindformers.utils.file_utils import set_output_path

        out = Path(self.config.training.output_dir)
        path = out / "mindformers.yaml" if self.rank == 0 else out / "mindformers" / f"rank_{self.rank}.yaml"
        write_yaml(mindformers_config(self.config, self.device, self.layout, self.num_rows), path)
        self.job_file = path
        mf_config = MindFormerConfig(str(path))
        set_output_path(mf_config.output_dir)  # as MindFormers' entry does first: strategy files go under it
        mf_config.callbacks = []  # mindcode's loop: metrics, checkpoints, stopping
        mf_config.runner_config.epochs = 1  # fit's dataset holds exactly the steps to run
        if not self.semi_auto:
            mf_config.use_parallel = False  # data parallel: mindcode joined msrun's group and set the mode already
        build_context(mf_config)
        return mf_config

    def _converted_init(self) -> Path:
        """The HF init as a MindSpore checkpoint, converted once per host into the run's ``init/`` (each tensor
        keeps its dtype; MindFormers' load casts it into the parameters' dtype, each rank only its slice)."""
        path = init_checkpoint(self.config)
        make_once(path, lambda tmp: convert_hf_to_ms(self.config.training.init, tmp, progress=False,
                                                     qkv_concat=path.stem.endswith("qkv_concat")))
        return path

    def batches(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows by index through MindSpore's own MindRecord reader (pairs in ``pair_rows`` order)."""
        names = list(dict.fromkeys(self.columns))
        data = self._ds.MindDataset(self.path, columns_list=names, sampler=self._ds.SubsetSampler(indices.tolist()))
        rows = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
        read = {name: np.stack([r[i] for r in rows]) for i, name in enumerate(names)}
        columns = [read[name] for name in self.columns]
        if len(columns) == 4:
            return pair_rows(columns[0], columns[2]), pair_rows(columns[1], columns[3])
        return columns[0], columns[1]

    def fit(self, start: int, stop: int, batch_at: Any, on_step: Any) -> None:
        """Optimizer steps ``start..stop-1`` by ``mindformers.Trainer`` (see the module docstring)."""
        from mindformers import Trainer

        mf_config = self.mf_config
        self._reference, self._sliced_reference = None, False  # the pass is over: its model goes before the policy
        if self.loaded_by_mindcode:  # resumed (or dpo's reference pass): the weights are in the model already
            mf_config.load_checkpoint = ""
        names = ["input_ids", "labels"] + (["reference"] if self.config.preference_stage else [])
        self._steps = _Steps(start, stop, batch_at)
        dataset = self._ds.GeneratorDataset(self._steps, column_names=names, shuffle=False,
                                            num_parallel_workers=1, python_multiprocessing=False)
        callback = self._cells.StepCallback(self, start, on_step)
        trainer = Trainer(args=mf_config, model=self.network, train_dataset=dataset, optimizers=self.optimizer,
                          callbacks=[callback])
        with contextlib.redirect_stdout(io.StringIO()):  # MindFormers pprints the whole config; it is in the YAML
            trainer.train()
        callback.check()

    def step_result(self, step: int, outputs: tuple) -> dict[str, Any]:
        """The loop's step record from MindFormers' step outputs (loss, overflow, scale, lr, grad norm); the loss as
        MindFormers' ``MFLossMonitor`` reports it (``parallel.reported_loss``)."""
        loss, overflow, _scale, lr, grad_norm = outputs
        if self._all_sum is not None:  # each rank holds its share (times the rank count) of the global mean
            loss = self._all_sum(loss.reshape((1,))) / self.world_size
        loss = reported_loss(float(loss.asnumpy().reshape(-1)[0]), self.layout, self.semi_auto, self.accumulation,
                             self.per_token)
        result = {"loss": loss, "lr": float(lr.asnumpy()),
                  "grad_norm": float(grad_norm.asnumpy().reshape(-1)[0]), "skipped": bool(overflow.asnumpy()),
                  "tokens": self._steps.tokens.pop(step)}
        if self.config.preference_stage:
            last = self.preference.last.asnumpy()
            result["logps"], result["counts"] = as_pairs(last[: 2 * self.pairs]), as_pairs(last[2 * self.pairs:])
        return result

    def logps(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and token counts of pairs, ``[b, 2]`` each, without training: the policy's, or
        under semi-auto parallel before MindFormers has loaded the policy, the sliced reference model's."""
        ms = self._ms
        scores = self._scores
        if self._sliced_reference:
            if self._reference is None:
                self._reference = reference_scores(*self._model_args, self.job_file, input_ids, labels)
            scores = self._reference
        scores.set_train(False)
        sums, counts = scores(ms.Tensor(input_ids, ms.int32), ms.Tensor(labels, ms.int32))
        return as_pairs(sums.asnumpy()), as_pairs(counts.asnumpy())

    def sum_over_data_parallel(self, values: np.ndarray) -> np.ndarray:
        if self._all_sum is None:  # one process, or semi-auto parallel (every rank fed the whole batch)
            return values
        return self._all_sum(self._ms.Tensor(values)).asnumpy()

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
        # semi-auto: each rank its own slices (MindSpore refuses an integrated save under pipeline parallel, and
        # without it every rank would gather the whole model and optimizer); data parallel: rank 0's full copy
        self._ms.save_checkpoint(self.step_cell, str(path), integrated_save=not self.semi_auto,
                                 choice_func=lambda name: name not in self.frozen)
        if self.semi_auto:
            barrier()

    def load(self, directory: Path) -> None:
        """Weights and optimizer state back into the network and the optimizer, before MindFormers wraps them. A
        LoRA run's frozen base (not in the state): in data-parallel mode from the init here, since MindFormers' own
        load is then skipped; under semi-auto parallel MindFormers' sliced load (``auto_trans_ckpt``) still reads it,
        each rank its slice, and leaves the adapters and optimizer state (not in the init) as loaded here."""
        sliced_base = bool(self.frozen) and self.semi_auto
        if self.frozen and not sliced_base:
            base = self._ms.load_checkpoint(str(self.init), choice_func=lambda name: name in self.frozen)
            self._ms.load_param_into_net(self.model, base)
        params = self._ms.load_checkpoint(str(self._state_file(directory)))
        missing = set()
        for cell in (self.network, self.optimizer):
            not_loaded, _ = self._ms.load_param_into_net(cell, params)
            missing |= set(not_loaded)
        if missing - self.frozen:
            raise MindcodeError(f"{directory}: checkpoint lacks {sorted(missing - self.frozen)[:5]}")
        self.loaded_by_mindcode = self.loaded_by_mindcode or not sliced_base

    def export(self, directory: Path) -> None:
        """The trained weights with MindFormers names in the init's dtype: ``final/model.ckpt``, or with LoRA the
        adapter alone (``final/adapter.ckpt`` + a PEFT-style ``adapter_config.json``, as MindFormers writes one).
        Semi-auto parallel: every rank writes its slices (with LoRA, of the adapters alone), then rank 0 merges them
        through the strategy files (MindSpore's own checkpoint transform, as ``convert-weight merge-ranks``, which
        transforms the parameters the slices hold), in the parameters' dtype."""
        lora = self.config.lora
        if self.semi_auto:
            self._export_merged(directory, "adapter.ckpt" if lora else "model.ckpt")
        elif self.rank == 0:  # data parallel: every rank holds the same weights
            directory.mkdir(parents=True, exist_ok=True)
            if lora is None:
                dtype = checkpoint_dtype(self.config.training.init)
                save_checkpoint(((p.name, p.asnumpy(), dtype) for p in self.model.get_parameters()),
                                directory / "model.ckpt")
            else:
                save_checkpoint(adapter_arrays(self.model), directory / "adapter.ckpt")
        if lora is not None and self.rank == 0:
            config = peft_config(lora.rank, lora.alpha, lora.target_modules, lora.dropout, self.config.training.init)
            (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")

    def _export_merged(self, directory: Path, name: str) -> None:  # ascend: on Ascend devices only (semi-auto)
        from mindspore.communication.comm_func import barrier

        from backends.ascend.distributed import merge_ranks

        ranks = Path(self.config.training.output_dir) / "final_ranks"
        (ranks / f"rank_{self.rank}").mkdir(parents=True, exist_ok=True)
        self._ms.save_checkpoint(self.model, str(ranks / f"rank_{self.rank}" / "model.ckpt"), integrated_save=False,
                                 choice_func=lambda param: param not in self.frozen)  # LoRA: the adapters
        barrier()
        if self.rank == 0:
            folder = strategy_dir(self.config.training.output_dir)  # ckpt_strategy_rank_N.ckpt, MindFormers' names
            strategy = folder / "ckpt_strategy_rank_0.ckpt"
            if self.layout.pipeline_stage > 1:  # one strategy file per stage: MindSpore merges them first
                strategy = folder.parent / "merged_strategy.ckpt"
                self._ms.merge_pipeline_strategys(str(folder), str(strategy))
            directory.mkdir(parents=True, exist_ok=True)
            merge_ranks(ranks, strategy, directory / name, progress=False)
        barrier()


class _Steps:
    """The loop's batches as a random-access source for MindSpore's ``GeneratorDataset`` (one item per step); it
    notes each step's token count for the metrics (in data sink mode the callback does not see the batch)."""

    def __init__(self, start: int, stop: int, batch_at: Any):
        self.start, self.stop, self.batch_at = start, stop, batch_at
        self.tokens: dict[int, int] = {}

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> tuple:
        arrays = self.batch_at(self.start + i)
        self.tokens[self.start + i] = input_tokens(arrays[0])
        return tuple(np.asarray(a, dtype=np.float32 if k == 2 else np.int32) for k, a in enumerate(arrays))
