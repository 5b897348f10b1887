"""Cross-backend tolerances, one table keyed by (device, dtype). Measured values are in the closing notes."""

# float32 on CPU: MindFormers vs transformers measured about 2e-7 relative on logits.
TOLERANCES = {
    ("cpu", "float32"): {"logits_rel": 1e-5, "loss_rel": 1e-5},
}


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: one number that is scale-free and catches any bad element."""
    import numpy as np

    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
