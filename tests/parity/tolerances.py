"""Cross-backend tolerances, one table keyed by (device, dtype). Measured values are in the closing notes."""

# float32 on CPU: MindFormers vs transformers measured about 2e-7 relative on logits.
TOLERANCES = {
    # sharded_rel: a 2-process layout (FSDP2, tensor, pipeline) against one process, per-step loss, grad norm and
    # exported weights; measured up to ~9e-7. sharded_lora_rel: the exported LoRA adapters of 2-process LoRA against
    # one process, relative to their own largest entry (lora_B starts at zero and stays small, so Adam's
    # normalised steps turn reduction-order rounding into a larger share of it); measured 1.23e-5 under FSDP2 on a
    # fresh install of 2026-12-02 (peft 0.20.0 and 0.21.2 alike), and on 2026-12-06 5.1e-6 (FSDP2), 4.7e-5 (tensor
    # parallel) and 4.8e-5 (tensor + sequence parallel: a different reduction order) while the loss and grad norm
    # stay within 2.3e-7; a wrong split of the adapters is off by 5e-4 already in the loss.
    # real_model_loss_rel: LoRA on the real SmolLM2-135M (30 layers, 49k vocabulary), per-step loss, ascend against
    # gpu; measured 5.9e-6 (the tiny model's 1e-5 budget is for 2 layers). real_model_lora_rel: the exported adapters'
    # updates B @ A after 4 steps, all together (Frobenius norm of the difference over that of the gpu's); measured 1.1e-4.
    ("cpu", "float32"): {"logits_rel": 1e-5, "loss_rel": 1e-5, "sharded_rel": 1e-5, "sharded_lora_rel": 2e-4,
                         "real_model_loss_rel": 1e-4, "real_model_lora_rel": 1e-3},
}


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: one number that is scale-free and catches any bad element."""
    import numpy as np

    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
