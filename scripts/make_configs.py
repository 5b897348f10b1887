"""Write the CodeLlama, DeepSeek-Coder and Qwen2.5-Coder ascend/gpu config twins from one table, so their shared
sections cannot drift.

    python scripts/make_configs.py          # rewrites configs/{ascend,gpu}/{codellama,deepseek_coder,qwen2_5_coder}_*.yaml

Shapes come from mindcode's presets; the 34B layouts are MindFormers' published ones (CodeLlama-34B card: 16p finetune
dp1/mp8/pp2 with 128 micro-batches and sequence parallel, 32p dp2/mp4/pp4); the 7B/13B ones are sized with
`mindcode plan` to fit a 64 GB Atlas 800T A2 and an 80 GB H100: full fine-tunes shard weights and AdamW state over
all 8 devices (FSDP2; MindFormers' parallel optimizer, as its Llama2-7B finetune YAML), LoRA replicates the frozen
base. The same layout is in both twins.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.presets import PRESETS  # noqa: E402

RUNS = {
    # name: (preset, devices, parallel_config, batch_size, max_steps, learning_rate, what)
    # 7B: weights and AdamW state sharded over all 8 devices, no model parallel (torchtitan's FSDP2 choice; on ascend
    # MindFormers' own Llama2-7B finetune layout: dp8 with the parallel optimizer, semi-auto mode). 13B: dp8 fits a
    # 910B only with 8 accumulation steps, where FSDP2's unsharded gradients between micro-batches overflow an H100
    # (`mindcode plan`); the twins share one training section, so dp4 x mp2 with sequence parallel
    "codellama_7b_finetune": ("codellama-7b", 8, {"data_parallel": 8, "model_parallel": 1, "pipeline_stage": 1},
                              64, 2000, 2.0e-5, "CodeLlama-7B full fine-tune on 8 devices"),
    "codellama_13b_finetune": ("codellama-13b", 8, {"data_parallel": 4, "model_parallel": 2, "pipeline_stage": 1,
                                                    "use_seq_parallel": True},
                               64, 2000, 2.0e-5, "CodeLlama-13B full fine-tune on 8 devices"),
    "codellama_34b_finetune_16p": ("codellama-34b", 16, {"data_parallel": 1, "model_parallel": 8, "pipeline_stage": 2,
                                                         "micro_batch_num": 128, "use_seq_parallel": True,
                                                         "vocab_emb_dp": False}, 128, 2000, 1.0e-5,
                                   "CodeLlama-34B full fine-tune, 16 devices (2 nodes)"),
    "codellama_34b_finetune_32p": ("codellama-34b", 32, {"data_parallel": 2, "model_parallel": 4, "pipeline_stage": 4,
                                                         "micro_batch_num": 128, "use_seq_parallel": True,
                                                         "vocab_emb_dp": False}, 256, 2000, 1.0e-5,
                                   "CodeLlama-34B full fine-tune, 32 devices (4 nodes)"),
    "codellama_34b_pretrain": ("codellama-34b", 32, {"data_parallel": 2, "model_parallel": 4, "pipeline_stage": 4,
                                                     "micro_batch_num": 128, "use_seq_parallel": True,
                                                     "vocab_emb_dp": False}, 256, 100000, 3.0e-4,
                               "CodeLlama-34B continued pretraining on wiki-style rows, 32 devices"),
    "codellama_7b_lora": ("codellama-7b", 8, {"data_parallel": 8, "model_parallel": 1, "pipeline_stage": 1},
                          16, 2000, 2.0e-4, "CodeLlama-7B LoRA (rank 16, attention and MLP) on 8 devices"),
    # LoRA on a model too large for one device: the adapters split with the layers they adapt (tensor parallel)
    "codellama_34b_lora_8p": ("codellama-34b", 8, {"data_parallel": 1, "model_parallel": 8, "pipeline_stage": 1,
                                                   "use_seq_parallel": True}, 16, 2000, 2.0e-4,
                              "CodeLlama-34B LoRA (rank 16, attention and MLP) on 8 devices (one node)"),
    "codellama_7b_dpo": ("codellama-7b", 8, {"data_parallel": 2, "model_parallel": 4, "pipeline_stage": 1},
                         64, 1000, 5.0e-7, "CodeLlama-7B DPO after SFT on 8 devices"),
    # seed 001 (Magicoder-S-DS: OSS-Instruct on DeepSeek-Coder-6.7B; the paper: lr 5e-5, batch 512, 2 epochs)
    "deepseek_coder_6_7b_finetune": ("deepseek-coder-6.7b", 8, {"data_parallel": 2, "model_parallel": 4,
                                                               "pipeline_stage": 1}, 512, 300, 5.0e-5,
                                     "DeepSeek-Coder-6.7B full fine-tune (Magicoder's recipe) on 8 devices"),
    "deepseek_coder_6_7b_lora": ("deepseek-coder-6.7b", 8, {"data_parallel": 8, "model_parallel": 1,
                                                           "pipeline_stage": 1}, 16, 2000, 2.0e-4,
                                 "DeepSeek-Coder-6.7B LoRA (rank 16, attention and MLP) on 8 devices"),
    # MindFormers' own layout for Qwen2.5-7B (research/qwen2_5/finetune_qwen2_5_7b_8k.yaml): dp4 / pp2, 16 micro-batches
    "qwen2_5_coder_7b_finetune": ("qwen2.5-coder-7b", 8, {"data_parallel": 4, "model_parallel": 1, "pipeline_stage": 2,
                                                         "micro_batch_num": 16, "vocab_emb_dp": False},
                                  64, 2000, 1.0e-5, "Qwen2.5-Coder-7B full fine-tune on 8 devices"),
    "qwen2_5_coder_7b_lora": ("qwen2.5-coder-7b", 8, {"data_parallel": 8, "model_parallel": 1, "pipeline_stage": 1},
                              16, 2000, 2.0e-4, "Qwen2.5-Coder-7B LoRA (rank 16, attention and MLP) on 8 devices"),
}
# Micro-batches per optimizer step where no pipeline splits the batch: rows per data-parallel rank per micro-batch
# stay small enough for 4096-token rows (see `mindcode plan`).
ACCUMULATION = {"codellama_7b_finetune": 8, "codellama_13b_finetune": 8, "codellama_7b_dpo": 16,
                "deepseek_coder_6_7b_finetune": 64, "codellama_34b_lora_8p": 16}
# MindFormers' own settings for CodeLlama on Atlas A2 (its model card): bf16 matrix products with float32 parameters,
# norms, softmax and rotary embedding, and flash attention. The gpu backend reads only the shape from this section.
DTYPES = {"compute_dtype": "bfloat16", "param_init_type": "float32", "layernorm_compute_type": "float32",
          "softmax_compute_type": "float32", "rotary_dtype": "float32", "use_flash_attention": True}
# LoRA runs: their adapter (the same rank, alpha and target modules on both backends).
LORA_ALL = {"rank": 16, "alpha": 32, "dropout": 0.05,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
LORA = {"codellama_7b_lora": LORA_ALL, "deepseek_coder_6_7b_lora": LORA_ALL, "qwen2_5_coder_7b_lora": LORA_ALL,
        "codellama_34b_lora_8p": LORA_ALL}
# Preference runs: their stage and settings (TRL's defaults), and the SFT model they start from.
STAGES = {"codellama_7b_dpo": {"stage": "dpo", "init": "checkpoints/codellama-7b-sft-hf",
                               "preference": {"beta": 0.1, "label_smoothing": 0.0, "rpo_alpha": 0.0}}}


def shared(name: str) -> dict:
    preset, _devices, _layout, batch, steps, lr, _ = RUNS[name]
    shape = PRESETS[preset].to_mindformers_config()
    shape = {k: v for k, v in shape.items() if v is not None}
    stage = STAGES.get(name, {})
    body = {
        **({"stage": stage["stage"]} if stage else {}),
        "model": {"arch": {"type": "LlamaForCausalLM"},
                  "model_config": {"type": "LlamaConfig", "seq_length": 4096, **shape, **DTYPES}},
        "data": {"mindrecord": f"data/{name}/train.mindrecord", "npy": f"data/{name}/train_npy", "shuffle": True},
        "optimizer": {"type": "AdamW", "betas": [0.9, 0.95], "eps": 1.0e-8, "weight_decay": 0.1},
        "schedule": {"type": "CosineWithWarmUpLR", "learning_rate": lr, "warmup_ratio": 0.03, "lr_end": 0.0},
        "training": {"batch_size": batch, "gradient_accumulation_steps": ACCUMULATION.get(name, 1), "max_steps": steps,
                     "max_grad_norm": 1.0, "save_steps": 500, "init": stage.get("init", f"checkpoints/{preset}-hf"),
                     "seed": 0},
        "parallel_config": RUNS[name][2],
    }
    if name in LORA:
        body["lora"] = dict(LORA[name])
    if stage:
        body["preference"] = stage["preference"]
    return body


def write(backend: str, name: str) -> None:
    preset, devices, layout, *_, what = RUNS[name]
    body = {"backend": backend, **shared(name)}
    body["training"]["output_dir"] = f"runs/{name}/{backend}"
    for section in ("lora", "preference"):  # the backend section after the shared ones
        if section in body:
            body[section] = body.pop(section)
    if backend == "ascend":
        # the parallel optimizer (weights and AdamW state sharded; the job then runs semi-auto parallel) for full
        # fine-tunes and pretraining; LoRA's state is small: its data-parallel jobs run MindSpore's data-parallel mode
        sharded = name not in LORA or layout.get("model_parallel", 1) > 1
        body["mindformers"] = {"loss_scale": 1.0, "recompute": True, "enable_parallel_optimizer": sharded}
        launch = (f"bash scripts/msrun_launcher.sh \"mindcode train --config configs/ascend/{name}.yaml\" "
                  f"{devices} {min(devices, 8)} MASTER_ADDR 8118 NODE_RANK output/msrun_log False 7200")
    else:
        body["torch"] = {"precision": "bf16", "distributed": "fsdp", "gradient_checkpointing": True, "compile": False}
        launch = (f"bash scripts/torchrun_launcher.sh \"mindcode train --config configs/gpu/{name}.yaml\" "
                  f"{devices} {min(devices, 8)} MASTER_ADDR 29500 NODE_RANK output/torchrun_log False 7200")
    dims = "/".join(f"{key[0]}p{layout.get(key, 1)}" for key in ("data_parallel", "model_parallel", "pipeline_stage"))
    header = (f"# Launch: mindcode train --config configs/{backend}/{name}.yaml\n"
              f"# {what}, parallel_config {dims}:\n#   {launch}\n"
              f"# Before launching: mindcode plan --config configs/{backend}/{name}.yaml   (memory per device)\n"
              f"# Written by scripts/make_configs.py; edit the table there.\n")
    path = ROOT / "configs" / backend / f"{name}.yaml"
    path.write_text(header + yaml.safe_dump(body, sort_keys=False, width=120))


if __name__ == "__main__":
    for run in RUNS:
        for backend in ("ascend", "gpu"):
            write(backend, run)
    print(f"wrote {2 * len(RUNS)} configs")
