"""Weight conversion HF -> MindSpore: mindcode vs MindFormers' ``convert_pt_to_ms``, side by side.

    python scripts/bench_convert.py --params 0.4e9            # ~0.4B-parameter CodeLlama-shaped fp16 model
    python scripts/bench_convert.py --params 0.8e9 --skip_reference

Builds a synthetic CodeLlama-shaped HF checkpoint (sharded fp16 safetensors, random weights) of about the given
size, then converts it with each tool in its own process, measuring wall time and peak RSS (the child's
ru_maxrss), and times a plain `cp` of the same bytes. Prints one JSON object with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindcode.presets import PRESETS  # noqa: E402

# Each tool runs in its own process and reports VmHWM, the peak RSS of its own address space (a forked child's
# ru_maxrss would also count the benchmark's pages from before exec).
PEAK = "print('VmHWM', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
MINDCODE = "import sys\nfrom mindcode.cli import main\nmain(['convert-weight', '--input_path', sys.argv[1], " \
           "'--output_path', sys.argv[2]])\n" + PEAK
REFERENCE = "import sys\nfrom mindformers.models.llama.convert_weight import convert_pt_to_ms\n" \
            "convert_pt_to_ms(sys.argv[1], sys.argv[2], dtype=None)\n" + PEAK


def make_checkpoint(directory: Path, params: float) -> dict:
    """A CodeLlama-7B-shaped layer stack cut to ``params`` (hidden 2048, vocab 32016), written as fp16 shards."""
    from safetensors.numpy import save_file

    base = PRESETS["codellama-7b"].replace(name="bench", hidden_size=2048, intermediate_size=5504, num_heads=16)
    per_layer = 4 * 2048 * 2048 + 3 * 2048 * 5504 + 2 * 2048
    embed = 2 * base.vocab_size * 2048 + 2048
    layers = max(1, round((params - embed) / per_layer))
    config = base.replace(num_layers=layers)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shard, shard_bytes, index, n = {}, 0, {}, 0

    def flush():
        nonlocal shard, shard_bytes, n
        if shard:
            n += 1
            name = f"model-{n:05d}.safetensors"
            save_file(shard, str(directory / name), metadata={"format": "pt"})
            index.update({k: name for k in shard})
            shard, shard_bytes = {}, 0

    for key, shape in config.hf_weight_shapes().items():
        for layer in (range(layers) if "{}" in key else [None]):
            name = key.replace("{}", str(layer)) if layer is not None else key
            shard[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
            shard_bytes += shard[name].nbytes
            if shard_bytes > 256 << 20:
                flush()
    flush()
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    (directory / "config.json").write_text(json.dumps({**config.to_hf_config(), "torch_dtype": "float16"}))
    return {"layers": layers, "params": config.num_params(), "bytes": sum(f.stat().st_size for f in directory.glob("*.safetensors"))}


def timed(code: str, *args: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a child process running ``code``."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"failed ({result.returncode}):\n{result.stderr[-2000:]}")
    peak_kb = int(next(line for line in result.stdout.splitlines() if line.startswith("VmHWM")).split()[1])
    return seconds, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=0.4e9)
    parser.add_argument("--skip_reference", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_convert_"))
    model = make_checkpoint(work / "hf", args.params)
    report = {"params": model["params"], "layers": model["layers"], "bytes": model["bytes"]}

    start = time.perf_counter()
    for f in (work / "hf").glob("*.safetensors"):
        shutil.copyfile(f, work / f.name)
    report["cp_s"] = round(time.perf_counter() - start, 2)
    for f in work.glob("*.safetensors"):
        os.unlink(f)

    s, rss = timed(MINDCODE, str(work / "hf"), str(work / "mindcode.ckpt"))
    report.update({"mindcode_s": round(s, 2), "mindcode_peak_rss_mb": round(rss), "mindcode_over_cp": round(s / report["cp_s"], 2)})
    if not args.skip_reference:
        s, rss = timed(REFERENCE, str(work / "hf"), str(work / "reference.ckpt"))
        report.update({"mindformers_s": round(s, 2), "mindformers_peak_rss_mb": round(rss),
                       "speedup": round(s / report["mindcode_s"], 2),
                       "rss_ratio": round(report["mindcode_peak_rss_mb"] / rss, 3)})
    shutil.rmtree(work)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
