"""mindcode: fine-tune, run and evaluate code LLMs on Ascend (MindSpore/MindFormers) and NVIDIA (PyTorch)."""

__version__ = "0.1.0"
