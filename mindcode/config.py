"""Training configs: strict, typed data. One schema for both backends; only the backend section differs.

A config YAML has the shared sections ``model``, ``data``, ``optimizer``, ``schedule``, ``training`` and
``parallel_config`` (identical between a ``configs/ascend/X.yaml`` and its ``configs/gpu/X.yaml`` twin) and one
backend section: ``mindformers`` (ascend) or ``torch`` (gpu). Unknown keys are errors that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mindcode.errors import MindcodeError
from mindcode.parallel import ParallelConfig, resolve
from mindcode.presets import FROM_MINDFORMERS, ModelConfig

if TYPE_CHECKING:
    from backends.base import BackendSection


# MindFormers LlamaConfig keys a model_config may carry besides the shape (FROM_MINDFORMERS): they only matter on
# the ascend backend (dtypes and kernels on Ascend; on MindSpore CPU mindcode forces float32 and unfused kernels).
MINDFORMERS_ONLY_KEYS = {"type", "seq_length", "batch_size", "compute_dtype", "layernorm_compute_type",
                         "softmax_compute_type", "rotary_dtype", "param_init_type", "use_flash_attention",
                         "use_past", "fused_rms_norm", "use_rope_slice", "qkv_concat", "offset", "ignore_token_id",
                         "checkpoint_name_or_path", "scaling_factor", "extend_method", "is_dynamic",
                         "tie_word_embeddings", "qkv_has_bias", "attn_proj_has_bias"}


@dataclass
class ModelSection:
    """MindFormers' own ``model`` section: ``arch: {type: LlamaForCausalLM}`` and ``model_config`` (LlamaConfig)."""

    model_config: dict[str, Any] = field(default_factory=dict)
    arch: dict[str, Any] = field(default_factory=lambda: {"type": "LlamaForCausalLM"})

    @property
    def seq_length(self) -> int:
        return int(self.model_config.get("seq_length", 2048))  # training rows hold seq_length + 1 tokens

    def shape(self) -> ModelConfig:
        unknown = set(self.model_config) - set(FROM_MINDFORMERS) - MINDFORMERS_ONLY_KEYS
        if unknown:
            raise MindcodeError(f"model.model_config: unknown key {sorted(unknown)[0]!r}")
        if self.arch.get("type") != "LlamaForCausalLM":
            raise MindcodeError(f"model.arch.type {self.arch.get('type')!r}: only LlamaForCausalLM is supported")
        return ModelConfig.from_mindformers_config(self.model_config, name="model.model_config")


@dataclass
class DataSection:
    mindrecord: str = ""  # ascend reads this MindRecord file ...
    npy: str = ""  # ... gpu reads this folder (input_ids.npy, labels.npy); both from one `mindcode data tokenize`
    shuffle: bool = True


@dataclass
class OptimizerSection:
    type: str = "AdamW"
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1  # applied to matrices only (not to 1-D norms or biases), as MindFormers groups them


@dataclass
class ScheduleSection:
    type: str = "CosineWithWarmUpLR"
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    warmup_ratio: float | None = None
    lr_end: float = 0.0
    warmup_lr_init: float = 0.0
    num_cycles: float = 0.5


@dataclass
class TrainingSection:
    batch_size: int = 1  # global batch (summed over data-parallel ranks)
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step; the loss is their mean
    max_steps: int = 100
    max_grad_norm: float = 1.0
    save_steps: int = 0  # 0: only at the end
    save_total_limit: int = 2  # step checkpoints kept (the newest, which a resume uses, always); 0: keep all
    init: str = ""  # HF checkpoint directory both backends start from ("" = random init from the seed)
    output_dir: str = "runs/train"
    seed: int = 0
    on_nan: str = "stop"  # stop | skip (the batch)


@dataclass
class LoraSection:
    """LoRA on both backends (MindFormers' pet_config on ascend, PEFT on gpu): only the adapters train."""

    rank: int = 8
    alpha: float = 16.0  # the update is scaled by alpha / rank
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])  # HF names


