"""MindFormers-style entry point for weight conversion; the same flags as ``mindcode convert-weight``.

    python tools/convert_weight/convert_weight.py --model llama --input_path HF_DIR --output_path model.ckpt
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runnable from a checkout without installing

from mindcode.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["convert-weight", *sys.argv[1:]]))
