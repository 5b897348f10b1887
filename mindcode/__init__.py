"""mindcode: fine-tune, run and evaluate code LLMs on Ascend (MindSpore/MindFormers) and NVIDIA (PyTorch)."""

import os

__version__ = "0.1.0"

# MindSpore sets protobuf's pure-Python implementation when it is imported (large checkpoints overflow the C one),
# which fails ("Descriptors cannot be created directly") if anything imported protobuf before it, e.g. transformers'
# sentencepiece tokenizer conversion. Choosing MindSpore's setting before either is imported makes the order moot.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
