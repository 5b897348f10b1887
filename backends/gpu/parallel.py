"""The shared ``parallel_config`` on PyTorch's own engines, applied to transformers' LlamaForCausalLM.

One device mesh ``(pp, dp, tp)`` in MindFormers' rank order (``mindcode.parallel``). In a fixed order, as
torchtitan applies them: the pipeline split (``torch.distributed.pipelining`` stages of consecutive decoder layers,
HF parameter names kept), tensor parallel (DTensor: q/k/v/gate/up column-wise, o/down row-wise, attention heads and
GQA key/value heads divided per rank; ``use_seq_parallel`` adds sequence parallel for norms and residuals),
activation checkpointing per decoder layer, then data parallel: FSDP2 (``fully_shard`` per decoder layer and the
root, a ``MixedPrecisionPolicy``) or DDP. Nothing here writes a collective by hand.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from mindcode.errors import MindcodeError
from mindcode.parallel import TENSOR_PARALLEL, Layout, stage_layers


def local_device() -> Any:
    """``cuda:LOCAL_RANK`` (bound as the current device) when CUDA is there, else the CPU."""
    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def init_distributed() -> tuple[int, int]:
    """Under torchrun: bind this process's GPU first, then the process group (NCCL on CUDA, gloo on the CPU)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", 1)) == 1:
        local_device()
        return 0, 1
    if not dist.is_initialized():
        device = local_device()
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                device_id=device if device.type == "cuda" else None)
    return dist.get_rank(), dist.get_world_size()


def device_mesh(layout: Layout, device: Any) -> Any:
    """The ``(pp, dp, tp)`` mesh of the layout, or None in a single process."""
    if layout.world_size == 1:
        return None
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device.type, (layout.pipeline_stage, layout.data_parallel, layout.model_parallel),
                            mesh_dim_names=("pp", "dp", "tp"))


class LlamaStage(torch.nn.Module):
    """One pipeline stage of LlamaForCausalLM: consecutive decoder layers under their HF names (``model.layers.N``),
    the embedding on the first stage, the final norm and ``lm_head`` on the last. Takes input ids (first stage) or
    hidden states and gives hidden states or float32 logits; attention is causal SDPA over the whole row."""

    def __init__(self, model: Any, layers: range, first: bool, last: bool):
        super().__init__()
        inner = model.model
        inner.layers = torch.nn.ModuleDict({str(i): inner.layers[i] for i in layers})
        if not first:
            inner.embed_tokens = None
        if not last:
            inner.norm = None
        self.model, self.config = inner, model.config
        self.lm_head = model.lm_head if last else None

    def forward(self, x: Any) -> Any:
        hidden = self.model.embed_tokens(x) if self.model.embed_tokens is not None else x
        positions = torch.arange(hidden.shape[1], device=hidden.device)[None]
        cos_sin = self.model.rotary_emb(hidden, positions)
        for layer in self.model.layers.values():
            hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=cos_sin)
        if self.lm_head is None:
            return hidden
        return self.lm_head(self.model.norm(hidden)).float()


def pipeline_stage_module(model: Any, layout: Layout, stage: int) -> LlamaStage:
    """This rank's stage of ``model`` (built on the meta device: nothing is allocated for the other stages)."""
    layers = stage_layers(model.config.num_hidden_layers, layout.pipeline_stage, stage)
    return LlamaStage(model, layers, first=stage == 0, last=stage == layout.pipeline_stage - 1)


def _llama(model: Any) -> tuple[Any, Any]:
    """(the module holding ``embed_tokens``, ``layers`` and ``norm``; the one holding ``lm_head``) of a
    LlamaForCausalLM, a pipeline stage or a PEFT-wrapped model."""
    top = model.base_model.model if hasattr(model, "peft_config") else model
    return top.model, top


def decoder_layers(model: Any) -> list[Any]:
    layers = _llama(model)[0].layers
    return list(layers.values()) if isinstance(layers, torch.nn.ModuleDict) else list(layers)


