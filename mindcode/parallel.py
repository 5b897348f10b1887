"""The parallel layout both backends share: MindFormers' ``parallel_config`` keys, resolved against a world size.

A config's top-level ``parallel_config`` section is identical in its ascend and gpu twins. The ascend backend
hands it to MindFormers' semi-auto parallel (``backends/ascend/parallel.py``), the gpu backend maps it onto
PyTorch's DeviceMesh, DTensor tensor parallel, FSDP2 and ``torch.distributed.pipelining``
(``backends/gpu/parallel.py``), and ``mindcode plan`` sizes memory from it. Ranks are ordered as MindFormers'
device matrix orders them: pipeline stage outermost, then data parallel, then model parallel (adjacent ranks share
a model-parallel group, i.e. one node's fast links).

    >>> layout = resolve(ParallelConfig(model_parallel=2), world_size=4)
    >>> (layout.data_parallel, layout.model_parallel, layout.pipeline_stage), layout.coords(3)
    ((2, 2, 1), Coords(pipeline=0, data=1, model=1))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig


# How model parallelism splits each decoder weight, in both backends (DTensor's plan on gpu, MindFormers' Llama
# strategies on ascend): "colwise" splits the output dimension (rows of the [out, in] weight), "rowwise" the input
# dimension. Norms are replicated; the embedding and lm_head split by vocabulary unless vocab_emb_dp.
# Keys are module paths inside a decoder layer (HF names).
TENSOR_PARALLEL = {"self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise", "self_attn.v_proj": "colwise",
                   "self_attn.o_proj": "rowwise", "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise",
                   "mlp.down_proj": "rowwise"}


@dataclass
class ParallelConfig:
    """The ``parallel_config`` section (MindFormers' ``TransformerOpParallelConfig`` names)."""

    data_parallel: int | None = None  # None: the processes left over by model_parallel x pipeline_stage
    model_parallel: int = 1  # tensor parallel: attention heads and MLP columns split over this many ranks
    pipeline_stage: int = 1  # decoder layers split into this many consecutive stages
    micro_batch_num: int = 1  # pipeline micro-batches per step (each rank's batch is split into this many)
    use_seq_parallel: bool = False  # norms and residuals split along the sequence within a model-parallel group
    vocab_emb_dp: bool = True  # embedding and head replicated over model parallel (else split by vocabulary)


class Coords(NamedTuple):
    pipeline: int
    data: int
    model: int


@dataclass(frozen=True)
class Layout:
    """A ``parallel_config`` resolved for ``world_size`` processes: every degree known, product checked."""

    data_parallel: int
    model_parallel: int
    pipeline_stage: int
    micro_batch_num: int
    use_seq_parallel: bool
    vocab_emb_dp: bool

    @property
    def world_size(self) -> int:
        return self.data_parallel * self.model_parallel * self.pipeline_stage

    def coords(self, rank: int) -> Coords:
        stage, rest = divmod(rank, self.data_parallel * self.model_parallel)
        data, model = divmod(rest, self.model_parallel)
        return Coords(stage, data, model)

    def describe(self) -> str:
        return f"dp{self.data_parallel}/mp{self.model_parallel}/pp{self.pipeline_stage}"

    def as_dict(self) -> dict[str, int | bool]:
        return {"data_parallel": self.data_parallel, "model_parallel": self.model_parallel,
                "pipeline_stage": self.pipeline_stage, "micro_batch_num": self.micro_batch_num,
                "use_seq_parallel": self.use_seq_parallel, "vocab_emb_dp": self.vocab_emb_dp}


def resolve(section: ParallelConfig, world_size: int | None = None, where: str = "parallel_config") -> Layout:
    """The layout for ``world_size`` processes (None: the world the section names, ``data_parallel`` 1 if unset).

    ``data_parallel`` left out is the remainder; otherwise ``dp * mp * pp`` must equal the process count.
    """
    mp, pp = section.model_parallel, section.pipeline_stage
    dp_given = section.data_parallel if section.data_parallel is not None else 1
    for key, value in (("model_parallel", mp), ("pipeline_stage", pp), ("micro_batch_num", section.micro_batch_num),
                       ("data_parallel", dp_given)):
        if value < 1:
            raise MindcodeError(f"{where}.{key}: must be >= 1, got {value}")
    if world_size is None:
        world_size = (section.data_parallel or 1) * mp * pp
    dp = section.data_parallel
    if dp is None:
        if world_size % (mp * pp):
            raise MindcodeError(f"{where}: model_parallel {mp} x pipeline_stage {pp} = {mp * pp} does not divide "
                                f"the {world_size} processes")
        dp = world_size // (mp * pp)
    if dp * mp * pp != world_size:
        raise MindcodeError(f"{where}: data_parallel {dp} x model_parallel {mp} x pipeline_stage {pp} = "
                            f"{dp * mp * pp}, but the job has {world_size} processes")
    if pp > 1 and section.micro_batch_num < pp:
        raise MindcodeError(f"{where}.micro_batch_num {section.micro_batch_num}: a pipeline of {pp} stages needs at "
                            f"least {pp} micro-batches")
    # MindFormers resets vocab_emb_dp to False whenever pipeline_stage > 1 (build_parallel_config); so does mindcode,
    # so that both backends (and the memory plan) place the embedding the same way.
    return Layout(dp, mp, pp, section.micro_batch_num if pp > 1 else 1, section.use_seq_parallel and mp > 1,
                  section.vocab_emb_dp and pp == 1)


def check_model(layout: Layout, model: ModelConfig, seq_length: int, batch_size: int,
                where: str = "parallel_config") -> None:
    """What the layout needs of the model's shape and the batch; one line naming both numbers otherwise."""
    mp, pp = layout.model_parallel, layout.pipeline_stage
    for what, value in (("num_heads", model.num_heads), ("n_kv_heads", model.kv_heads),
                        ("intermediate_size", model.intermediate_size)):
        if value % mp:
            raise MindcodeError(f"{where}.model_parallel {mp} does not divide model_config.{what} {value}")
    if not layout.vocab_emb_dp and model.vocab_size % mp:
        raise MindcodeError(f"{where}.model_parallel {mp} does not divide vocab_size {model.vocab_size} "
                            f"(the embedding is split by vocabulary; set vocab_emb_dp: true)")
    if layout.use_seq_parallel and seq_length % mp:
        raise MindcodeError(f"{where}: use_seq_parallel splits seq_length {seq_length} over model_parallel {mp}")
    if model.num_layers % pp:  # MindFormers' LayerSetting gives every stage num_layers // pp (offsets aside)
        raise MindcodeError(f"{where}.pipeline_stage {pp} does not divide num_layers {model.num_layers} (stages hold "
                            f"equal numbers of layers)")
    if batch_size % layout.data_parallel:
        raise MindcodeError(f"training.batch_size {batch_size} is not divisible by data_parallel "
                            f"{layout.data_parallel}")
    per_rank = batch_size // layout.data_parallel
    if per_rank % layout.micro_batch_num:
        raise MindcodeError(f"{where}.micro_batch_num {layout.micro_batch_num} does not divide the {per_rank} rows "
                            f"each data-parallel rank gets (training.batch_size {batch_size} / data_parallel "
                            f"{layout.data_parallel})")


def stage_layers(num_layers: int, stages: int, stage: int) -> range:
    """The decoder layers of pipeline ``stage``: ``num_layers // stages`` consecutive ones, as MindFormers'
    ``LayerSetting`` places them (``check_model`` requires the division to be exact)."""
    per_stage = num_layers // stages
    return range(stage * per_stage, (stage + 1) * per_stage)


def data_parallel_sharding(config: Any, layout: Layout, device_kind: str) -> tuple[bool, bool]:
    """(weights and gradients sharded over the data-parallel ranks, AdamW moments sharded over them): gpu with
    ``torch.distributed: fsdp`` (FSDP2) shards both; so does ascend's parallel optimizer (on Ascend; a job with it runs
    MindFormers' semi-auto parallel, which MindSpore's CPU target does not run)."""
    if layout.data_parallel == 1:
        return False, False
    return config.backend_section.data_parallel_sharding(device_kind)


def describe_ranks(layout: Layout, model: ModelConfig) -> list[dict[str, int | list[int]]]:
    """Every rank's coordinates and the decoder layers it holds (first and last index)."""
    ranks = []
    for rank in range(layout.world_size):
        coords = layout.coords(rank)
        layers = stage_layers(model.num_layers, layout.pipeline_stage, coords.pipeline)
        ranks.append({"rank": rank, **coords._asdict(), "layers": [layers[0], layers[-1]]})
    return ranks
