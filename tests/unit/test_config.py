"""Every YAML loads; ascend/gpu twins agree on the shared sections; unknown keys and missing data fail early."""

from pathlib import Path

import pytest
import yaml

from mindcode.config import TrainConfig, check_data, learning_rate, load_config
from mindcode.errors import MindcodeError

ROOT = Path(__file__).resolve().parents[2]
YAMLS = sorted((ROOT / "configs").glob("*/*.yaml"))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_yaml_loads_and_says_how_to_launch(path):
    config = load_config(path)
    assert config.backend == path.parent.name
    assert path.read_text().startswith("# Launch: mindcode train --config configs/")


@pytest.mark.parametrize("name", sorted({p.name for p in YAMLS}))
def test_twins_share_their_sections(name):
    ascend, gpu = ROOT / "configs" / "ascend" / name, ROOT / "configs" / "gpu" / name
    assert ascend.exists() and gpu.exists(), f"{name} needs both an ascend and a gpu version"
    a, g = yaml.safe_load(ascend.read_text()), yaml.safe_load(gpu.read_text())
    for section in TrainConfig.SHARED:
        left, right = a.get(section), g.get(section)
        if section == "training":  # each backend writes its own run folder
            left, right = dict(left), dict(right)
            left.pop("output_dir", None)
            right.pop("output_dir", None)
        assert left == right, f"{name}: section {section!r} differs"
    assert "mindformers" in a and "torch" not in a and "torch" in g and "mindformers" not in g


def test_mindformer_config_loads_the_ascend_yamls():
    pytest.importorskip("mindformers")
    from mindformers import MindFormerConfig

    for path in (ROOT / "configs" / "ascend").glob("*.yaml"):
        loaded = MindFormerConfig(str(path))
        # a config without a shape takes its init's (mindcode writes the full one into mindformers.yaml)
        assert loaded.model.model_config.hidden_size or loaded.training.init


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_model_section_is_mindformers_shaped_and_matches_the_preset():
    from mindcode.presets import PRESETS

    config = load_config(ROOT / "configs/gpu/tiny_cpu.yaml")
    assert config.model.shape().hf_weight_shapes() == PRESETS["tiny"].hf_weight_shapes()
    assert config.model.seq_length == 128


BAD_CONFIGS = [  # (YAML, the error it gives)
    ("backend: gpu\ntraining: {max_step: 3}\n", r"c\.yaml\.training: unknown key 'max_step'; valid: .*max_steps"),
    ("backend: gpu\noptimiser: {}\n", r"c\.yaml: unknown key 'optimiser'"),
    ("backend: gpu\nmodel: {model_config: {hidden: 3}}\n", r"model\.model_config: unknown key 'hidden'"),
    ("backend: gpu\ntraining: {batch_size: four}\n", r"c\.yaml\.training\.batch_size: expected int, got 'four'"),
    ("backend: ascend\ntorch: {}\n", r"a 'torch' section in an ascend config"),
    ("backend: gpu\nstage: ppo\n", r"c\.yaml: stage 'ppo'; valid: sft, dpo, simpo"),
    ("backend: gpu\npreference: {beta: 0.1}\n", r"a 'preference' section needs stage dpo or simpo"),
    ("backend: gpu\nstage: dpo\npreference: {betta: 0.1}\n", r"c\.yaml\.preference: unknown key 'betta'"),
    ("backend: gpu\nlora: {target_modules: [qq_proj]}\n", r"lora\.target_modules \['qq_proj'\]; valid: q_proj"),
    ("backend: gpu\ntorch: {load_in_4bit: true}\n", r"torch\.load_in_4bit \(QLoRA\) needs a lora section"),
    ("backend: gpu\ntorch: {precision: fp16}\n", r"torch\.precision 'fp16'; valid: bf16, fp32"),
    ("backend: gpu\ntorch: {distributed: deepspeed}\n", r"torch\.distributed 'deepspeed'; valid: ddp, fsdp"),
    ("backend: gpu\nparallel_config: {model_paralel: 2}\n", r"parallel_config: unknown key 'model_paralel'"),
    ("backend: ascend\nparallel_config: {pipeline_stage: 0}\n", r"parallel_config\.pipeline_stage: must be >= 1"),
    ("backend: ascend\nmindformers: {parallel_config: {}}\n", r"mindformers: unknown key 'parallel_config'"),
]


@pytest.mark.parametrize("text, error", BAD_CONFIGS)
def test_bad_configs_fail_naming_key_and_file(tmp_path, text, error):
    with pytest.raises(MindcodeError, match=error):
        load_config(write(tmp_path, text))


def test_overrides_and_missing_data(tmp_path):
    config = load_config(ROOT / "configs/gpu/tiny_cpu.yaml", ["training.max_steps=7", "schedule.learning_rate=3e-4"])
    assert config.training.max_steps == 7 and config.schedule.learning_rate == 3e-4
    config.data.npy = str(tmp_path / "nope")
    with pytest.raises(MindcodeError, match=r"data\.npy '.*nope': no input_ids\.npy there"):
        check_data(config)
    config = load_config(ROOT / "configs/ascend/dpo_tiny_cpu.yaml", [f"data.mindrecord={tmp_path / 'x.mindrecord'}"])
    with pytest.raises(MindcodeError, match=r"no such file \(write it with `mindcode data tokenize --dataset_type dpo"):
        check_data(config)


def test_schedule_matches_mindformers_documented_values():
    from mindcode.config import ScheduleSection

    s = ScheduleSection(learning_rate=0.005, warmup_steps=10)
    assert learning_rate(s, 1, 20) == pytest.approx(0.0005)  # MindFormers' docstring: 0.0005
    assert learning_rate(s, 15, 20) == pytest.approx(0.0025)  # and 0.0024999997


def test_a_config_without_shape_takes_the_inits_and_a_given_key_must_agree(tmp_path, hf_checkpoint):
    from mindcode.presets import PRESETS

    init = hf_checkpoint(PRESETS["tiny"].replace(tie_word_embeddings=True))
    text = (f"backend: gpu\nmodel:\n  model_config:\n    seq_length: 64\n{{extra}}training:\n  init: {init}\n")
    config = load_config(write(tmp_path, text.format(extra="")))
    assert config.model.shape() == PRESETS["tiny"].replace(name="model.model_config", tie_word_embeddings=True)
    assert config.model.seq_length == 64
    assert load_config(write(tmp_path, text.format(extra="    hidden_size: 64\n"))).model.shape().hidden_size == 64
    with pytest.raises(MindcodeError, match=r"model_config.num_layers is 3, but .*config.json gives 2"):
        load_config(write(tmp_path, text.format(extra="    num_layers: 3\n")))
    with pytest.raises(MindcodeError, match="gives no shape and .*nope/config.json, which would give it, is missing"):
        load_config(write(tmp_path, text.replace(str(init), str(tmp_path / "nope")).format(extra="")))