def gradients_as_weights(model: Any) -> None:
    """DTensor's embedding backward gives a vocabulary-split weight a whole (replicated) gradient: keep only this
    rank's rows of it, as the weight is held (a local slice, no communication)."""
    from torch.distributed.tensor import DTensor

    for param in model.parameters():
        grad = param.grad
        if isinstance(grad, DTensor) and grad.placements != param.placements:
            param.grad = grad.redistribute(param.device_mesh, param.placements)


def apply_tensor_parallel(model: Any, layout: Layout, tp_mesh: Any, vocab_parallel_loss: bool = False) -> None:
    """Column-wise q/k/v/gate/up, row-wise o/down; with ``use_seq_parallel`` the norms and residual stream are split
    along the sequence inside each stage, whose input and output stay the full sequence (so positions, masks and
    pipeline sends are those of the unsplit model). ``vocab_emb_dp: false`` splits embedding and head by vocabulary;
    with ``vocab_parallel_loss`` the head's logits stay split by vocabulary (a DTensor) for ``loss_parallel``'s cross
    entropy, instead of every rank gathering ``[rows, seq, vocab]``."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (ColwiseParallel, PrepareModuleInput, RowwiseParallel,
                                                   SequenceParallel, parallelize_module)

    sp = layout.use_seq_parallel
    inner, top = _llama(model)
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}  # LoRA's base
    if not layout.vocab_emb_dp and inner.embed_tokens is not None:
        parallelize_module(inner.embed_tokens, tp_mesh, RowwiseParallel(input_layouts=Replicate(),
                                                                        output_layouts=Replicate()))
    if top.lm_head is not None:
        if not layout.vocab_emb_dp:
            split = {"output_layouts": Shard(-1), "use_local_output": False} if vocab_parallel_loss else \
                {"output_layouts": Replicate()}
            parallelize_module(top.lm_head, tp_mesh, ColwiseParallel(input_layouts=Shard(1) if sp else Replicate(),
                                                                     **split))
        elif sp:
            parallelize_module(top.lm_head, tp_mesh, PrepareModuleInput(input_layouts=(Shard(1),),
                                                                        desired_input_layouts=(Replicate(),),
                                                                        use_local_output=True))
        if sp:
            parallelize_module(inner.norm, tp_mesh, SequenceParallel())
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        plan: dict[str, Any] = {}
        for path, split in TENSOR_PARALLEL.items():
            rowwise = {"output_layouts": Shard(1)} if sp else {}  # o/down: reduce-scattered along the sequence
            plan.update(_linear_plan(layer.get_submodule(path), path, split, rowwise))
        if sp:
            plan.update({
                "input_layernorm": SequenceParallel(), "post_attention_layernorm": SequenceParallel(),
                "self_attn": PrepareModuleInput(input_kwarg_layouts={"hidden_states": Shard(1)},
                                                desired_input_kwarg_layouts={"hidden_states": Replicate()},
                                                use_local_output=True),
                "mlp": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),),
                                          use_local_output=True),
            })
        parallelize_module(layer, tp_mesh, plan)
        if sp:  # the stage's input: the full sequence -> this rank's part; a stage that sends on: back to it
            _sequence_parallel_ends(layer, tp_mesh, split=i == 0, join=i == len(layers) - 1 and top.lm_head is None)
    for name, param in model.named_parameters():  # SequenceParallel makes new (trainable) parameters of the norms
        if name in frozen:
            param.requires_grad_(False)


def _sequence_parallel_ends(layer: Any, tp_mesh: Any, split: bool, join: bool) -> None:
    """Under sequence parallel: the stage's first layer takes the full sequence and splits it (``split``), its last
    gives the full sequence back when the stage sends it on (``join``)."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (PrepareModuleInput, PrepareModuleInputOutput, PrepareModuleOutput,
                                                   parallelize_module)

    inputs = {"input_layouts": (Replicate(),), "desired_input_layouts": (Shard(1),)}
    outputs = {"output_layouts": (Shard(1),), "desired_output_layouts": (Replicate(),)}
    if split and join:
        parallelize_module(layer, tp_mesh, PrepareModuleInputOutput(**inputs, **outputs, use_local_input=True,
                                                                    use_local_output=True))
    elif split:
        parallelize_module(layer, tp_mesh, PrepareModuleInput(**inputs, use_local_output=True))
    elif join:
        parallelize_module(layer, tp_mesh, PrepareModuleOutput(**outputs, use_local_output=True))


