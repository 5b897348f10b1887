"""The memory every rank of a job needs, term by term, from the same rules the backends follow.

What is shared with the backends, not re-decided here: the layout and rank order (``mindcode.parallel``: which
layers a pipeline stage holds, how tensor parallel splits each weight), the precision policy
(``mindcode.precision``), and FSDP2's sharding (``torch.chunk`` of dim 0 over the data-parallel ranks; MindFormers'
parallel optimizer shards the same way). Weights, gradients and AdamW moments are exact (the summed sizes of the
tensors each rank holds; a test compares them with the gpu backend's real tensors). Activations, compute copies and
the runtime's reserve are estimates:

- loading (``load``): while the init is read, each rank's weights already sit on the device and one tensor at a
  time is cast there (``device_bytes``). On the host, where the layout splits weights (ascend semi-auto parallel:
  MindFormers' ``auto_trans_ckpt``) one process per node holds the whole init in its file dtype while it writes each
  rank's slice, and every rank then reads only its slice; in data-parallel mode, and for dpo's reference pass under
  pipeline stages when no stored reference is there, every rank reads the whole init (MindSpore's
  ``load_checkpoint``); the gpu backend streams one tensor at a time from the safetensors files.

- activations per token and decoder layer, in the compute dtype: the norms' inputs and outputs (4h, split by
  sequence parallel), q/k/v after projection and rotary (3h + 3kv), the attention output (h) and the MLP's four
  intermediate tensors (4i), all but the norms split by model parallel; with attention that is not fused (no flash
  attention) also the scores and probabilities (2 heads x seq). With recomputation a layer keeps only its input (h)
  and one layer at a time is recomputed in full. A pipeline stage holds ``min(micro_batch_num, pp - stage)``
  micro-batches (1F1B) or all of them (GPipe); the last stage adds the logits (compute dtype, a float32 copy and its
  gradient).
- compute copies: FSDP2 all-gathers two decoder layers (the one running and the one prefetched) and the root's
  embedding, norm and head in the compute dtype; with pipeline stages it keeps the whole stage gathered and
  accumulates float32 gradients unsharded until the step's reduce-scatter (``unsharded_gradients``); without
  FSDP2, bf16 autocast keeps a bf16 copy of every matrix it multiplies; MindFormers casts every float32 parameter
  to its compute dtype.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mindcode.convert.hf_to_ms import expected_weights
from mindcode.parallel import TENSOR_PARALLEL, Layout, check_model, data_parallel_sharding, resolve, stage_layers
from mindcode.plan.devices import GIB, Device
from mindcode.plan.suggest import suggest_layout
from backends import get_backend
from mindcode.precision import BYTES
from mindcode.train.preference import needs_reference_pass

# predict's window when none is given: the longest a batch is sized for in practice (CodeLlama's training length,
# MindFormers' predict card's seq_length); mindcode predict itself sizes each batch by its prompts
PREDICT_LENGTH = 4096
PREDICT_BATCH = 8  # mindcode predict's --batch_size
QUANTIZED_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # NF4 with double quantization (bitsandbytes, blocks of 64)


def _chunk(size: int, parts: int, index: int) -> int:
    """Rows rank ``index`` of ``parts`` holds after ``torch.chunk`` of dim 0 (FSDP2's sharding)."""
    step = math.ceil(size / parts)
    return max(0, min(step, size - index * step))


def _tp_shape(name: str, dims: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    mp = layout.model_parallel
    module = ".".join(name.split(".")[3:5]) if ".layers." in name else name.rsplit(".", 1)[0]
    split = TENSOR_PARALLEL.get(module)
    if split == "colwise":
        return (dims[0] // mp, *dims[1:])
    if split == "rowwise":
        return (dims[0], dims[1] // mp)
    if module in ("model.embed_tokens", "lm_head") and not layout.vocab_emb_dp:
        return (dims[0] // mp, dims[1])
    return dims


def rank_tensors(config: Any, layout: Layout, rank: int, shard: bool) -> list[dict[str, Any]]:
    """The parameters rank ``rank`` holds: ``{name, numel, trainable, quantized}``, after its pipeline stage,
    its tensor-parallel slice and, with ``shard``, its data-parallel shard of dim 0."""
    shape = config.model.shape()
    coords = layout.coords(rank)
    last = layout.pipeline_stage - 1
    layers = stage_layers(shape.num_layers, layout.pipeline_stage, coords.pipeline)
    lora = config.lora
    qlora = config.backend_section.load_in_4bit
    tensors = []
    for name, dims in expected_weights(shape).items():
        if ".layers." in name and int(name.split(".")[2]) not in layers:
            continue
        if (name == "model.embed_tokens.weight" and coords.pipeline != 0) or \
                (name in ("model.norm.weight", "lm_head.weight") and coords.pipeline != last):
            continue
        local = _tp_shape(name, dims, layout)
        linear = ".layers." in name and name.endswith("_proj.weight")
        tensors.append({"name": name, "dims": local, "trainable": lora is None, "quantized": qlora and linear})
        if lora is not None and linear and name.split(".")[-2] in lora.target_modules:
            out_dim, in_dim = local
            tensors.append({"name": name + ":lora_A", "dims": (lora.rank, in_dim), "trainable": True,
                            "quantized": False})
            tensors.append({"name": name + ":lora_B", "dims": (out_dim, lora.rank), "trainable": True,
                            "quantized": False})
    for t in tensors:
        rows = _chunk(t["dims"][0], layout.data_parallel, coords.data) if shard else t["dims"][0]
        t["numel"] = rows * math.prod(t["dims"][1:])
    return tensors


def _per_token_layer(config: Any, layout: Layout, flash: bool, seq: int) -> float:
    """Activation elements one decoder layer keeps per token (see the module docstring)."""
    shape = config.model.shape()
    h, kv, i, mp = shape.hidden_size, shape.kv_heads * shape.head_dim, shape.intermediate_size, layout.model_parallel
    norms = 4 * h / (mp if layout.use_seq_parallel else 1)
    inner = (3 * h + 3 * kv + h + 4 * i) / mp
    scores = 0 if flash else 2 * shape.num_heads / mp * seq
    return norms + inner + scores


def _rows_per_micro(config: Any, layout: Layout) -> int:
    """Sequences one forward holds: a preference batch of ``b`` pairs is ``2b`` rows (each chosen answer and its
    rejected one, ``mindcode.train.preference.pair_rows``)."""
    per_rank = config.training.batch_size // layout.data_parallel * (2 if config.preference_stage else 1)
    return config.backend_section.rows_per_forward(per_rank, config.training.gradient_accumulation_steps, layout)


def _stream_dtype(precision: Any, shard_weights: bool) -> str:
    """The residual stream's dtype between stages: the compute dtype when the weights themselves are cast (FSDP2's
    mixed precision), else the master weights' (autocast casts matrix products, the residual sum stays float32)."""
    return precision.compute if shard_weights else precision.master


def _flash(config: Any, device: Device) -> bool:
    return config.backend_section.flash_attention(device.kind, config.model.model_config)


def train_terms(config: Any, layout: Layout, rank: int, device: Device) -> dict[str, Any]:
    """Rank ``rank``'s training terms (bytes) and what they were computed from (see the module docstring)."""
    precision = get_backend(config.backend).training_precision(config, device.kind)
    shard_weights, shard_moments = data_parallel_sharding(config, layout, device.kind)
    whole = rank_tensors(config, layout, rank, shard=False)
    terms = _state_terms(rank_tensors(config, layout, rank, shard=True), whole, precision, shard_weights,
                         shard_moments)
    terms.update(_copy_terms(config, layout, whole, precision, shard_weights))
    activations = _activation_terms(config, layout, rank, device, precision, shard_weights)
    terms.update(activations.pop("terms"))
    terms["runtime"] = device.reserved
    return {"terms": terms, **activations}


def _state_terms(sharded: list[dict], whole: list[dict], precision: Any, shard_weights: bool,
                 shard_moments: bool) -> dict[str, float]:
    """Weights (trained ones in the master dtype, a frozen base in its own, a 4-bit base quantized), their
    gradients and AdamW's two moments, each held whole or as this rank's data-parallel shard."""
    master = BYTES[precision.master]
    held = sharded if shard_weights else whole

    def weight_bytes(t: dict) -> float:
        if t["quantized"]:
            return t["numel"] * QUANTIZED_BYTES
        return t["numel"] * (master if t["trainable"] else BYTES[precision.frozen])

    return {
        "weights": sum(weight_bytes(t) for t in held),
        "gradients": sum(t["numel"] * master for t in held if t["trainable"]),
        "optimizer": sum(2 * t["numel"] * BYTES[precision.moments]
                         for t in (sharded if shard_moments else whole) if t["trainable"]),
    }


def _copy_terms(config: Any, layout: Layout, whole: list[dict], precision: Any, shard_weights: bool) -> dict:
    """``unsharded_gradients`` and ``compute_copies``: FSDP2's gathered layers (and the float32 gradients it keeps
    unsharded between micro-batches), or autocast's compute-dtype copies of matrices stored in another dtype."""
    compute = BYTES[precision.compute]
    full = {t["name"]: t["numel"] for t in whole}
    trainable = sum(t["numel"] for t in whole if t["trainable"])
    if config.backend_section.gathers_sharded_layers and shard_weights:
        stage_layers_ = {int(n.split(".")[2]) for n in full if ".layers." in n}
        per_layer = sum(n for name, n in full.items() if ".layers." in name) / max(1, len(stage_layers_))
        root = sum(n for name, n in full.items() if ".layers." not in name)
        if layout.pipeline_stage > 1:
            # pipelined FSDP2 keeps the stage gathered through the step and accumulates its micro-batches'
            # gradients unsharded in float32 until the step's reduce-scatter (torch's PipelineStage)
            return {"unsharded_gradients": trainable * 4, "compute_copies": sum(full.values()) * compute}
        # gradient sync is off until the step's last micro-batch: FSDP2 keeps every parameter's unsharded gradient
        # (in float32, its reduce dtype) from the first micro-batch's backward until then
        accumulating = config.training.gradient_accumulation_steps > 1
        return {"unsharded_gradients": trainable * 4 if accumulating else 0.0,
                "compute_copies": (min(2, len(stage_layers_)) * per_layer + root) * compute}
    copies = 0.0
    if precision.compute != precision.master:
        # autocast's bf16 copies of the matrices stored in another dtype (a LoRA base stored in bf16 needs none)
        stored = {t["name"]: precision.master if t["trainable"] else precision.frozen for t in whole}
        copies = sum(n for name, n in full.items()
                     if name.endswith("_proj.weight") and stored[name] != precision.compute) * compute
    return {"unsharded_gradients": 0.0, "compute_copies": copies}


def _activation_terms(config: Any, layout: Layout, rank: int, device: Device, precision: Any,
                      shard_weights: bool) -> dict[str, Any]:
    """``activations`` (with the config's recomputation), the pipeline's receive buffers and the logits of one
    step's micro-batches in flight on this rank's stage; and what they were computed from."""
    shape, seq, compute = config.model.shape(), config.model.seq_length, BYTES[precision.compute]
    coords, stages = layout.coords(rank), layout.pipeline_stage
    rows = _rows_per_micro(config, layout)
    if stages == 1:
        in_flight = 1
    elif config.backend_section.pipeline_schedule == "gpipe":
        in_flight = layout.micro_batch_num
    else:
        in_flight = min(layout.micro_batch_num, stages - coords.pipeline)
    tokens = rows * seq
    stage = stage_layers(shape.num_layers, stages, coords.pipeline)
    layers = len(stage)
    per_layer = _per_token_layer(config, layout, _flash(config, device), seq) * compute
    h = shape.hidden_size
    kept = h / (layout.model_parallel if layout.use_seq_parallel else 1) * compute
    full_acts = tokens * in_flight * layers * per_layer
    # recomputed layers keep their input only and are recomputed one at a time; the others keep everything
    every = config.backend_section.checkpoint_every
    checkpointed = sum(1 for i in stage if i % every == 0)
    recomputed = tokens * (in_flight * (checkpointed * kept + (layers - checkpointed) * per_layer)
                           + (per_layer if checkpointed else 0))
    activations = recomputed if config.backend_section.recompute else full_acts
    if coords.pipeline == 0:
        activations += tokens * in_flight * h * compute  # the embedding's output
    buffers = 0.0
    if stages > 1 and config.backend_section.pipeline_receive_buffers:
        # a receive buffer for every micro-batch, allocated up front: activations on every stage but the first,
        # their gradients on every stage but the last (torch's PipelineStage; measured equal on gloo)
        sides = (coords.pipeline > 0) + (coords.pipeline < stages - 1)
        buffers = sides * layout.micro_batch_num * tokens * h * BYTES[_stream_dtype(precision, shard_weights)]
    logits = 0.0
    if coords.pipeline == stages - 1:
        split = config.backend_section.splits_logits(layout, config.preference_stage)
        vocab = shape.vocab_size / (layout.model_parallel if split else 1)
        logits = tokens * vocab * (compute + 4 + 4) + tokens * 2 * h * compute
    return {"terms": {"activations": activations, "pipeline_buffers": buffers, "logits": logits},
            "activations_without_recompute": full_acts, "micro_batch_rows": rows,
            "micro_batches_in_flight": in_flight, "layers": layers}


def predict_terms(config: Any, layout: Layout, rank: int, device: Device, batch: int, length: int,
                  checkpoint_dtype: str) -> dict[str, Any]:
    dtype = get_backend(config.backend).inference_dtype(checkpoint_dtype, device.kind)
    size = BYTES[dtype]
    shape = config.model.shape()
    tensors = rank_tensors(config, layout, rank, shard=False)
    layers = len(stage_layers(shape.num_layers, layout.pipeline_stage, layout.coords(rank).pipeline))
    kv = shape.kv_heads // layout.model_parallel * shape.head_dim
    per_layer = _per_token_layer(config, layout, _flash(config, device), length) * size
    terms = {
        "weights": sum(t["numel"] for t in tensors if "lora_" not in t["name"]) * size,
        "kv_cache": 2 * layers * batch * length * kv * size,
        "activations": batch * length * per_layer,
        "logits": batch * length * shape.vocab_size * size + batch * shape.vocab_size * 4,
        "runtime": device.reserved,
    }
    return {"terms": terms, "dtype": dtype, "layers": layers}


ADVICE = {
    "weights": "shard or split the weights: torch.distributed=fsdp (gpu) / mindformers.enable_parallel_optimizer "
               "(ascend), a larger parallel_config.model_parallel or pipeline_stage, or LoRA",
    "gradients": "shard them over data parallel (FSDP2 / MindFormers' parallel optimizer), a larger model_parallel or "
                 "pipeline_stage, or LoRA (gradients for the adapters only)",
    "optimizer": "shard AdamW's moments over data parallel (FSDP2 / MindFormers' parallel optimizer), a larger "
                 "model_parallel or pipeline_stage, or LoRA",
    "compute_copies": "a larger model_parallel or pipeline_stage (fewer weights per device)",
    "unsharded_gradients": "a larger model_parallel or pipeline_stage (smaller stages), or LoRA",
    "activations": "recompute (torch.gradient_checkpointing / mindformers.recompute), "
                   "parallel_config.use_seq_parallel, or fewer rows per micro-batch (more micro_batch_num or "
                   "training.gradient_accumulation_steps)",
    "logits": "fewer rows per micro-batch, or parallel_config.vocab_emb_dp=false to split the head by vocabulary",
    "kv_cache": "a smaller --batch_size or --max_length, or a larger parallel_config.model_parallel",
    "pipeline_buffers": "fewer parallel_config.micro_batch_num or rows per micro-batch (a receive buffer each)",
    "runtime": "a device with more memory",
}


def load_terms(config: Any, layout: Layout, device: Device, weights: float, file_dtype: str) -> dict[str, float]:
    """The peak while the init is loaded (see the module docstring): ``{device_bytes, host_bytes_per_node}``."""
    shape = config.model.shape()
    full = {name: math.prod(dims) for name, dims in expected_weights(shape).items()}
    file_bytes, largest = sum(full.values()) * BYTES[file_dtype], max(full.values())
    local = min(layout.world_size, device.per_node)
    precision = get_backend(config.backend).training_precision(config, device.kind)
    device_bytes = weights + largest * BYTES[precision.master]
    reading = config.backend_section.init_reading(layout, needs_reference_pass(config))
    if reading == "stream":
        host = local * largest * BYTES[file_dtype]
    elif reading == "sliced":
        slices = max(sum(t["numel"] for t in rank_tensors(config, layout, r, shard=False))
                     for r in range(layout.world_size)) * BYTES[file_dtype]
        host = file_bytes + local * slices
    else:
        host = local * (file_bytes + largest * BYTES[precision.master])
    return {"device_bytes": device_bytes, "host_bytes_per_node": host}


def plan(config: Any, device: Device, world_size: int | None = None, task: str = "train", batch: int = PREDICT_BATCH,
         length: int | None = None, checkpoint_dtype: str = "bfloat16", suggest: bool = True) -> dict[str, Any]:
    """The plan for every rank of the job; ranks with the same terms are grouped into one rank shape. When it does
    not fit (and ``suggest``), the cheapest layout of the same devices that does (``mindcode.plan.suggest``)."""
    where = f"{config.source}: parallel_config"
    section = config.parallel_config
    if task != "train":  # prediction splits the model by model_parallel only (MindFormers' predict card: mp4)
        section = dataclasses.replace(section, data_parallel=1, pipeline_stage=1, micro_batch_num=1)
    layout = resolve(section, world_size, where)
    if task == "train":
        check_model(layout, config.model.shape(), config.model.seq_length, config.training.batch_size, where)
        per_rank = [train_terms(config, layout, r, device) for r in range(layout.world_size)]
        precision = vars(get_backend(config.backend).training_precision(config, device.kind))
    else:
        length = min(length or PREDICT_LENGTH, config.model.shape().max_position_embeddings)
        per_rank = [predict_terms(config, layout, r, device, batch, length, checkpoint_dtype)
                    for r in range(layout.world_size)]
        precision = {"weights": per_rank[0]["dtype"]}
    groups = _rank_shapes(per_rank, layout)
    worst = groups[0]
    load = None
    if task == "train":
        load = load_terms(config, layout, device, max(g["terms"]["weights"] for g in groups), checkpoint_dtype)
    fits = worst["peak"] <= device.capacity and (load is None or (
        load["device_bytes"] <= device.capacity and load["host_bytes_per_node"] <= device.host_per_node))
    result = {
        "task": task, "backend": config.backend, "config": config.source,
        "device": {"name": device.name, "capacity": device.capacity, "reserved": device.reserved, "what": device.what},
        "layout": layout.as_dict(), "world_size": layout.world_size, "precision": precision,
        "rank_shapes": groups, "peak": worst["peak"], "peak_ranks": worst["ranks"], "fits": fits,
        "biggest_term": max((k for k in worst["terms"] if k != "runtime"), key=lambda k: worst["terms"][k]),
    }
    if load is not None:
        result["load"] = load
    if task != "train":
        result.update(batch=batch, length=length)
    if not fits:
        result["advice"] = _advice(worst, result["biggest_term"], load, device)
    if not fits and suggest:
        found = suggest_layout(config, device, layout.world_size, task, plan, batch=batch, length=length,
                               checkpoint_dtype=checkpoint_dtype)
        result["suggestion"] = found
        if found:
            keys = " ".join(f"parallel_config.{k}={str(v).lower()}" for k, v in found["parallel_config"].items())
            result["advice"] += (f"; on these {layout.world_size} devices this layout fits (peak "
                                 f"{found['peak'] / GIB:.1f} GiB): {keys}")
        else:
            result["advice"] += f"; no layout of {layout.world_size} devices fits (try --nnodes/--nproc_per_node)"
    return result


def _rank_shapes(per_rank: list[dict[str, Any]], layout: Layout) -> list[dict[str, Any]]:
    """Ranks with the same terms as one shape (its ranks, stage, terms and peak), the largest peak first."""
    shapes: dict[tuple, dict[str, Any]] = {}
    for rank, entry in enumerate(per_rank):
        key = tuple(sorted(entry["terms"].items()))
        if key not in shapes:
            peak = sum(entry["terms"].values())
            shapes[key] = {"ranks": [], "stage": layout.coords(rank).pipeline, **entry, "peak": peak}
        shapes[key]["ranks"].append(rank)
    return sorted(shapes.values(), key=lambda g: -g["peak"])


def _advice(worst: dict[str, Any], biggest: str, load: dict[str, float] | None, device: Device) -> str:
    """What makes a job that does not fit fit: host memory while loading, else the largest term's remedy."""
    if load is not None and load["host_bytes_per_node"] > device.host_per_node:
        return (f"loading the init needs {load['host_bytes_per_node'] / GIB:.0f} GiB of host memory per node (of "
                f"{device.host_per_node / GIB:.0f} GiB): split the weights over more devices (model_parallel / "
                "pipeline_stage), so that each rank reads its slice only")
    return (f"rank {worst['ranks'][0]} needs {worst['peak'] / GIB:.1f} GiB of {device.name}'s "
            f"{device.capacity / GIB:.1f} GiB; the biggest term is {biggest} "
            f"({worst['terms'][biggest] / GIB:.1f} GiB): {ADVICE[biggest]}")
