"""mindcode plan: each term from first principles, the layouts' effect, the shipped configs fit, the CLI's verdict."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mindcode.config import load_config
from mindcode.plan.devices import GIB, get_device
from mindcode.plan.memory import plan
from mindcode.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
# the shipped 7B-34B jobs: CodeLlama, DeepSeek-Coder, Qwen2.5-Coder
CODELLAMA = sorted(p for family in ("codellama", "deepseek_coder", "qwen2_5_coder")
                   for p in (ROOT / "configs").glob(f"*/{family}_*.yaml"))


def config(name, *overrides, backend="gpu"):
    return load_config(ROOT / f"configs/{backend}/{name}.yaml", list(overrides))


def worst_terms(result):
    return result["rank_shapes"][0]["terms"]


def test_one_device_full_fine_tune_is_16_bytes_a_parameter_plus_activations():
    result = plan(config("tiny_cpu"), get_device("cpu", "gpu"))
    terms = worst_terms(result)
    params = PRESETS["tiny"].num_params()
    assert terms["weights"] == terms["gradients"] == 4 * params and terms["optimizer"] == 8 * params
    assert terms["activations"] > 0 and terms["logits"] > 0 and result["fits"]


@pytest.mark.parametrize("key", ["model_parallel", "pipeline_stage"])
def test_weights_per_device_halve_when_model_or_pipeline_parallel_doubles(key):
    base = config("codellama_34b_finetune_16p", "parallel_config.model_parallel=4", "parallel_config.pipeline_stage=2")
    doubled = config("codellama_34b_finetune_16p", "parallel_config.model_parallel=4", "parallel_config.pipeline_stage=2",
                     f"parallel_config.{key}={8 if key == 'model_parallel' else 4}")
    device = get_device("h100-80g", "gpu")
    a = max(s["terms"]["weights"] for s in plan(base, device)["rank_shapes"])
    b = max(s["terms"]["weights"] for s in plan(doubled, device)["rank_shapes"])
    assert b == pytest.approx(a / 2, rel=0.03)  # the embedding and head sit on one stage only


def test_34b_replicated_does_not_fit_and_mindformers_16p_layout_does():
    replicated = config("codellama_34b_finetune_16p", "parallel_config.model_parallel=1",
                        "parallel_config.pipeline_stage=1", "parallel_config.data_parallel=16",
                        "mindformers.enable_parallel_optimizer=false", backend="ascend")
    result = plan(replicated, get_device("ascend-910b", "ascend"))
    assert not result["fits"] and result["biggest_term"] in ("weights", "gradients", "optimizer", "activations")
    assert "ascend-910b's 64.0 GiB" in result["advice"]
    published = plan(config("codellama_34b_finetune_16p", backend="ascend"), get_device("ascend-910b", "ascend"))
    assert published["fits"] and published["layout"]["model_parallel"] == 8 and published["world_size"] == 16
    assert {s["stage"] for s in published["rank_shapes"]} == {0, 1}  # the stages differ: embedding vs head


def test_fsdp_shards_weights_gradients_and_moments_over_data_parallel():
    ddp = plan(config("codellama_7b_finetune", "parallel_config.model_parallel=1", "parallel_config.data_parallel=8",
                      "torch.distributed=ddp"), get_device("h100-80g", "gpu"))
    fsdp = plan(config("codellama_7b_finetune", "parallel_config.model_parallel=1",
                       "parallel_config.data_parallel=8"), get_device("h100-80g", "gpu"))
    for term in ("weights", "gradients", "optimizer"):
        assert worst_terms(fsdp)[term] == pytest.approx(worst_terms(ddp)[term] / 8, rel=1e-3)


def test_lora_trains_only_adapters_and_qlora_stores_4_bit_bases():
    lora = worst_terms(plan(config("codellama_7b_lora"), get_device("h100-80g", "gpu")))
    qlora = worst_terms(plan(config("codellama_7b_lora", "torch.load_in_4bit=true", "torch.distributed=ddp"),
                             get_device("h100-80g", "gpu")))
    shape = PRESETS["codellama-7b"]
    r, h, i, layers = 16, shape.hidden_size, shape.intermediate_size, shape.num_layers
    adapters = layers * (4 * r * (h + h) + 3 * r * (h + i))  # q,k,v,o: h->h; gate, up: h->i, down: i->h
    assert lora["optimizer"] == pytest.approx(8 * adapters / 8, rel=1e-2)  # FSDP over 8: a shard each
    assert qlora["optimizer"] == 8 * adapters and qlora["gradients"] == 4 * adapters
    assert qlora["weights"] < 0.25 * 4 * shape.num_params()  # the frozen base in NF4, embedding and head fp32


def test_kv_cache_for_prediction():
    result = plan(config("codellama_34b_finetune_16p", "parallel_config.pipeline_stage=1",
                         "parallel_config.micro_batch_num=1", "parallel_config.data_parallel=1"),
                  get_device("h100-80g", "gpu"), world_size=8, task="predict", batch=20, length=4096)
    terms = worst_terms(result)
    shape = PRESETS["codellama-34b"]
    assert terms["kv_cache"] == 2 * shape.num_layers * 20 * 4096 * (shape.kv_heads // 8) * shape.head_dim * 2
    assert terms["weights"] == pytest.approx(2 * shape.num_params() / 8, rel=0.01) and result["fits"]


@pytest.mark.parametrize("path", CODELLAMA, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_codellama_config_fits_the_device_it_names(path):
    result = plan(load_config(path), get_device(None, path.parent.name))
    assert result["fits"], result["advice"]
    assert result["world_size"] == int(path.read_text().split("\n")[2].split('" ')[1].split()[0])  # the launch line
    assert f"mindcode plan --config configs/{path.parent.name}/{path.name}" in path.read_text()


def test_cli_exits_1_with_one_line_naming_the_biggest_term():
    done = subprocess.run([sys.executable, "-m", "mindcode", "plan", "--config",
                           "configs/ascend/codellama_34b_finetune_16p.yaml", "parallel_config.model_parallel=1",
                           "parallel_config.pipeline_stage=1", "parallel_config.data_parallel=16", "--json"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["fits"] is False and result["peak"] > 64 * GIB and result["biggest_term"] in result["advice"]
    human = subprocess.run([sys.executable, "-m", "mindcode", "plan", "--config", "configs/gpu/codellama_7b_lora.yaml"],
                           cwd=ROOT, capture_output=True, text=True)
    assert human.returncode == 0 and "fits: peak" in human.stdout and "ranks 0..7 (8)" in human.stdout


def test_train_dry_run_writes_the_gpu_layout_and_plans_without_data_or_weights(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mindcode", "train", "--config",
                           "configs/gpu/codellama_34b_finetune_16p.yaml", "--dry_run", "--output_dir", str(tmp_path),
                           "--json"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["world_size"] == 16 and result["plan"]["fits"] and len(result["absent"]) == 2
    layout = json.loads((tmp_path / "parallel_layout.json").read_text())
    assert layout["mesh"] == {"names": ["pp", "dp", "tp"], "shape": [2, 1, 8]}
    assert layout["ranks"][8] == {"rank": 8, "pipeline": 1, "data": 0, "model": 0, "layers": [24, 47]}
    assert layout["precision_on_cuda"] == {"master": "float32", "compute": "bfloat16", "moments": "float32",
                                           "frozen": "float32"}
    assert not list(tmp_path.glob("*.safetensors")) and not (tmp_path / "metrics.jsonl").exists()


def test_pipelined_fsdp2_keeps_the_stage_gathered_with_unsharded_gradients():
    """torch's PipelineStage holds FSDP2's parameters gathered and its gradients unsharded through the step."""
    pipelined = worst_terms(plan(config("codellama_34b_finetune_32p"), get_device("h100-80g", "gpu")))
    flat = worst_terms(plan(config("codellama_34b_finetune_32p", "parallel_config.pipeline_stage=1",
                                   "parallel_config.micro_batch_num=1", "parallel_config.data_parallel=8"),
                            get_device("h100-80g", "gpu")))
    assert pipelined["unsharded_gradients"] > 0 and flat["unsharded_gradients"] == 0
    assert pipelined["compute_copies"] > 4 * flat["compute_copies"]


def test_the_plan_counts_loading_the_init_and_refuses_a_full_read_per_rank():
    """34B on 16 devices (mp8/pp2): each rank reads its slice after one transform per node; the same model data
    parallel on 16 devices would make every rank of a node read and cast the whole init."""
    split = plan(config("codellama_34b_finetune_16p", backend="ascend"), get_device(None, "ascend"))
    assert split["fits"] and 0 < split["load"]["device_bytes"] < 64 * GIB
    shape = config("codellama_34b_finetune_16p", backend="ascend").model.shape()
    init_bytes = 2 * shape.num_params()  # the converted bf16 init
    assert init_bytes < split["load"]["host_bytes_per_node"] < 2 * init_bytes
    whole = plan(config("codellama_34b_finetune_16p", "parallel_config.model_parallel=1",
                        "parallel_config.pipeline_stage=1", "parallel_config.data_parallel=16", backend="ascend"),
                 get_device(None, "ascend"))
    assert whole["load"]["host_bytes_per_node"] > 8 * init_bytes and not whole["fits"]


def test_dpo_plans_the_reference_pass_reading_the_init_as_it_does(tmp_path):
    """codellama_7b_dpo (semi-auto, dp2/mp4): its reference model reads slices, like the policy; under pipeline
    stages the reference pass runs on the init every rank reads whole, until the reference is stored."""
    dpo = config("codellama_7b_dpo", f"training.output_dir={tmp_path}", backend="ascend")
    init_bytes = 2 * dpo.model.shape().num_params()  # the converted bf16 init
    sliced = plan(dpo, get_device(None, "ascend"))
    assert init_bytes < sliced["load"]["host_bytes_per_node"] < 4 * init_bytes and sliced["fits"]
    staged = config("codellama_7b_dpo", f"training.output_dir={tmp_path}", "parallel_config.model_parallel=2",
                    "parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2", backend="ascend")
    first = plan(staged, get_device(None, "ascend"))
    np.save(tmp_path / "reference_logps.npy", np.zeros((4, 2), np.float32))
    again = plan(staged, get_device(None, "ascend"))
    assert first["load"]["host_bytes_per_node"] > 8 * init_bytes > again["load"]["host_bytes_per_node"]


@pytest.mark.parametrize("name, model_parallel, fits", [("codellama_7b_finetune", 1, True),
                                                        ("codellama_34b_finetune_16p", 4, True),
                                                        ("codellama_34b_finetune_16p", 1, False)])
def test_predict_plans_with_predicts_defaults(name, model_parallel, fits):
    """predict's batch (8) and a 4096-token window, weights as MindFormers' predict builds them (float16), split by
    model_parallel only: 7B on one 910B, 34B on 4 cards as MindFormers' card predicts it, not on one."""
    result = plan(config(name, f"parallel_config.model_parallel={model_parallel}", backend="ascend"), get_device(None, "ascend"),
                  task="predict")
    assert result["world_size"] == model_parallel and result["fits"] is fits
    assert (result["batch"], result["length"], result["precision"]) == (8, 4096, {"weights": "float16"})


