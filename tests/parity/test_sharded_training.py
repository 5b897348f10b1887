"""The gpu backend's parallel layouts with real torchrun processes (gloo) started by `mindcode launch`: from one HF
init, 2 processes take the single process's steps (per-step loss and global grad norm) and export its weights, for
FSDP2, tensor parallel (with sequence parallel and a vocabulary-split embedding), both pipeline schedules, LoRA under
FSDP2 and under tensor (+ sequence) parallel, and (4 processes) FSDP2 x tensor parallel on a 2-D mesh; a run killed under FSDP2 resumes to the uninterrupted
losses; a bf16 init trains and exports bf16."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.convert.safetensors_io import iter_tensors, list_tensors
from mindcode.train.loop import train
from tests.conftest import launch_command, launch_train, write_hf_checkpoint, write_training_inputs
from tests.parity.tolerances import TOLERANCES, relative_error

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TINY, LORA = "configs/gpu/tiny_cpu.yaml", "configs/gpu/lora_tiny_cpu.yaml"
STEPS = 8
TOL = TOLERANCES[("cpu", "float32")]["sharded_rel"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("sharded"))


def overrides(work: Path, name: str, *extra: str, steps: int = STEPS) -> list[str]:
    return [f"data.npy={work / 'npy'}", f"data.mindrecord={work / 'train.mindrecord'}", f"training.init={work / 'init'}",
            f"training.output_dir={work / name}", f"training.max_steps={steps}", *extra]


def launch(work: Path, name: str, config: str, *args: str, nproc: int = 2) -> Path:
    launch_train(config, list(args), work / f"{name}_logs", nproc, cwd=ROOT)
    return work / name


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def worst(run: Path, reference: Path, key: str) -> float:
    got, expected = [m[key] for m in metrics(run)], [m[key] for m in metrics(reference)]
    assert len(got) == len(expected)
    return max(abs(a - b) / abs(b) for a, b in zip(got, expected))


def check_plan(run: Path, config: str, args: list[str], world: int) -> None:
    """The plan's weights, gradients and AdamW moments equal every rank's summed tensor bytes exactly."""
    from mindcode.parallel import resolve
    from mindcode.plan.devices import get_device
    from mindcode.plan.memory import train_terms

    measured = json.loads((run / "summary.json").read_text())["memory"]["measured_per_rank"]
    loaded = load_config(ROOT / config, [a for a in args if "=" in a])
    layout = resolve(loaded.parallel_config, world)
    assert len(measured) == world
    for rank in measured:
        terms = train_terms(loaded, layout, rank["rank"], get_device("cpu", "gpu"))["terms"]
        assert {k: rank[k] for k in ("weights", "gradients", "optimizer")} == \
            {k: terms[k] for k in ("weights", "gradients", "optimizer")}, rank
        if "unsharded_gradients" in rank:  # FSDP2 with accumulation: what it holds between micro-batches
            assert rank["unsharded_gradients"] == terms["unsharded_gradients"] > 0, rank
        if "pipeline_buffers" in rank:  # the pipeline stage's receive buffers, one per micro-batch
            assert rank["pipeline_buffers"] == terms["pipeline_buffers"] > 0, rank


def weights(directory: Path) -> dict[str, np.ndarray]:
    return {info.name: array for info, array in iter_tensors(directory)}


@pytest.fixture(scope="module")
def single(work):
    return Path(train(load_config(ROOT / TINY, overrides(work, "single")), progress=False)["output_dir"])


LAYOUTS = {
    "fsdp2": ["parallel_config.data_parallel=2", "torch.distributed=fsdp"],
    "tensor": ["parallel_config.model_parallel=2"],
    "tensor+sequence+vocab": ["parallel_config.model_parallel=2", "parallel_config.use_seq_parallel=true",
                              "parallel_config.vocab_emb_dp=false"],
    "pipeline-1f1b": ["parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2"],
    "pipeline-gpipe": ["parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=4",
                       "torch.pipeline_schedule=gpipe"],
    "pipeline+compile": ["parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2", "torch.compile=true"],
    "fsdp2+tensor (2-D mesh, 4 processes)": ["parallel_config.model_parallel=2", "torch.distributed=fsdp"],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_two_processes_take_the_single_process_steps(work, single, layout):
    name, world = layout.split(" ")[0], 4 if "4 processes" in layout else 2
    args = overrides(work, name, *LAYOUTS[layout])
    run = launch(work, name, TINY, *args, nproc=world)
    check_plan(run, TINY, args, world)
    loss, norm = worst(run, single, "loss"), worst(run, single, "grad_norm")
    print(f"\n{layout}: worst per-step relative difference: loss {loss:.2e}, grad norm {norm:.2e}")
    assert loss <= TOL and norm <= TOL
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((single / "summary.json").read_text())
    assert summary["parallel"]["data_parallel"] * summary["parallel"]["model_parallel"] * \
        summary["parallel"]["pipeline_stage"] == (4 if "4 processes" in layout else 2)
    assert summary["optimizer_groups"] == expected["optimizer_groups"]  # weight decay on the same tensors
    # the head split by vocabulary keeps its logits split: loss_parallel's cross entropy, no [rows, seq, vocab] gather
    # (a pipeline's logits live inside its schedule: not observed there)
    split = "vocab" in layout
    local = None if "pipeline" in layout else 1024 // (2 if split else 1)
    assert summary["logits"] == {"vocab_parallel_loss": split, "local_vocab": local}
    got, reference = weights(run / "final"), weights(single / "final")
    assert set(got) == set(reference)
    err = max(relative_error(got[k], reference[k]) for k in reference)
    assert err <= TOL, f"exported weights differ by {err:.2e}"


@pytest.fixture(scope="module")
def single_lora(work):
    return Path(train(load_config(ROOT / LORA, overrides(work, "lora1")), progress=False)["output_dir"])


LORA_LAYOUTS = {
    "fsdp2": ["torch.distributed=fsdp"],
    # q/k/v (column-wise: B split with the base's rows) and o (row-wise: A split with the base's columns)
    "tensor": ["parallel_config.model_parallel=2"],
    "tensor+sequence": ["parallel_config.model_parallel=2", "parallel_config.use_seq_parallel=true"],
}


@pytest.mark.parametrize("layout", LORA_LAYOUTS)
def test_lora_on_two_processes_equals_one_process(work, single_lora, layout):
    single, name = single_lora, f"lora2-{layout}"
    args = overrides(work, name, *LORA_LAYOUTS[layout])
    run = launch(work, name, LORA, *args)
    check_plan(run, LORA, args, 2)
    loss, norm = worst(run, single, "loss"), worst(run, single, "grad_norm")
    got, reference = weights(run / "final"), weights(single / "final")
    assert set(got) == set(reference) and all("lora_" in k for k in got)
    adapters = max(relative_error(got[k], reference[k]) for k in reference)
    print(f"\nlora {layout}: worst per-step relative difference: loss {loss:.2e}, grad norm {norm:.2e}; "
          f"exported adapters {adapters:.2e}")
    assert loss <= TOL and norm <= TOL
    assert adapters <= TOLERANCES[("cpu", "float32")]["sharded_lora_rel"]


def test_uneven_shapes_from_the_shared_random_init_match_the_plan(work):
    """FSDP2 shards of uneven sizes (rows not divisible by 2) and 3 layers, from the seed's random init (no
    training.init): the plan still equals every rank's tensors; one process and two take the same steps."""
    shape = ["model.model_config.intermediate_size=91", "model.model_config.num_layers=3",
             "model.model_config.hidden_size=48", "training.init=''"]
    one = Path(train(load_config(ROOT / TINY, overrides(work, "odd1", *shape)), progress=False)["output_dir"])
    args = overrides(work, "odd2", *shape, "torch.distributed=fsdp")
    run = launch(work, "odd2", TINY, *args)
    check_plan(run, TINY, args, 2)
    assert worst(run, one, "loss") <= TOL


def descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def test_sigkill_under_fsdp2_then_resume_reproduces_the_run(work, single):
    args = overrides(work, "killed", "torch.distributed=fsdp", "training.save_steps=4", steps=12)
    full = Path(train(load_config(ROOT / TINY, overrides(work, "full12", steps=12)), progress=False)["output_dir"])
    proc = subprocess.Popen(launch_command(TINY, args, work / "killed_logs"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHON": sys.executable})
    out, deadline = work / "killed", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 6:
            for pid in [*descendants(proc.pid), proc.pid]:  # torchrun's workers run in sessions of their own
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert (out / "checkpoints" / "step_4" / ".metadata").is_file()
    run = launch(work, "killed", TINY, *args, "--resume")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from"] >= 4 and len(metrics(run)) == 12
    assert worst(run, full, "loss") <= TOL


def test_a_bf16_init_trains_and_exports_bf16(work):
    init = write_hf_checkpoint(work / "init_bf16", load_config(ROOT / TINY).model.shape(), dtype="bfloat16")
    one = Path(train(load_config(ROOT / TINY, overrides(work, "bf16_1", f"training.init={init}")),
                     progress=False)["output_dir"])
    two = launch(work, "bf16_2", TINY, *overrides(work, "bf16_2", f"training.init={init}", "torch.distributed=fsdp"))
    for run in (one, two):
        assert {info.dtype for info in list_tensors(run / "final")} == {"BF16"}
        assert json.loads((run / "final" / "config.json").read_text())["torch_dtype"] == "bfloat16"
        losses = [m["loss"] for m in metrics(run)]
        assert losses[-1] < losses[0] - 0.5  # it learns from the bf16 weights
    assert worst(two, one, "loss") <= TOL


@pytest.mark.cuda
def test_on_cuda_each_rank_binds_its_gpu_and_computes_in_bf16(work):
    """CUDA only: one process trains in bf16 on cuda:0 (peak allocation reported); with 2 GPUs, 2 FSDP2 ranks bind
    cuda:0 and cuda:1 (NCCL) and take the single process's steps to bf16 accuracy."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    one = train(load_config(ROOT / TINY, overrides(work, "cuda1", "torch.precision=bf16")), progress=False)
    assert one["device"] == "cuda:0" and all("device_memory_mb" in m for m in metrics(Path(one["output_dir"])))
    if torch.cuda.device_count() < 2:
        return
    run = launch(work, "cuda2", TINY, *overrides(work, "cuda2", "torch.precision=bf16", "torch.distributed=fsdp"))
    measured = json.loads((run / "summary.json").read_text())["memory"]["measured_per_rank"]
    assert all(r["cuda_max_allocated"] > 0 for r in measured)
    assert worst(run, Path(one["output_dir"]), "loss") <= 2e-2  # bf16 compute


def precision_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())["precision"]


def test_bf16_is_what_every_layout_computes_in_and_the_summary_says_so(work):
    """`torch.precision: bf16` on the pipeline path (2 gloo ranks, pp2, outside FSDP2) and in one process: the
    decoder layers really compute in bf16 (observed with a hook), with float32 master weights; fp32 stays fp32."""
    args = overrides(work, "bf16_pp2", "torch.precision=bf16", "parallel_config.pipeline_stage=2",
                     "parallel_config.micro_batch_num=2", steps=2)
    run = launch(work, "bf16_pp2", TINY, *args)
    check_plan(run, TINY, args, 2)  # the stages' receive buffers in the residual stream's dtype (float32 here)
    report = precision_of(run)
    assert report["compute"] == "bfloat16" and [r["rank"] for r in report["per_rank"]] == [0, 1]
    assert {(r["activations"], r["master_weights"]) for r in report["per_rank"]} == {("bfloat16", "float32")}
    one = train(load_config(ROOT / TINY, overrides(work, "bf16_one", "torch.precision=bf16", steps=2)),
                progress=False)
    assert precision_of(Path(one["output_dir"]))["per_rank"] == [
        {"rank": 0, "activations": "bfloat16", "master_weights": "float32", "gradient_reduce": None}]
    fp32 = train(load_config(ROOT / TINY, overrides(work, "fp32_one", steps=2)), progress=False)
    assert precision_of(Path(fp32["output_dir"]))["per_rank"][0]["activations"] == "float32"


def test_the_plan_counts_a_pipeline_under_fsdp2_in_bf16(work):
    """pp2 x FSDP2 over 4 processes in bf16: the receive buffers in FSDP2's compute dtype, per stage as planned."""
    args = overrides(work, "pp_fsdp_bf16", "torch.precision=bf16", "torch.distributed=fsdp",
                     "parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2", steps=2)
    run = launch(work, "pp_fsdp_bf16", TINY, *args, nproc=4)
    check_plan(run, TINY, args, 4)


def test_the_plan_counts_fsdp2s_unsharded_gradients_between_micro_batches(work):
    """FSDP2 with gradient accumulation: between micro-batches (sync off) each rank holds every parameter's
    unsharded float32 gradient; the plan's term equals what the 2 gloo ranks really held (FSDP2's own tensors)."""
    args = overrides(work, "fsdp_accum", "parallel_config.data_parallel=2", "torch.distributed=fsdp",
                     "training.gradient_accumulation_steps=2", steps=2)
    run = launch(work, "fsdp_accum", TINY, *args)
    measured = json.loads((run / "summary.json").read_text())["memory"]["measured_per_rank"]
    assert all(r["unsharded_gradients"] > 0 for r in measured)
    check_plan(run, TINY, args, 2)


def test_a_lora_base_is_stored_in_bf16_under_fsdp2_and_the_plan_counts_it(work):
    """torch.precision bf16 with LoRA: the frozen base lives in bf16 (half the bytes, half FSDP2's all-gather), the
    adapters and their AdamW state in float32; every rank's real tensor bytes equal the plan's; the steps still
    follow the float32 run closely (bf16 compute either way)."""
    from mindcode.presets import PRESETS

    args = overrides(work, "lora_bf16", "torch.distributed=fsdp", "torch.precision=bf16", steps=4)
    run = launch(work, "lora_bf16", LORA, *args)
    check_plan(run, LORA, args, 2)
    measured = json.loads((run / "summary.json").read_text())["memory"]["measured_per_rank"]
    shape, rank = PRESETS["tiny"], 8
    adapters = shape.num_layers * rank * (2 * (64 + 64) + 2 * (64 + 32))  # q, o: 64->64; k, v: 64->32
    assert sum(r["weights"] for r in measured) == 2 * shape.num_params() + 4 * adapters
    assert sum(r["optimizer"] for r in measured) == 8 * adapters
    reference = launch(work, "lora_bf16_fp32base", LORA, *overrides(work, "lora_bf16_fp32base", "torch.distributed=fsdp",
                                                                      "torch.precision=fp32", steps=4))
    assert worst(run, reference, "loss") < 2e-2  # bf16 compute against float32: close, not equal