def _linear_plan(module: Any, path: str, split: str, rowwise: dict[str, Any]) -> dict[str, Any]:
    """The tensor-parallel plan of one projection. A PEFT LoRA layer (``base_layer`` + ``lora_A``/``lora_B``) is
    split as its base is: column-wise, ``B``'s rows (its output columns) with the base's, ``A`` whole on every rank
    (its input is the whole hidden state); row-wise, ``A``'s input columns with the base's (its partial products
    summed, as the base's are), ``B`` whole, and under sequence parallel ``B`` replicated over the sequence split
    (each rank its part of the rows, the weight's gradient summed over the ranks). Each rank's ``B @ A`` is then the
    slice of the update its base holds."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, SequenceParallel

    style = ColwiseParallel if split == "colwise" else RowwiseParallel
    options = rowwise if split == "rowwise" else {}
    if not hasattr(module, "base_layer"):
        return {path: style(**options)}
    plan = {f"{path}.base_layer": style(**options)}
    for name in module.lora_A:
        if split == "colwise":
            plan[f"{path}.lora_B.{name}"] = ColwiseParallel()
            continue
        plan[f"{path}.lora_A.{name}"] = RowwiseParallel(**options)
        if options:  # sequence parallel: A's output is this rank's rows of the sequence
            plan[f"{path}.lora_B.{name}"] = SequenceParallel(use_local_output=True)
    return plan


def apply_fsdp(model: Any, dp_mesh: Any, compute: str, pipelined: bool) -> None:
    """FSDP2: each decoder layer and the root sharded over the data-parallel ranks (float32 master weights; bf16
    compute with float32 gradient reduction when ``compute`` is bfloat16, see ``mindcode.precision``)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    bf16 = compute == "bfloat16"
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None,
                                  reduce_dtype=torch.float32 if bf16 else None)
    # with pipelining, every micro-batch would gather the weights again: keep them gathered through the step
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=dp_mesh, mp_policy=policy, reshard_after_forward=not pipelined)
    fully_shard(model, mesh=dp_mesh, mp_policy=policy, reshard_after_forward=not pipelined)


def check_supported(layout: Layout, torch_section: Any, lora: bool, preference: bool, tied: bool = False) -> None:
    """Combinations the gpu backend does not run, refused before anything is built."""
    if tied and (layout.model_parallel > 1 or layout.pipeline_stage > 1 or torch_section.distributed == "fsdp"):
        raise MindcodeError("tie_word_embeddings with model_parallel/pipeline_stage > 1 or FSDP2 is not supported on "
                            "gpu (the shared embedding would be split two ways); train it data parallel with ddp")
    if layout.model_parallel > 1 and layout.data_parallel > 1 and torch_section.distributed == "ddp":
        raise MindcodeError("parallel_config: data_parallel with model_parallel > 1 needs torch.distributed: fsdp "
                            "(DDP does not take tensor-parallel DTensor weights)")
    if lora and layout.pipeline_stage > 1:
        raise MindcodeError("lora with parallel_config.pipeline_stage > 1 is not supported on gpu: shard LoRA runs "
                            "over model_parallel (tensor parallel) and data_parallel with torch.distributed: fsdp")
    if layout.pipeline_stage > 1 and preference:
        raise MindcodeError("stage dpo/simpo with parallel_config.pipeline_stage > 1 is not supported on gpu")
    if torch_section.load_in_4bit and (layout.model_parallel > 1 or layout.pipeline_stage > 1
                                       or torch_section.distributed == "fsdp"):
        raise MindcodeError("torch.load_in_4bit (QLoRA) runs with data parallelism by ddp only")