def test_predict_and_serve_consult_the_plan_before_loading(monkeypatch):
    """On a 910B host (the device detection stubbed: this host has none) 34B prediction on one card stops with one
    line before any weight is read; on 4 cards (model_parallel 4) it goes on. A CPU host is not checked."""
    import mindcode.plan.devices as devices
    from mindcode.commands.predict import check_predict_fits
    from mindcode.errors import MindcodeError

    path = str(ROOT / "configs/ascend/codellama_34b_finetune_16p.yaml")
    check_predict_fits(path, "ascend", 1, 8, 0)  # no accelerator here: nothing to check
    monkeypatch.setattr(devices, "detect_device", lambda backend: devices.DEVICES["ascend-910b"])
    with pytest.raises(MindcodeError, match=r"the biggest term is weights .* --task predict --batch_size 8 "
                                            r"--max_length 4096\)$"):
        check_predict_fits(path, "ascend", 1, 8, 0)
    check_predict_fits(path, "ascend", 4, 8, 0)


def test_a_preference_batch_is_two_rows_a_pair():
    """DPO's b pairs are 2b sequences through the model (each chosen answer and its rejected one)."""
    loaded = config("codellama_7b_dpo")
    dpo = plan(loaded, get_device("h100-80g", "gpu"))
    t, layout = loaded.training, loaded.parallel_config
    pairs = t.batch_size // layout.data_parallel // t.gradient_accumulation_steps
    assert dpo["rank_shapes"][0]["micro_batch_rows"] == 2 * pairs


