"""Cross-backend tolerances, one table keyed by (device, dtype). Measured values are in the closing notes."""

# float32 on CPU: MindFormers vs transformers measured about 2e-7 relative on logits.
TOLERANCES = {
    # sharded_rel: a 2-process layout (FSDP2, tensor, pipeline) against one process, per-step loss, grad norm and
    # exported weights; measured up to ~9e-7.
    ("cpu", "float32"): {"logits_rel": 1e-5, "loss_rel": 1e-5, "sharded_rel": 1e-5},
}


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: one number that is scale-free and catches any bad element."""
    import numpy as np

    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
