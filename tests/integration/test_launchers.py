"""The launchers with real msrun and torchrun processes on 127.0.0.1: MindFormers' argument forms, collectives
across workers and "nodes", usage errors, and a failing worker ending the job in bounded time."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent / "launch"


def launch(launcher, *args, timeout=180):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.Popen(["bash", str(ROOT / "scripts" / launcher), *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def results(out: Path) -> list[str]:
    return sorted(p.read_text() for p in out.glob("rank*.txt"))


@pytest.mark.parametrize("launcher, worker", [("msrun_launcher.sh", "allreduce_ms.py"),
                                              ("torchrun_launcher.sh", "allreduce_torch.py")])
def test_single_node_two_workers(launcher, worker, tmp_path):
    cmd = f"{HERE / worker} {tmp_path}"
    proc = launch(launcher, cmd, "2") if launcher.startswith("torch") else \
        launch(launcher, cmd, "2", str(free_port()), str(tmp_path / "log"), "True", "120")
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output[-3000:]
    assert results(tmp_path) == ["2 3.0", "2 3.0"]


@pytest.mark.parametrize("launcher, worker", [("msrun_launcher.sh", "allreduce_ms.py"),
                                              ("torchrun_launcher.sh", "allreduce_torch.py")])
def test_two_nodes_of_one_worker_nine_argument_form(launcher, worker, tmp_path):
    port = str(free_port())
    procs = [launch(launcher, f"{HERE / worker} {tmp_path}", "2", "1", "127.0.0.1", port, str(rank),
                    str(tmp_path / f"log{rank}"), "True", "120") for rank in (0, 1)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert results(tmp_path) == ["2 3.0", "2 3.0"], outputs
    if launcher.startswith("torch"):
        assert [p.returncode for p in procs] == [0, 0], outputs
    else:
        # On one host both msrun calls see 127.0.0.1 as their own address and each starts a scheduler; the second
        # cannot bind the port, so that call exits 1 after its worker finished. On real hosts only the master's does.
        assert 0 in [p.returncode for p in procs], outputs


@pytest.mark.parametrize("launcher", ["msrun_launcher.sh", "torchrun_launcher.sh"])
def test_wrong_argument_count_prints_usage(launcher):
    proc = launch(launcher, "x.py", "2", "3")
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "expected 1, 2, 6 or 9 arguments, got 3" in output and "WORKER_NUM" in output


@pytest.mark.parametrize("launcher, worker", [("msrun_launcher.sh", "allreduce_ms.py"),
                                              ("torchrun_launcher.sh", "allreduce_torch.py")])
def test_a_failing_worker_ends_the_job_non_zero(launcher, worker, tmp_path):
    start = time.monotonic()
    cmd = f"{HERE / worker} {tmp_path} fail"
    proc = launch(launcher, cmd, "2", str(free_port()), str(tmp_path / "log"), "True", "60")
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode != 0, output[-2000:]
    assert time.monotonic() - start < 120


def test_mindcode_launch_dry_run_and_preflight(tmp_path):
    def launch_cli(*args, env=None):
        return subprocess.run([sys.executable, "-m", "mindcode", "launch", *args], capture_output=True, text=True,
                              cwd=ROOT, env={**os.environ, **(env or {})})

    result = launch_cli("--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "1", "--master_addr", "127.0.0.1",
                        "--master_port", "8200", "--dry_run", "--json", "--", "train", "--config",
                        "configs/ascend/tiny_cpu.yaml")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["backend"] == "ascend" and plan["command"][1].endswith("scripts/msrun_launcher.sh")
    assert plan["command"][2:] == ["mindcode train --config configs/ascend/tiny_cpu.yaml", "2", "1", "127.0.0.1",
                                   "8200", "1", "output/launch_log", "True", "7200"]
    gpu = json.loads(launch_cli("--nproc_per_node", "2", "--node_rank", "1", "--dry_run", "--json", "--", "train",
                                "--config", "configs/gpu/tiny_cpu.yaml").stdout)
    assert gpu["command"][1].endswith("torchrun_launcher.sh") and gpu["command"][6] == "29500"  # default port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        result = launch_cli("--master_port", port, "--dry_run", "--", "train", "--config", "configs/gpu/tiny_cpu.yaml")
    assert result.returncode == 1 and f"master port 127.0.0.1:{port} is not free" in result.stderr
    result = launch_cli("--nproc_per_node", "2", "--master_port", str(free_port()), "--dry_run", "--", "train",
                        "--config", "configs/ascend/tiny_cpu.yaml", env={"ASCEND_RT_VISIBLE_DEVICES": "0"})
    assert result.returncode == 1 and "2 processes per node but 1 devices visible (ASCEND_RT_VISIBLE_DEVICES)" in result.stderr


def test_cluster_time_out_bounds_cluster_formation_not_the_job(tmp_path):
    """torchrun: a job running past CLUSTER_TIME_OUT finishes; a node that never joins fails the job within it."""
    slow = f"{HERE / 'allreduce_torch.py'} {tmp_path} sleep=8"
    proc = launch("torchrun_launcher.sh", slow, "2", str(free_port()), str(tmp_path / "log"), "True", "3")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-2000:]
    assert results(tmp_path) == ["2 3.0", "2 3.0"]

    start = time.monotonic()  # node 0 of 2 alone: the rendezvous times out after CLUSTER_TIME_OUT
    proc = launch("torchrun_launcher.sh", f"{HERE / 'allreduce_torch.py'} {tmp_path}", "2", "1", "127.0.0.1",
                  str(free_port()), "0", str(tmp_path / "log2"), "True", "4")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and time.monotonic() - start < 30
    assert "only 1/2 nodes joined" in output and "CLUSTER_TIME_OUT 4 s" in output, output[-2000:]