def layout_args(dp, mp, pp, micro):
    return [f"parallel_config.data_parallel={dp}", f"parallel_config.model_parallel={mp}",
            f"parallel_config.pipeline_stage={pp}", f"parallel_config.micro_batch_num={micro}",
            f"parallel_config.use_seq_parallel={'true' if mp > 1 else 'false'}"]


def test_a_layout_that_does_not_fit_gets_the_cheapest_of_the_same_devices_that_does():
    """34B on 16 H100s as dp8/mp2: the plan proposes the layout a torchtitan user would pick among those of the same
    16 devices that fit (the fewest pipeline stages, then the smallest model-parallel group), and each cheaper one
    really does not fit."""
    h100 = get_device("h100-80g", "gpu")
    result = plan(config("codellama_34b_finetune_16p", *layout_args(8, 2, 1, 1)), h100)
    assert not result["fits"]
    found = result["suggestion"]["parallel_config"]
    assert (found["data_parallel"], found["model_parallel"], found["pipeline_stage"]) == (2, 4, 2)
    assert found["micro_batch_num"] == 64 and found["use_seq_parallel"]  # one row per micro-batch
    assert "parallel_config.model_parallel=4 parallel_config.pipeline_stage=2" in result["advice"]
    again = plan(config("codellama_34b_finetune_16p", *layout_args(2, 4, 2, 64)), h100)
    assert again["fits"] and again["peak"] == result["suggestion"]["peak"]
    for dp, mp, pp in [(16, 1, 1), (8, 2, 1), (4, 4, 1), (2, 8, 1), (8, 1, 2), (4, 2, 2)]:
        assert not plan(config("codellama_34b_finetune_16p", *layout_args(dp, mp, pp, 128 // dp if pp > 1 else 1)),
                        h100, suggest=False)["fits"], (dp, mp, pp)
    alone = plan(config("codellama_34b_finetune_16p", *layout_args(1, 2, 1, 1)), h100)  # 2 devices: none fits
    assert alone["suggestion"] is None and "no layout of 2 devices fits" in alone["advice"]
