"""transformers' LlamaForCausalLM from a mindcode preset: for inference in the checkpoint's dtype, and for training
built on the meta device, parallelized, then filled shard by shard from the HF checkpoint.

Training keeps float32 master weights whatever the checkpoint's dtype (a bf16 init is read and cast per shard);
``torch.precision: bf16`` computes in bf16 on CUDA (``backends/gpu/train.py``). Inference (predict, serve) runs in
the checkpoint's own dtype on CUDA (bf16 for every CodeLlama download) and in float32 on the CPU.
"""

from __future__ import annotations

import warnings
import json
from pathlib import Path
from typing import Any

import torch
import transformers

from backends.gpu.precision import inference_dtype
from mindcode.convert.safetensors_io import checkpoint_dtype
from mindcode.errors import MindcodeError
from mindcode.presets import ModelConfig

# DCP in one process (no process group) is the intended use here, not a mistake to warn about
warnings.filterwarnings("ignore", message="torch.distributed is disabled")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def hf_config(config: ModelConfig) -> Any:
    # SDPA: causal attention without a mask tensor, the same kernel for a whole model and a pipeline stage
    kind = transformers.Qwen2Config if config.qkv_bias else transformers.LlamaConfig
    return kind(**config.to_hf_config(), attn_implementation="sdpa")


def causal_lm(config: ModelConfig) -> Any:
    """transformers' class for the shape: ``LlamaForCausalLM``, or ``Qwen2ForCausalLM`` for biased q/k/v (the same
    module names, so parallel plans, LoRA targets and pipeline stages apply to both)."""
    return transformers.Qwen2ForCausalLM if config.qkv_bias else transformers.LlamaForCausalLM


ROTARY = (transformers.models.llama.modeling_llama.LlamaRotaryEmbedding,
          transformers.models.qwen2.modeling_qwen2.Qwen2RotaryEmbedding)


def check_checkpoint(config: ModelConfig, checkpoint: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``; an error naming the file when it is missing or of another shape."""
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise MindcodeError(f"{checkpoint}: not an HF checkpoint directory (no config.json)")
    values = json.loads(path.read_text())
    loaded = ModelConfig.from_hf_config(values, name=config.name)
    if loaded.hf_weight_shapes() != config.hf_weight_shapes():
        raise MindcodeError(f"{path}: describes a different shape than model {config.name!r}")
    return values


def build_model(config: ModelConfig, checkpoint: str | Path | None, device: Any,
                load_in_4bit: bool = False, tensor_parallel: int = 1) -> Any:
    """For inference: weights in the checkpoint's dtype on CUDA (float32 on the CPU), on ``device``; random
    float32 weights without a checkpoint. ``load_in_4bit``: NF4 base weights for QLoRA (CUDA only).
    ``tensor_parallel``: this rank's slice of a model split over that many ranks (``parallel_config.model_parallel``
    under torchrun), built on the meta device and filled from the checkpoint's slices only."""
    if load_in_4bit:
        return _load_4bit(checkpoint, device)
    if checkpoint is None:
        return causal_lm(config)(hf_config(config)).to(device).eval()
    check_checkpoint(config, checkpoint)
    dtype = DTYPES[inference_dtype(checkpoint_dtype(checkpoint), device.type)]
    if tensor_parallel > 1:
        from torch.distributed.device_mesh import init_device_mesh

        from backends.gpu.parallel import apply_tensor_parallel
        from mindcode.parallel import ParallelConfig, check_model, resolve

        model = empty_model(config).to(dtype)
        layout = resolve(ParallelConfig(model_parallel=tensor_parallel), tensor_parallel)
        check_model(layout, config, 1, 1, "tensor-parallel prediction")
        mesh = init_device_mesh(device.type, (tensor_parallel,), mesh_dim_names=("tp",))
        apply_tensor_parallel(model, layout, mesh["tp"])
        materialize(model, device, checkpoint)
        return model.eval()
    model = causal_lm(config).from_pretrained(str(checkpoint), dtype=dtype, attn_implementation="sdpa",
                                                          device_map={"": device})
    return model.eval()


def empty_model(config: ModelConfig) -> Any:
    """The model on the meta device (no memory): it is split and sharded first, then materialized per rank."""
    with torch.device("meta"):
        return causal_lm(config)(hf_config(config))


def hf_name(name: str) -> str:
    """A parameter's name in the HF checkpoint (PEFT wraps the model and moves adapted weights to ``base_layer``)."""
    return name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def materialize(model: Any, device: Any, checkpoint: str | Path) -> None:
    """Allocate this rank's part of ``model`` on ``device`` and read it from the HF ``checkpoint``: every rank
    reads only the slices of its shards (``torch.distributed.checkpoint``'s HF reader), cast to the parameters' dtype
    (float32 master weights for training; the checkpoint's own for tensor-parallel inference)."""
    import torch.distributed.checkpoint as dcp

    model.to_empty(device=device)
    for module in model.modules():  # the rotary frequencies are a non-persistent buffer: computed, not loaded
        if isinstance(module, ROTARY):
            inv_freq, module.attention_scaling = module.rope_init_fn(module.config, device)
            module.inv_freq = inv_freq
            module.original_inv_freq = inv_freq
    state = {hf_name(k): v for k, v in model.state_dict().items() if "lora_" not in k}
    tied = model.config.tie_word_embeddings
    if tied:  # the head is the embedding: the checkpoint has no lm_head.weight of its own
        state.pop("lm_head.weight", None)
    with torch.no_grad():
        dcp.load(state, storage_reader=dcp.HuggingFaceStorageReader(str(checkpoint)))
    if tied:
        model.tie_weights()  # to_empty gave the head a tensor of its own


def _load_4bit(checkpoint: str | Path | None, device: Any) -> Any:
    if device.type != "cuda":
        raise MindcodeError("torch.load_in_4bit (QLoRA) needs a CUDA device (bitsandbytes' NF4 kernels)")
    if checkpoint is None:
        raise MindcodeError("torch.load_in_4bit (QLoRA) quantizes pretrained weights: set training.init")
    try:
        import bitsandbytes  # noqa: F401
        from peft import prepare_model_for_kbit_training
    except ImportError:
        raise MindcodeError("QLoRA needs bitsandbytes: pip install 'mindcode[qlora]'") from None
    quantization = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                   bnb_4bit_use_double_quant=True,
                                                   bnb_4bit_compute_dtype=torch.bfloat16)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), quantization_config=quantization,
                                                              device_map={"": device.index or 0}, dtype=torch.bfloat16)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
