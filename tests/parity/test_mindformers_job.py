"""The YAML mindcode writes is the job MindFormers runs: its own entry reproduces mindcode's run on CPU, and every
shipped CodeLlama config becomes a job that loads, saves and reports the loss the way MindFormers' CodeLlama card
does. What only an Atlas host shows (semi-auto parallel) is checked with MindSpore's calls spied on."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mindcode.config import load_config
from mindcode.parallel import ParallelConfig, resolve
from mindcode.train.loop import train
from tests.conftest import write_training_inputs

ROOT = Path(__file__).resolve().parents[2]
# the shipped 7B-34B jobs: CodeLlama, DeepSeek-Coder, Qwen2.5-Coder
CODELLAMA = sorted(p.stem for family in ("codellama", "deepseek_coder", "qwen2_5_coder")
                   for p in (ROOT / "configs/ascend").glob(f"{family}_*.yaml"))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return write_training_inputs(tmp_path_factory.mktemp("mindformers_job"))


def params(path: Path) -> dict[str, np.ndarray]:
    from mindcode.convert import ckpt_io

    return {t.name: ckpt_io.load_array(path, t).astype(np.float32) for t in ckpt_io.index_ckpt(path)}


@pytest.mark.slow
def test_mindformers_own_entry_runs_the_written_yaml_to_the_same_weights(work):
    """``run_mindformer.py``'s steps (set_output_path, build_context, Trainer(config).train()) on the YAML as
    written: MindFormers loads the init, trains the same 6 steps and saves through its CheckpointMonitor."""
    overrides = [f"data.mindrecord={work / 'train.mindrecord'}", f"data.npy={work / 'npy'}", "data.shuffle=false",
                 f"training.init={work / 'init'}", f"training.output_dir={work / 'run'}", "training.max_steps=6",
                 "training.save_steps=3"]
    summary = train(load_config(ROOT / "configs/ascend/tiny_cpu.yaml", overrides), progress=False)
    written = work / "run" / "mindformers.yaml"
    job = yaml.safe_load(written.read_text())
    assert job["load_checkpoint"] == str(work / "run" / "init" / "model.ckpt") and job["auto_trans_ckpt"] is False
    done = subprocess.run([sys.executable, "-m", "backends.ascend.run_mindformer", "--config", str(written)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = sorted((work / "run" / "mindformers" / "checkpoint" / "rank_0").glob("*.ckpt"))
    assert [p.name for p in saved] == ["mindcode_rank_0-1_3.ckpt", "mindcode_rank_0-1_6.ckpt"]  # every 3 steps
    theirs, ours = params(saved[-1]), params(work / "run" / "final" / "model.ckpt")
    assert set(ours) <= set(theirs)  # theirs also holds the AdamW moments, the step and the loss scale
    worst = max(float(np.abs(theirs[k] - ours[k]).max() / (np.abs(ours[k]).max() + 1e-12)) for k in ours)
    print(f"\nMindFormers' entry vs mindcode after 6 steps: worst relative weight difference {worst:.2e}")
    assert worst <= 1e-5
    losses = [json.loads(line)["loss"] for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and summary["final_loss"] == losses[-1]


def dry_run(name: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "mindcode", "train", "--config", f"configs/ascend/{name}.yaml",
                           "--dry_run", "--output_dir", str(out), "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return yaml.safe_load((out / "mindformers.yaml").read_text())


@pytest.mark.parametrize("name", CODELLAMA)
def test_every_codellama_job_loads_saves_and_reports_as_mindformers_does(tmp_path, name):
    config = load_config(ROOT / f"configs/ascend/{name}.yaml")
    job = dry_run(name, tmp_path)
    from backends.ascend.parallel import semi_auto

    layout = resolve(config.parallel_config, resolve(config.parallel_config).world_size)
    split = semi_auto(layout, config.mindformers)  # model or pipeline parallel, or the parallel optimizer's shards
    assert split is (layout.model_parallel > 1 or layout.pipeline_stage > 1 or config.mindformers.enable_parallel_optimizer)
    assert job["load_checkpoint"].endswith(("model.ckpt", "model_qkv_concat.ckpt"))
    assert job["auto_trans_ckpt"] is split  # each rank reads and casts its slice only
    monitor = next(c for c in job["callbacks"] if c["type"] == "CheckpointMonitor")
    assert monitor["integrated_save"] is False and monitor["keep_checkpoint_max"] == config.training.save_total_limit
    assert {"type": "TrainCallBack", "stop_step": config.training.max_steps} in job["callbacks"]
    summed = split and (layout.pipeline_stage > 1 or config.training.gradient_accumulation_steps > 1)
    assert job["calculate_per_token_loss"] is (summed and config.stage == "sft")
    assert job["model"]["model_config"].get("calculate_per_token_loss", False) is job["calculate_per_token_loss"]
    assert job["parallel"].get("pipeline_result_broadcast", False) is (layout.pipeline_stage > 1)
    assert int(job["context"]["max_device_memory"].removesuffix("GB")) <= 58
    assert job["context"]["jit_config"] == {"jit_level": "O1"} and job["runner_config"]["sink_mode"] is True


def test_a_parallel_optimizer_only_where_mindspore_builds_it(tmp_path):
    """In data-parallel mode MindSpore refuses the parallel optimizer for an optimizer class without
    ``_support_parallel_optimizer`` (read off the optimizer MindFormers really builds); so a job with it runs
    MindFormers' semi-auto parallel, as MindFormers' own Llama2-7B finetune does with dp8, and no shipped job has it
    in data-parallel mode. CodeLlama-7B full fine-tune is that dp8 job."""
    import mindspore as ms
    from mindformers.core.optim import AdamW

    from backends.ascend.mindformers_config import mindformers_config
    from backends.ascend.parallel import PARALLEL_OPTIMIZER_IN_DATA_PARALLEL

    built = AdamW([ms.Parameter(ms.Tensor(np.ones((2, 2), np.float32)), name="w")])
    supported = bool(getattr(type(built), "_support_parallel_optimizer", False))
    assert PARALLEL_OPTIMIZER_IN_DATA_PARALLEL == {"AdamW": supported} == {"AdamW": False}
    for name in CODELLAMA:
        job = dry_run(name, tmp_path / name)
        if job["parallel"]["enable_parallel_optimizer"]:
            assert job["parallel"]["parallel_mode"] == 1 and job["parallel"]["full_batch"], name
    job = dry_run("codellama_7b_finetune", tmp_path / "7b")
    assert (job["parallel_config"]["data_parallel"], job["parallel_config"]["model_parallel"]) == (8, 1)
    assert job["parallel"]["parallel_mode"] == 1 and job["auto_trans_ckpt"] is True
    lora = load_config(ROOT / "configs/ascend/codellama_7b_lora.yaml")  # dp8 without it: data-parallel mode
    assert mindformers_config(lora, "Ascend", resolve(lora.parallel_config, 8))["parallel"]["parallel_mode"] == 0
    sharded = load_config(ROOT / "configs/ascend/codellama_7b_lora.yaml", ["mindformers.enable_parallel_optimizer=true"])
    assert mindformers_config(sharded, "Ascend", resolve(sharded.parallel_config, 8))["parallel"]["parallel_mode"] == 1


def spied_trainer(layout: ParallelConfig, world_size: int, **fields):
    """A Trainer as it stands on an Atlas host under ``layout``, built without MindSpore's semi-auto compile
    (which MindSpore's CPU target refuses)."""
    from backends.ascend.parallel import per_token_loss, semi_auto
    from backends.ascend.train import Trainer

    trainer = Trainer.__new__(Trainer)
    trainer.layout = resolve(layout, world_size)
    trainer.semi_auto = semi_auto(trainer.layout, fields["config"].mindformers if "config" in fields else None)
    trainer.rank, trainer.world_size, trainer.frozen = 0, world_size, set()
    trainer.accumulation = 1
    trainer.per_token = per_token_loss(trainer.layout, trainer.semi_auto, 1, False)
    trainer.__dict__.update(fields)
    return trainer


def test_under_pipeline_parallel_no_checkpoint_is_an_integrated_save(tmp_path, monkeypatch):
    import mindspore as ms
    import mindspore.communication.comm_func as comm

    calls = []
    monkeypatch.setattr(ms, "save_checkpoint", lambda cell, path, **kw: calls.append(kw))
    monkeypatch.setattr(comm, "barrier", lambda *a, **k: None)
    trainer = spied_trainer(ParallelConfig(model_parallel=8, pipeline_stage=2, micro_batch_num=128), 16,
                            step_cell=object(), _ms=ms)
    trainer.save(tmp_path)
    assert calls and all(kw["integrated_save"] is False for kw in calls)
    calls.clear()
    data_parallel = spied_trainer(ParallelConfig(), 1, step_cell=object(), _ms=ms)
    data_parallel.save(tmp_path)  # one full copy from rank 0: nothing to gather, nothing sliced
    assert calls == [{"integrated_save": True, "choice_func": calls[0]["choice_func"]}]


def built_on_two_ranks(config, monkeypatch) -> tuple:
    """The trainer of rank 0 of 2 built as on an Atlas host (model parallel 2 in ``config``), with every MindSpore
    load mindcode could make spied on: ``(trainer, loads)``."""
    import mindspore as ms
    from mindformers import MindFormerConfig

    import backends.ascend.checkpoint as checkpoint
    import backends.ascend.train as train_module
    from backends.ascend import cells, runtime
    from backends.ascend.mindformers_config import mindformers_config, write_yaml

    runtime.mindformers()
    loads = []
    for module, name in ((ms, "load_checkpoint"), (ms, "load_param_into_net"), (train_module, "load_into"),
                         (checkpoint, "load_into")):
        monkeypatch.setattr(module, name, lambda *a, _n=name, **k: loads.append(_n))
    trainer = spied_trainer(config.parallel_config, 2, config=config, device="Ascend", _cells=cells)
    out = Path(config.training.output_dir)
    write_yaml(mindformers_config(config, "Ascend", trainer.layout), out / "mindformers.yaml")
    trainer.job_file = out / "mindformers.yaml"
    trainer.mf_config = MindFormerConfig(str(trainer.job_file))
    trainer.init = trainer._converted_init()
    trainer._build_model()
    return trainer, loads


def test_under_a_split_layout_no_rank_loads_the_whole_init(work, monkeypatch):
    """Model parallel 2 on 2 ranks: the model is built, its parameter names and shapes are checked against the
    init's index, and no MindSpore load of the init happens in mindcode: MindFormers' ``auto_trans_ckpt`` does it,
    each rank its slice."""
    config = load_config(ROOT / "configs/ascend/tiny_cpu.yaml", [f"training.init={work / 'init'}",
                                                                  f"training.output_dir={work / 'split'}",
                                                                  "parallel_config.model_parallel=2"])
    trainer, loads = built_on_two_ranks(config, monkeypatch)
    assert loads == [] and trainer.mf_config.auto_trans_ckpt is True
    assert trainer.mf_config.load_checkpoint == str(trainer.init)
    assert trainer.model.config.parallel_config.model_parallel == 2


def test_dpo_under_a_split_layout_reads_only_slices_for_its_reference_pass(work, monkeypatch):
    """dpo on model parallel 2: no rank loads the whole init in mindcode. The reference pass runs on a reference
    model of its own, uninitialised until MindFormers' ``transform_and_load_checkpoint`` (``do_predict``,
    ``auto_trans_ckpt``) loads its slice of the init; the policy is left to MindFormers' sliced load. Under pipeline
    stages the pass still reads the init whole (the planner counts it); with the reference stored there is no pass;
    simpo needs none."""
    import mindformers.trainer.utils as mf_utils

    from backends.ascend.reference import reference_scores

    def built(stage, *layout):
        config = load_config(ROOT / "configs/ascend/dpo_tiny_cpu.yaml", [
            f"training.init={work / 'init'}", f"training.output_dir={work / f'{stage}_split'}", f"stage={stage}",
            *(layout or ["parallel_config.model_parallel=2"])])
        return built_on_two_ranks(config, monkeypatch)

    trainer, loads = built("dpo")
    assert loads == [] and not trainer.loaded_by_mindcode and trainer.mf_config.auto_trans_ckpt is True
    seen = []
    monkeypatch.setattr(mf_utils, "transform_and_load_checkpoint",
                        lambda config, model, network, batch, do_predict=False: seen.append(
                            (config, network, batch, do_predict, [p.has_init for p in network.get_parameters()])))
    ids = np.ones((4, 65), np.int32)
    scores = reference_scores(*trainer._model_args, trainer.job_file, ids, ids)
    (config, network, batch, do_predict, uninitialised), = seen
    assert network is scores and scores.network is not trainer.model and do_predict and all(uninitialised)
    assert config.auto_trans_ckpt is True and config.checkpoint.load_path == str(trainer.init)
    assert scores.network.config.parallel_config.model_parallel == 2 and tuple(batch[0].shape) == (4, 65)
    assert loads == []

    trainer, loads = built("dpo", "parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2")
    assert loads == ["load_into"] and trainer.loaded_by_mindcode
    np.save(work / "dpo_split" / "reference_logps.npy", np.zeros((4, 2), np.float32))
    trainer, loads = built("dpo", "parallel_config.pipeline_stage=2", "parallel_config.micro_batch_num=2")
    assert loads == [] and not trainer.loaded_by_mindcode
    trainer, loads = built("simpo")
    assert loads == [] and not trainer.loaded_by_mindcode


def test_lora_under_model_parallel_is_mindformers_pet_layers_and_exports_merged_adapters(tmp_path, monkeypatch):
    """The 34B LoRA job on 8 devices (model parallel 8): MindFormers reads back its pet_config and layout (its LoRA
    layers take the dense layers' strategies, ``lora_adapter.py``); the final export writes each rank's slices of the
    adapters alone and merges them through the strategy file into ``adapter.ckpt``; a resume loads the adapters and
    optimizer state and never the whole init, which MindFormers' sliced load (``auto_trans_ckpt``) still reads."""
    import mindspore as ms
    import mindspore.communication.comm_func as comm
    from mindformers import MindFormerConfig
    from mindformers.core.parallel_config import build_parallel_config

    import backends.ascend.distributed as distributed

    job = dry_run("codellama_34b_lora_8p", tmp_path / "dry")
    read = MindFormerConfig(str(tmp_path / "dry" / "mindformers.yaml"))
    build_parallel_config(read)
    assert (read.parallel_config.data_parallel, read.parallel_config.model_parallel) == (1, 8)
    pet = read.model.model_config.pet_config
    assert pet.pet_type == "lora" and pet.lora_rank == 16 and "wq" in pet.target_modules
    assert job["auto_trans_ckpt"] is True and job["load_checkpoint"]

    saved, merged, loads = [], [], []
    monkeypatch.setattr(ms, "save_checkpoint", lambda cell, path, **kw: saved.append(kw))
    monkeypatch.setattr(comm, "barrier", lambda *a, **k: None)
    monkeypatch.setattr(distributed, "merge_ranks", lambda ranks, strategy, out, **kw: merged.append(Path(out).name))
    config = load_config(ROOT / "configs/ascend/codellama_34b_lora_8p.yaml", [f"training.output_dir={tmp_path}"])
    frozen = {"model.layers.0.attention.wq.weight"}
    trainer = spied_trainer(config.parallel_config, 8, config=config, _ms=ms, model=object(), frozen=frozen,
                            init=tmp_path / "init.ckpt", network=object(), optimizer=object(), loaded_by_mindcode=False)
    trainer.export(tmp_path / "final")
    assert [kw["integrated_save"] for kw in saved] == [False] and merged == ["adapter.ckpt"]
    assert not saved[0]["choice_func"]("model.layers.0.attention.wq.weight")
    assert saved[0]["choice_func"]("model.layers.0.attention.wq.lora_a")
    assert json.loads((tmp_path / "final" / "adapter_config.json").read_text())["r"] == 16

    monkeypatch.setattr(ms, "load_checkpoint", lambda path, **kw: loads.append(Path(path).name) or {})
    monkeypatch.setattr(ms, "load_param_into_net", lambda cell, params, **kw: ([], []))
    trainer.load(tmp_path / "checkpoints" / "step_2")
    assert loads == ["train_state.ckpt"]  # this rank's state; the init is not read here
    assert trainer.loaded_by_mindcode is False  # so MindFormers' own load of the base stays in the job


@pytest.mark.parametrize("layout, accumulation, raw, logged", [
    (ParallelConfig(model_parallel=8, pipeline_stage=2, micro_batch_num=128), 1, 128 * 2.5, 2.5),  # summed over 128
    (ParallelConfig(model_parallel=4), 16, 16 * 2.5, 2.5),  # MindFormers' accumulation cell sums 16 micro-batches
    (ParallelConfig(), 1, 2.5, 2.5),
])
def test_the_logged_loss_is_divided_as_mindformers_loss_monitor_divides_it(layout, accumulation, raw, logged):
    """Without per-token loss MindFormers' pipeline and accumulation cells return the sum of their micro-batches'
    mean losses; mindcode's step record reports the mean, like MFLossMonitor."""
    import mindspore as ms

    from backends.ascend.parallel import reported_loss

    world = resolve(layout).world_size
    trainer = spied_trainer(layout, world, accumulation=accumulation, config=load_config(
        ROOT / "configs/ascend/tiny_cpu.yaml"), _all_sum=None)
    trainer.per_token = False
    trainer._steps = type("Steps", (), {"tokens": {0: 10}})()
    outputs = (ms.Tensor(raw, ms.float32), ms.Tensor(False), ms.Tensor(1.0), ms.Tensor(1e-4), ms.Tensor(1.0))
    assert trainer.step_result(0, outputs)["loss"] == pytest.approx(logged)
    assert reported_loss(raw, trainer.layout, trainer.semi_auto, accumulation, per_token=True) == raw  # divided already


def conformance_rows(section: str = "## Training") -> list[tuple[str, str, str, str]]:
    """``(key, reference, mindcode, status)`` of a table in docs/mindformers_conformance.md (its ``## `` section)."""
    text = (ROOT / "docs/mindformers_conformance.md").read_text()
    table = text.split(section)[1].split("\n## ")[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3] in ("equal", "differs", "not written"):
            rows.append(tuple(cells[:4]))
    return rows


def lookup(job: dict, key: str):
    """The written value at a table key (``a.b.c``, or ``callbacks TYPE[.field]``); KeyError when absent."""
    if key.startswith("callbacks "):
        kind, _, field = key.split(" ", 1)[1].partition(".")
        callback = next(c for c in job["callbacks"] if c["type"] == kind)
        return callback[field] if field else "present"
    node = job
    for part in key.split("."):
        node = node[part]
    return node


def predict_job_34b(work_dir: Path, monkeypatch) -> dict:
    """The job each of 4 msrun workers writes to predict CodeLlama-34B on Atlas devices: one row of 4,096 tokens
    (the card's batch), MindFormers' model keys as ``build_model`` computes them there."""
    from backends.ascend import runtime
    from backends.ascend.model import llama_values
    from backends.ascend.predict_job import predict_job
    from backends.ascend.session import cache_settings
    from mindcode.presets import PRESETS

    monkeypatch.setattr(runtime, "device_target", lambda: "Ascend")
    values = llama_values(PRESETS["codellama-34b"], 4096, 1, **cache_settings(1, 4096, "Ascend"))
    layout = resolve(ParallelConfig(model_parallel=4), 4)
    return predict_job(layout, work_dir / "model.ckpt", work_dir, values, "Ascend")


@pytest.mark.parametrize("job_name, section, least", [("codellama_34b_finetune_16p", "## Training", 70),
                                                      ("predict_codellama_34b", "## Prediction", 50),
                                                      ("qwen2_5_coder_7b_finetune", "## Qwen2.5-Coder-7B", 40),
                                                      ("deepseek_coder_6_7b_finetune", "## DeepSeek-Coder-6.7B", 25)])
def test_the_conformance_table_is_what_mindcode_writes(tmp_path, monkeypatch, job_name, section, least):
    if job_name.startswith("predict"):
        job = predict_job_34b(tmp_path, monkeypatch)
    else:
        job = dry_run(job_name, tmp_path)
    rows = conformance_rows(section)
    assert len(rows) > least
    checked = 0
    for key, reference, ours, status in rows:
        if any(c in key for c in " ,*/") and not key.startswith("callbacks "):
            continue  # rows that group several keys
        if status == "not written":
            with pytest.raises((KeyError, StopIteration)):
                lookup(job, key)
            continue
        written = reference if status == "equal" else ours
        expected = yaml.safe_load(written.replace("OUTPUT_DIR", str(tmp_path)).replace("WORK_DIR", str(tmp_path))
                                  .replace("CKPT", str(tmp_path / "model.ckpt")))
        assert lookup(job, key) == expected, (key, status)
        checked += 1
    print(f"\nconformance table of {job_name}: {checked} of {len(rows)} rows checked against the written YAML")
    assert checked > least


def test_model_parallel_prediction_is_mindformers_split_load(tmp_path, monkeypatch):
    """``launch -- predict --backend ascend`` over 2 workers on an Atlas host (the device stubbed, MindFormers'
    context and load spied on): the job MindFormers reads back is semi-auto parallel with model_parallel 2, the model
    is MindFormers' with that layout and no initialised parameter when MindFormers' ``transform_and_load_checkpoint``
    gets it (``do_predict``, ``auto_trans_ckpt`` on the complete checkpoint), mindcode never loads the checkpoint
    itself, and dynamic shapes are set as MindFormers' generate sets them. On the CPU the split stops with one line."""
    import mindformers
    import mindformers.trainer.utils as mf_utils
    import mindspore as ms
    import mindspore.communication as communication

    from backends import get_backend
    from backends.ascend import runtime
    from mindcode.convert.hf_to_ms import convert_hf_to_ms
    from mindcode.errors import MindcodeError
    from mindcode.presets import PRESETS
    from tests.conftest import write_hf_checkpoint

    checkpoint = tmp_path / "model.ckpt"
    convert_hf_to_ms(write_hf_checkpoint(tmp_path / "hf", PRESETS["tiny"], seed=1), checkpoint, progress=False)
    backend = get_backend("ascend")
    with pytest.raises(MindcodeError, match="model_parallel 2 is MindSpore's semi-auto parallel, which needs Ascend"):
        backend.build_model(PRESETS["tiny"], 64, checkpoint, rows=2, tensor_parallel=2, work_dir=tmp_path / "cpu")
    with pytest.raises(MindcodeError, match="predict.model_parallel 3 does not divide model_config.num_heads 4"):
        backend.build_model(PRESETS["tiny"], 64, checkpoint, rows=2, tensor_parallel=3, work_dir=tmp_path / "cpu")

    runtime.mindformers()
    monkeypatch.setenv("LOCAL_DEFAULT_PATH", str(tmp_path))  # MindFormers' set_output_path writes it: restored after
    contexts, loads, whole, dynamic = [], [], [], []
    monkeypatch.setattr(runtime, "device_target", lambda: "Ascend")
    from mindformers.core.context.build_context import Context

    monkeypatch.setattr(runtime, "_PREDICT_CONTEXT", None)
    monkeypatch.setattr(Context, "_instance", None)  # MindFormers' context as in a fresh process
    monkeypatch.setattr(communication, "get_rank", lambda: 1)
    monkeypatch.setattr(mindformers, "build_context", contexts.append)
    monkeypatch.setattr(mf_utils, "transform_and_load_checkpoint",
                        lambda config, model, network, inputs, do_predict=False: loads.append(
                            (config, network, inputs, do_predict, [p.has_init for p in network.get_parameters()])))
    monkeypatch.setattr(ms, "load_checkpoint", lambda *a, **k: whole.append(a))
    monkeypatch.setattr(mindformers.LlamaForCausalLM, "set_dynamic_inputs", lambda self, **k: dynamic.append(self))
    model = backend.build_model(PRESETS["tiny"], 64, checkpoint, rows=2, tensor_parallel=2, work_dir=tmp_path / "run")

    job = yaml.safe_load((tmp_path / "run" / "mindformers" / "predict_rank_1.yaml").read_text())
    assert [c.use_parallel for c in contexts] == [True] and contexts[0].parallel.parallel_mode == 1
    assert contexts[0].parallel.full_batch and contexts[0].context.max_device_memory == "57GB"
    assert job["parallel_config"]["model_parallel"] == 2 and job["model"]["model_config"]["use_past"] is True
    (config, network, inputs, do_predict, uninitialised), = loads
    assert network is model and do_predict and all(uninitialised)
    assert config.auto_trans_ckpt is True and config.checkpoint.load_path == str(checkpoint)
    assert model.config.parallel_config.model_parallel == 2 and tuple(inputs[0].shape) == (2, 64)
    assert model.config.is_dynamic and model.config.use_flash_attention and dynamic == [model]
    assert whole == []
    monkeypatch.setattr(Context, "_instance", object())  # a process whose MindFormers context is set already
    with pytest.raises(MindcodeError, match="run it in processes of its own"):
        backend.build_model(PRESETS["tiny"], 64, checkpoint, rows=2, tensor_parallel=2, work_dir=tmp_path / "other")
