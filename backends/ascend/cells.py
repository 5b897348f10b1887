"""The MindSpore cells mindcode adds to MindFormers' training, defined once at module level.

Importing this module registers ``CpuSafeTrainOneStepCell`` with MindFormers (its step cell with an overflow check
MindSpore's CPU kernels support), so MindFormers' own entry can run a YAML mindcode wrote on the CPU target:

    python -m backends.ascend.run_mindformer --config OUTPUT_DIR/mindformers.yaml

May import mindspore and mindformers (it is only imported once the ascend backend is chosen).
"""

from __future__ import annotations

import time
from typing import Any

import mindspore as ms
from mindformers.models.modeling_utils import PreTrainedModel
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindformers.wrapper.wrapper import MFTrainOneStepCell
from mindspore import Tensor, nn, ops
from mindspore.train import Callback

CPU_WRAPPER = "CpuSafeTrainOneStepCell"


class CpuSafeTrainOneStepCell(MFTrainOneStepCell):
    """MFTrainOneStepCell with an IsFinite overflow check (the stock check calls ``NPUGetFloatStatusV2``, an
    Ascend-only op). Used on MindSpore's CPU target only; on Ascend MindFormers' own cell runs."""

    def start_overflow_check(self, pre_cond, compute_input):
        return Tensor(False), compute_input

    def get_overflow_status(self, status, compute_output):
        return ops.stack([ops.logical_not(ops.isfinite(g).all()) for g in compute_output]).any()


class Objective(PreTrainedModel):
    """A loss cell wrapped as a MindFormers ``PreTrainedModel`` (what its Trainer accepts), the way MindFormers'
    own ``LoraModel`` wraps a model; the parameter names stay the model's."""

    def __init__(self, cell: Any, model: Any):
        super().__init__(model.config, auto_prefix=False)
        self.objective = cell

    def construct(self, input_ids, labels, reference=None):  # the dataset's column names (passed by name)
        if reference is None:
            return self.objective(input_ids, labels)
        return self.objective(input_ids, labels, reference)


class TokenWeightedLoss(nn.Cell):
    """The mean over every trained token of the global batch, however the batch is split into ``micro``
    micro-batches and ``world_size`` data-parallel ranks (the gpu backend computes the same).

    Each part's mean loss is weighted by its share of the trained tokens; with data parallelism the token count is
    all-reduced and the loss scaled by the rank count, since the gradient reducer averages over ranks. MindFormers'
    own accumulation cells need its semi-auto-parallel mode; this one differentiates the same mean in one graph
    (the same arithmetic, without accumulation's memory saving).
    """

    def __init__(self, network: Any, micro: int, world_size: int):
        super().__init__(auto_prefix=False)
        self.network = network
        self.micro, self.world_size = micro, world_size
        self.all_sum = ops.AllReduce() if world_size > 1 else None

    def construct(self, input_ids, labels):
        size = input_ids.shape[0] // self.micro
        ids, labs = ops.split(input_ids, size), ops.split(labels, size)
        total, tokens = 0.0, 0.0
        for i in range(self.micro):
            n = ops.cast(ops.not_equal(labs[i][:, 1:], -100), ms.float32).sum()
            total = total + self.network(ids[i], labs[i]) * n
            tokens = tokens + n
        if self.all_sum is not None:
            tokens = self.all_sum(tokens.reshape((1,))).reshape(())
        return total * self.world_size / tokens


class AllSum(nn.Cell):
    """Sum a tensor over every rank (data parallel: each rank's share of the logged loss)."""

    def __init__(self):
        super().__init__()
        self.op = ops.AllReduce()

    def construct(self, x):
        return self.op(x)


class StepCallback(Callback):
    """Hands each finished MindFormers step to mindcode's loop (``on_step``). An error there (a NaN with
    ``on_nan: stop``) stops the Trainer and is raised again by ``check()`` once it has returned."""

    def __init__(self, trainer: Any, start: int, on_step: Any):
        super().__init__()
        self.trainer, self.start, self.on_step = trainer, start, on_step
        self.error: BaseException | None = None
        self.tick = 0.0

    def on_train_step_begin(self, run_context):
        self.tick = time.perf_counter()

    def on_train_step_end(self, run_context):
        if self.error is not None:
            return
        params = run_context.original_args()
        self.trainer.step_cell = params.train_network
        step = self.start + params.cur_step_num - 1
        try:
            self.on_step(step, self.trainer.step_result(step, params.net_outputs), time.perf_counter() - self.tick)
        except BaseException as exc:  # noqa: BLE001 - raised again by check()
            self.error = exc
            run_context.request_stop()

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def register() -> None:
    """Make ``CpuSafeTrainOneStepCell`` a MindFormers wrapper type (idempotent)."""
    if not MindFormerRegister.is_exist(MindFormerModuleType.WRAPPER, CPU_WRAPPER):
        MindFormerRegister.register_cls(CpuSafeTrainOneStepCell, module_type=MindFormerModuleType.WRAPPER,
                                        alias=CPU_WRAPPER)


register()
