"""Weight conversion between HF (transformers) checkpoints and MindSpore/MindFormers checkpoints."""