@dataclass
class PreferenceSection:
    """``stage: dpo`` / ``simpo`` only (TRL's names and defaults where TRL has them)."""

    beta: float = 0.1
    label_smoothing: float = 0.0  # conservative DPO / robust SimPO: the share of the loss on the flipped label
    rpo_alpha: float = 0.0  # weight of the NLL on the chosen answers (RPO); 0 = plain DPO
    gamma: float = 0.5  # simpo: the target reward margin
    # dpo: the reference model's log-probabilities of every pair, [rows, 2] float32 (.npy). Computed once with the
    # initial weights (the reference model) when the file is missing, then reused; "" = OUTPUT_DIR/reference_logps.npy
    reference_logps: str = ""


@dataclass
class MindFormersSection:
    """ascend only: settings passed to MindFormers (loss scale, recomputation, its parallel optimizer)."""

    loss_scale: float = 1.0
    recompute: bool = False
    enable_parallel_optimizer: bool = False  # shard weights and optimizer state over data-parallel ranks
    max_device_memory: str = "58GB"  # Ascend: MindSpore's memory pool (MindFormers keeps <= 58GB on a 64 GB 910B)
    jit_level: str = "O1"  # Ascend: MindSpore's graph compile level (MindFormers' CodeLlama card)

    # What the planner and the trainers ask of either backend's section (the same names on TorchSection)
    load_in_4bit = False  # no QLoRA on ascend
    pipeline_schedule = "1f1b"  # MindFormers' pipeline
    pipeline_receive_buffers = False  # MindSpore's graph-mode pipeline: its send/receive buffers are not modelled
    checkpoint_every = 1  # MindFormers' recompute: every decoder layer
    gathers_sharded_layers = False  # the parallel optimizer's sharded weights are not modelled as gathered copies

    def semi_auto(self, layout: Any) -> bool:
        """Whether the job runs MindFormers' semi-auto parallel: wherever the layout splits the model, and, as
        MindFormers' own Llama2-7B finetune on 8 devices runs (dp8, ``parallel_mode: 1``), wherever the parallel
        optimizer shards weights and AdamW state over data-parallel ranks (MindSpore builds no parallel optimizer
        for MindFormers' AdamW in data-parallel mode); otherwise MindSpore's data-parallel mode."""
        sharded = layout.data_parallel > 1 and self.enable_parallel_optimizer
        return layout.model_parallel > 1 or layout.pipeline_stage > 1 or sharded

    def init_reading(self, layout: Any, reference_pass: bool) -> str:
        """How the init is read: ``sliced`` (semi-auto: one process per node reads it whole and writes each rank's
        slice, ``auto_trans_ckpt``, then every rank reads its slice; dpo's reference model too,
        ``backends/ascend/reference.py``) or ``whole`` (data-parallel mode, or the reference pass under pipeline
        stages, which mindcode runs on the whole init before MindFormers' job starts: every rank reads it whole)."""
        return "sliced" if self.semi_auto(layout) and not (reference_pass and layout.pipeline_stage > 1) else "whole"

    def rows_per_forward(self, rows: int, accumulation: int, layout: Any) -> int:
        """Sequences one forward holds of a rank's ``rows``: in data-parallel mode one graph differentiates all of
        the rank's micro-batches at once; under semi-auto parallel a micro-batch of each accumulation step."""
        if not self.semi_auto(layout):
            return rows
        return max(1, rows // accumulation // layout.micro_batch_num)

    def data_parallel_sharding(self, device_kind: str) -> tuple[bool, bool]:
        """(weights and gradients, AdamW moments) sharded over data parallel: MindFormers' parallel optimizer shards
        both (a job with it runs semi-auto parallel, ``backends/ascend/parallel.py``), on Ascend."""
        optimizer = self.enable_parallel_optimizer and device_kind != "cpu"
        return optimizer, optimizer

    def flash_attention(self, device_kind: str, model_config: dict[str, Any]) -> bool:
        return device_kind == "ascend" and bool(model_config.get("use_flash_attention", False))

    def splits_logits(self, layout: Any, preference: bool) -> bool:
        """Whether each rank holds only its vocabulary slice of the logits: MindFormers' head and its cross entropy
        are split by vocabulary whenever ``vocab_emb_dp`` is false under model parallel."""
        return layout.model_parallel > 1 and not layout.vocab_emb_dp


@dataclass
class TorchSection:
    """gpu only."""

    precision: str = "bf16"  # bf16: bf16 compute, float32 master weights and AdamW state (CUDA); fp32. CPU: fp32
    load_in_4bit: bool = False  # QLoRA: the frozen base weights in 4-bit NF4 (bitsandbytes, CUDA only; needs lora)
    distributed: str = "ddp"  # data parallel by ddp | fsdp (FSDP2: weights, gradients, AdamW state sharded)
    gradient_checkpointing: bool = False  # activation checkpointing per decoder layer
    checkpoint_every: int = 1  # with it: every Nth decoder layer (0, N, 2N, ...) only (torchtitan's selective AC)
    compile: bool = False
    pipeline_schedule: str = "1f1b"  # 1f1b | gpipe (with parallel_config.pipeline_stage > 1)

    pipeline_receive_buffers = True  # torch's PipelineStage allocates one per micro-batch up front
    gathers_sharded_layers = True  # FSDP2 all-gathers a layer's sharded weights (and prefetches the next) to use it

    def init_reading(self, layout: Any, reference_pass: bool) -> str:
        """``stream``: each process reads the init a tensor at a time, keeping its own shard (for the reference
        pass too: it runs on the training model)."""
        return "stream"

    def rows_per_forward(self, rows: int, accumulation: int, layout: Any) -> int:
        """Sequences one forward holds of a rank's ``rows``: a micro-batch of each accumulation step."""
        return max(1, rows // accumulation // layout.micro_batch_num)

    @property
    def recompute(self) -> bool:
        return self.gradient_checkpointing

    def data_parallel_sharding(self, device_kind: str) -> tuple[bool, bool]:
        """(weights and gradients, AdamW moments) sharded over data parallel: both with FSDP2."""
        fsdp = self.distributed == "fsdp"
        return fsdp, fsdp

    def flash_attention(self, device_kind: str, model_config: dict[str, Any]) -> bool:
        return device_kind == "cuda"  # SDPA's flash / memory-efficient kernels

    def splits_logits(self, layout: Any, preference: bool) -> bool:
        """Whether each rank holds only its vocabulary slice of the logits: the head split by vocabulary
        (``vocab_emb_dp: false`` under tensor parallel) with ``loss_parallel``'s cross entropy, for SFT without
        pipeline stages; otherwise the head's output is gathered (preference losses read whole distributions)."""
        return layout.model_parallel > 1 and not layout.vocab_emb_dp and layout.pipeline_stage == 1 and not preference


# each backend's own section of a config and its type (every other section is shared by the twins)
BACKEND_SECTIONS = {"ascend": ("mindformers", MindFormersSection), "gpu": ("torch", TorchSection)}


@dataclass
class TrainConfig:
    backend: str = "gpu"
    stage: str = "sft"  # sft (also pretraining) | dpo | simpo
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    parallel_config: ParallelConfig = field(default_factory=ParallelConfig)
    lora: LoraSection | None = None
    preference: PreferenceSection | None = None
    mindformers: MindFormersSection | None = None
    torch: TorchSection | None = None
    source: str = ""  # the file it came from (not a YAML key)

    SHARED = ("stage", "model", "data", "optimizer", "schedule", "training", "parallel_config", "lora", "preference")
    STAGES = ("sft", "dpo", "simpo")

    @property
    def backend_section(self) -> BackendSection:
        """This backend's own section (``torch`` or ``mindformers``), which both answer alike (``BackendSection`` in
        ``backends/base.py``)."""
        return getattr(self, BACKEND_SECTIONS[self.backend][0])

    @property
    def preference_stage(self) -> bool:
        return self.stage != "sft"


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise MindcodeError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise MindcodeError(f"{where}: unknown key {key!r}; valid: {', '.join(sorted(fields))}")
        hint = hints[key]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        section = next((o for o in options if dataclasses.is_dataclass(o)), None)
        kwargs[key] = _build(section, value or {}, f"{where}.{key}") if section else _check(value, hint, f"{where}.{key}")
    return cls(**kwargs)


def _check(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint) or hint
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (origin,)
    if value is None and type(None) in options:
        return value
    simple = tuple(typing.get_origin(o) or o for o in options if o is not type(None))
    if float in simple and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if float in simple and isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, simple) or (isinstance(value, bool) and bool not in simple):
        names = "/".join(getattr(o, "__name__", str(o)) for o in simple)
        raise MindcodeError(f"{where}: expected {names}, got {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``training.max_steps=5`` -> (["training", "max_steps"], 5), the value read as YAML."""
    if "=" not in text:
        raise MindcodeError(f"override {text!r}: expected section.key=value")
    key, value = text.split("=", 1)
    return key.split("."), yaml.safe_load(value)


def load_config(path: str | Path, overrides: list[str] = (), backend: str | None = None) -> TrainConfig:
    """Read and validate a config; ``overrides`` are ``section.key=value`` strings applied first."""
    path = Path(path)
    if not path.is_file():
        raise MindcodeError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MindcodeError(f"{path}: invalid YAML ({exc})") from None
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    if backend:
        raw["backend"] = backend
    config = _build(TrainConfig, raw, str(path))
    config.source = str(path)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    where = config.source
    from backends import BACKENDS

    if config.backend not in BACKENDS:
        raise MindcodeError(f"{where}: backend {config.backend!r}; valid: {', '.join(BACKENDS)}")
    own, section_type = BACKEND_SECTIONS[config.backend]
    for section, _ in BACKEND_SECTIONS.values():
        if section != own and getattr(config, section) is not None:
            article = "an" if config.backend[0] in "aeiou" else "a"
            raise MindcodeError(f"{where}: a '{section}' section in {article} {config.backend} config (use '{own}')")
    if getattr(config, own) is None:
        setattr(config, own, section_type())
    if config.stage not in TrainConfig.STAGES:
        raise MindcodeError(f"{where}: stage {config.stage!r}; valid: {', '.join(TrainConfig.STAGES)}")
    if config.preference is not None and not config.preference_stage:
        raise MindcodeError(f"{where}: a 'preference' section needs stage dpo or simpo")
    if config.preference_stage:
        config.preference = config.preference or PreferenceSection()
        if config.preference.beta <= 0 or not 0 <= config.preference.label_smoothing < 0.5:
            raise MindcodeError(f"{where}: preference.beta must be > 0 and label_smoothing in [0, 0.5)")
    if config.lora is not None:
        from mindcode.convert.keymap import LINEAR_MODULES

        unknown = sorted(set(config.lora.target_modules) - set(LINEAR_MODULES))
        if unknown or not config.lora.target_modules:
            raise MindcodeError(f"{where}: lora.target_modules {unknown or '[]'}; valid: {', '.join(LINEAR_MODULES)}")
        if config.lora.rank < 1 or not 0 <= config.lora.dropout < 1:
            raise MindcodeError(f"{where}: lora.rank must be >= 1 and lora.dropout in [0, 1)")
    if config.torch is not None and config.torch.load_in_4bit and config.lora is None:
        raise MindcodeError(f"{where}: torch.load_in_4bit (QLoRA) needs a lora section")
    if config.torch is not None:
        for key, valid in (("precision", ("bf16", "fp32")), ("distributed", ("ddp", "fsdp")),
                           ("pipeline_schedule", ("1f1b", "gpipe"))):
            if getattr(config.torch, key) not in valid:
                raise MindcodeError(f"{where}: torch.{key} {getattr(config.torch, key)!r}; valid: {', '.join(valid)}")
    if config.optimizer.type != "AdamW":
        raise MindcodeError(f"{where}: optimizer.type {config.optimizer.type!r}; supported: AdamW")
    if config.schedule.type != "CosineWithWarmUpLR":
        raise MindcodeError(f"{where}: schedule.type {config.schedule.type!r}; supported: CosineWithWarmUpLR")
    if config.training.on_nan not in ("stop", "skip"):
        raise MindcodeError(f"{where}: training.on_nan {config.training.on_nan!r}; choose stop or skip")
    if config.torch is not None and config.torch.checkpoint_every < 1:
        raise MindcodeError(f"{where}: torch.checkpoint_every must be >= 1 (1: every decoder layer)")
    if config.training.save_total_limit < 0:
        raise MindcodeError(f"{where}: training.save_total_limit must be >= 0 (0: keep every checkpoint)")
    if config.training.batch_size < 1 or config.training.max_steps < 1:
        raise MindcodeError(f"{where}: training.batch_size and training.max_steps must be >= 1")
    accumulation = config.training.gradient_accumulation_steps
    if accumulation < 1 or config.training.batch_size % accumulation:
        raise MindcodeError(f"{where}: training.gradient_accumulation_steps {accumulation} must divide "
                            f"training.batch_size {config.training.batch_size}")
    resolve(config.parallel_config, where=f"{where}: parallel_config")  # degrees >= 1 (the world is known at launch)
    config.training.init = os.path.expanduser(config.training.init) if config.training.init else ""
    if config.training.init and (Path(config.training.init) / "config.json").is_file():
        shape_from_init(config)
    elif config.training.init and "vocab_size" not in config.model.model_config:
        raise MindcodeError(f"{where}: model.model_config gives no shape and {config.training.init}/config.json, "
                            f"which would give it, is missing")
    config.model.shape()  # unknown model keys fail here, before any model is built


def shape_from_init(config: TrainConfig) -> None:
    """The model shape of ``training.init``'s ``config.json`` fills the keys ``model.model_config`` leaves out; a key
    it does give must agree (one line names the first that differs)."""
    from mindcode.convert.hf_to_ms import read_hf_config

    init = Path(config.training.init)
    given = config.model.model_config
    for key, value in read_hf_config(init).to_mindformers_config().items():
        if value is None:
            continue
        if key not in given:
            given[key] = value
        elif not _same(given[key], value):
            raise MindcodeError(f"{config.source}: model.model_config.{key} is {given[key]!r}, but "
                                f"{init / 'config.json'} gives {value!r} (leave the key out to take the init's)")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(abs(a), abs(b))  # config.json's float32-rounded eps (9.9999997e-06)
    return a == b


def data_columns(config: TrainConfig, available: set[str] | None = None) -> list[str]:
    """The tokenized columns a stage trains on (``mindcode data tokenize --dataset_type qa`` or ``dpo``), in the
    order the trainers read them. Pretraining rows (``--dataset_type wiki``: MindFormers' input-only format) have no
    ``labels``; every token of them is trained, so their input ids are read again as the labels."""
    if config.preference_stage:
        return ["chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"]
    if available is not None and "labels" not in available:
        return ["input_ids", "input_ids"]
    return ["input_ids", "labels"]


def check_data(config: TrainConfig) -> Path:
    """The data path this backend reads (its ``data_key``); missing data fails before any model is built, naming
    the path."""
    from backends import get_backend

    kind = "dpo" if config.preference_stage else "qa"
    first = data_columns(config)[0]
    if get_backend(config.backend).data_key == "mindrecord":
        path = Path(config.data.mindrecord)
        if not config.data.mindrecord or not path.is_file():
            raise MindcodeError(f"{config.source}: data.mindrecord {config.data.mindrecord!r}: no such file "
                                f"(write it with `mindcode data tokenize --dataset_type {kind} --output_file`)")
    else:
        path = Path(config.data.npy)
        if not config.data.npy or not (path / f"{first}.npy").is_file():
            raise MindcodeError(f"{config.source}: data.npy {config.data.npy!r}: no {first}.npy there "
                                f"(write it with `mindcode data tokenize --dataset_type {kind} --torch_output`)")
    return path


def learning_rate(schedule: ScheduleSection, step: int, total_steps: int) -> float:
    """MindFormers' CosineWithWarmUpLR at 0-based optimizer step ``step`` (the gpu backend uses this formula)."""
    import math

    warmup = int(total_steps * schedule.warmup_ratio) if schedule.warmup_ratio is not None else schedule.warmup_steps
    if step >= total_steps:
        return schedule.lr_end
    if warmup and step < warmup:
        return schedule.warmup_lr_init + (schedule.learning_rate - schedule.warmup_lr_init) * step / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    percent = max(0.0, 0.5 * (1.0 + math.cos(math.pi * schedule.num_cycles * 2.0 * progress)))
    return schedule.lr_end + (schedule.learning_rate - schedule.lr_end) * percent
