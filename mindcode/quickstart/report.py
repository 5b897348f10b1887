"""``mindcode report RUN_DIR``: report.md and a self-contained report.html from a quickstart run's files.

Pictures are PNGs drawn with matplotlib and inlined as data URIs, so the HTML is one file that opens anywhere.
The page marks ``<body data-images-ok>`` once every image has decoded (what the browser test checks).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from mindcode.errors import MindcodeError

TRAIN_DIRS = {"gpu": "05_train_gpu", "ascend": "06_train_ascend"}


def _load(run: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    results = {}
    for marker in sorted(run.glob("*/result.json")):
        results[marker.parent.name] = json.loads(marker.read_text())
    if not results:
        raise MindcodeError(f"{run}: no step results (run `mindcode quickstart --output_dir {run}` first)")
    metrics = {}
    for backend, folder in TRAIN_DIRS.items():
        path = run / folder / "metrics.jsonl"
        if path.exists():
            metrics[backend] = [json.loads(line) for line in path.read_text().splitlines() if line]
    return results, metrics


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(metrics: dict[str, list[dict[str, Any]]], out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    styles = {"gpu": dict(color="#1f77b4", lw=2.5), "ascend": dict(color="#d62728", lw=1.2, ls="--")}
    for backend, rows in metrics.items():
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=f"{backend}", **styles[backend])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Loss curves, both backends from the same init and data")
    ax.legend()
    ax.grid(alpha=0.3)
    images["loss_curves"] = _png(fig)
    plt.close(fig)
    if len(metrics) == 2:
        fig, ax = plt.subplots(figsize=(7, 3.0))
        diffs = [abs(a["loss"] - g["loss"]) / abs(g["loss"]) for a, g in zip(metrics["ascend"], metrics["gpu"])]
        ax.semilogy([r["step"] for r in metrics["gpu"]], [max(d, 1e-12) for d in diffs], color="#2ca02c")
        ax.axhline(1e-4, color="gray", ls=":", label="parity tolerance 1e-4")
        ax.set_xlabel("step")
        ax.set_ylabel("|ascend - gpu| / gpu")
        ax.set_title("Per-step relative loss difference")
        ax.legend()
        ax.grid(alpha=0.3, which="both")
        images["loss_diff"] = _png(fig)
        plt.close(fig)
    for name, data in images.items():
        (out / f"{name}.png").write_bytes(base64.b64decode(data))
    return images


def _tables(results: dict[str, Any], metrics: dict[str, list[dict[str, Any]]]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    parity = results.get("10_parity", {})
    if parity:
        rows = [["max per-step relative loss difference", f"{parity.get('loss_max_rel_diff', float('nan')):.2e}"],
                ["mean per-step relative loss difference", f"{parity.get('loss_mean_rel_diff', float('nan')):.2e}"],
                ["logits, same weights, MindFormers vs transformers (max rel. error)",
                 f"{parity.get('logits_rel_error_same_weights', float('nan')):.2e}"],
                ["next-token argmax agreement, same weights", f"{parity.get('argmax_agreement', float('nan')):.4f}"],
                ["identical HumanEval generations", str(parity.get("humaneval_identical_generations", "-"))],
                ["identical translation generations", str(parity.get("translation_identical_generations", "-"))]]
        tables.append(("Parity", ["check", "value"], rows))
    evaluation = results.get("09_evaluate", {})
    if evaluation:
        rows = [[b, f"{e['pass@1']:.4f} ({e['humaneval_tasks']} tasks)", f"{e['sacrebleu']:.2f}",
                 f"{e['codexglue_bleu']:.2f}", f"{e['exact_match']:.4f}"]
                for b, e in evaluation.items() if not b.startswith("_")]
        tables.append(("Evaluation (tiny model: the numbers show the pipeline works, not that it codes)",
                       ["backend", "HumanEval pass@1", "sacreBLEU", "CodeXGLUE BLEU", "exact match"], rows))
    training = [[b, f"{results[d]['first_loss']:.4f}", f"{results[d]['final_loss']:.4f}",
                 f"{results[d]['tokens_per_s']:.0f}", results[d]["device"]]
                for b, d in TRAIN_DIRS.items() if d in results]
    if training:
        tables.append(("Training", ["backend", "first loss", "final loss", "tokens/s", "device"], training))
    cost = []
    for backend, folder in TRAIN_DIRS.items():
        rows = metrics.get(backend, [])
        if not rows:
            continue
        times = sorted(r["step_time_s"] for r in rows[5:] or rows)  # after compilation / warm-up
        device = max((r.get("device_memory_mb", 0) for r in rows), default=0)
        layout = results.get(folder, {}).get("parallel", {})
        cost.append([backend, f"{times[len(times) // 2] * 1000:.1f}", f"{times[-1] * 1000:.1f}",
                     f"{max(r.get('peak_rss_mb', 0) for r in rows):.0f}", f"{device:.0f}" if device else "-",
                     "dp{data_parallel}/mp{model_parallel}/pp{pipeline_stage}".format(**layout) if layout else "-"])
    if cost:
        tables.append(("Per-step cost", ["backend", "median step (ms)", "slowest step (ms)", "peak RSS (MB)",
                                         "device peak (MB)", "layout (per rank)"], cost))
    timing = [[name, f"{r.get('_seconds', 0):.1f}"] for name, r in results.items()]
    tables.append(("Timing", ["step", "seconds"], timing + [["total", f"{sum(r.get('_seconds', 0) for r in results.values()):.1f}"]]))
    return tables


def _environment() -> list[list[str]]:
    from mindcode.env import environment

    env = environment()
    rows = [["mindcode", env["mindcode"]], ["python", env["python"]], ["platform", env["platform"]]]
    for name, backend in env["backends"].items():
        versions = ", ".join(f"{k} {v}" for k, v in backend["versions"].items() if v)
        rows.append([f"backend {name}", f"{backend['device']} - {versions}"])
    return rows


def write_report(run_dir: str | Path) -> dict[str, Any]:
    run = Path(run_dir)
    results, metrics = _load(run)
    images = _plots(metrics, run) if metrics else {}
    tables = _tables(results, metrics) + [("Environment", ["what", "version"], _environment())]

    md = ["# mindcode quickstart report", "",
          "The whole pipeline on the embedded tiny default: data, tokenization, training on both backends from one "
          "initialisation, conversion back to HF, generation, evaluation.", ""]
    if "loss_curves" in images:
        md += ["![Loss curves](loss_curves.png)", ""]
    if "loss_diff" in images:
        md += ["![Per-step loss difference](loss_diff.png)", ""]
    for title, head, rows in tables:
        md += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]
    (run / "report.md").write_text("\n".join(md))

    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mindcode quickstart report</title>",
             "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}table{border-collapse:"
             "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}th{background:#f4f4f4}"
             "img{max-width:100%}</style></head><body>",
             "<h1>mindcode quickstart report</h1><p>The whole pipeline on the embedded tiny default: data, "
             "tokenization, training on both backends from one initialisation, conversion back to HF, generation, "
             "evaluation.</p>"]
    for name, alt in (("loss_curves", "Loss curves"), ("loss_diff", "Per-step loss difference")):
        if name in images:
            parts.append(f"<figure><img alt='{alt}' src='data:image/png;base64,{images[name]}'></figure>")
    for title, head, rows in tables:
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                     + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                                         for row in rows) + "</table>")
    parts.append("<script>window.addEventListener('load',function(){var imgs=document.images,ok=imgs.length>0;"
                 "for(var i=0;i<imgs.length;i++){if(!imgs[i].complete||imgs[i].naturalWidth===0){ok=false;}}"
                 "document.body.setAttribute('data-images-ok',ok?'yes':'no');});</script></body></html>")
    (run / "report.html").write_text("".join(parts))
    return {"report_md": str(run / "report.md"), "report_html": str(run / "report.html"), "images": sorted(images)}
