"""The shared parallel layout: degrees resolved against the world size, MindFormers' rank order, stage splits, and
one-line errors naming the numbers."""

import pytest

from mindcode.errors import MindcodeError
from mindcode.parallel import ParallelConfig, check_model, resolve, stage_layers
from mindcode.presets import PRESETS


def test_data_parallel_is_the_remainder_and_ranks_follow_mindformers_order():
    layout = resolve(ParallelConfig(model_parallel=8, pipeline_stage=2, micro_batch_num=128), 32)
    assert (layout.data_parallel, layout.model_parallel, layout.pipeline_stage) == (2, 8, 2)
    # pipeline stage outermost, then data parallel, then model parallel (adjacent ranks share a model group)
    assert layout.coords(0) == (0, 0, 0) and layout.coords(7) == (0, 0, 7) and layout.coords(8) == (0, 1, 0)
    assert layout.coords(16) == (1, 0, 0) and layout.coords(31) == (1, 1, 7)
    assert resolve(ParallelConfig(), 4).data_parallel == 4
    assert resolve(ParallelConfig(data_parallel=2, model_parallel=2)).world_size == 4  # no world: the section's


def test_mindformers_rules_micro_batches_and_vocab_emb_dp():
    pipelined = resolve(ParallelConfig(pipeline_stage=2, micro_batch_num=4, vocab_emb_dp=True), 2)
    assert pipelined.vocab_emb_dp is False  # MindFormers' build_parallel_config resets it with pipeline stages
    assert resolve(ParallelConfig(micro_batch_num=8), 2).micro_batch_num == 1  # only pipelines split micro-batches
    assert resolve(ParallelConfig(use_seq_parallel=True), 2).use_seq_parallel is False  # needs model_parallel


@pytest.mark.parametrize("section, world, error", [
    (ParallelConfig(data_parallel=2, model_parallel=2), 8,
     r"data_parallel 2 x model_parallel 2 x pipeline_stage 1 = 4, but the job has 8 processes"),
    (ParallelConfig(model_parallel=3), 8, r"model_parallel 3 x pipeline_stage 1 = 3 does not divide the 8 processes"),
    (ParallelConfig(model_parallel=0), 8, r"parallel_config\.model_parallel: must be >= 1, got 0"),
    (ParallelConfig(pipeline_stage=4, micro_batch_num=2), 4, r"micro_batch_num 2: a pipeline of 4 stages needs"),
])
def test_bad_layouts_fail_naming_the_numbers(section, world, error):
    with pytest.raises(MindcodeError, match=error):
        resolve(section, world)


@pytest.mark.parametrize("section, model, error", [
    (ParallelConfig(model_parallel=3), "tiny", r"model_parallel 3 does not divide model_config\.num_heads 4"),
    (ParallelConfig(model_parallel=4), "tiny", r"model_parallel 4 does not divide model_config\.n_kv_heads 2"),
    (ParallelConfig(model_parallel=2, vocab_emb_dp=False), "codellama-7b", None),
    (ParallelConfig(model_parallel=32, vocab_emb_dp=False), "codellama-7b",
     r"does not divide vocab_size 32016 \(the embedding is split by vocabulary"),
    (ParallelConfig(pipeline_stage=3, micro_batch_num=3), "tiny", r"pipeline_stage 3 does not divide num_layers 2"),
    (ParallelConfig(pipeline_stage=2, micro_batch_num=3), "tiny", r"micro_batch_num 3 does not divide the 4 rows"),
])
def test_what_a_layout_needs_of_the_model(section, model, error):
    layout = resolve(section)
    if error is None:
        check_model(layout, PRESETS[model], 4096, 64)
        return
    with pytest.raises(MindcodeError, match=error):
        check_model(layout, PRESETS[model], 128, 4)


def test_stage_layers_are_consecutive_and_cover_every_layer():
    for layers, stages in ((48, 2), (48, 4), (40, 5), (2, 2), (7, 7)):
        split = [stage_layers(layers, stages, s) for s in range(stages)]
        assert [i for r in split for i in r] == list(range(layers))
        assert {len(r) for r in split} == {layers // stages}
    assert stage_layers(48, 2, 1) == range(24, 48)


def test_the_ascend_parallel_optimizer_means_semi_auto_and_the_cpu_target_says_so():
    """MindFormers' dp8 + parallel optimizer runs semi-auto parallel; MindSpore's CPU target refuses it with one line
    naming the setting, and data parallel without it stays MindSpore's data-parallel mode."""
    from backends.ascend.parallel import check_target, semi_auto
    from mindcode.config import MindFormersSection

    layout = resolve(ParallelConfig(data_parallel=2), 2)
    assert semi_auto(layout, MindFormersSection(enable_parallel_optimizer=True))
    assert not semi_auto(layout, MindFormersSection()) and not semi_auto(layout, None)
    with pytest.raises(MindcodeError, match="enable_parallel_optimizer with data_parallel 2 runs MindSpore's semi-auto "
                                            "parallel.*on its CPU target set it false"):
        check_target(layout, True, "CPU", "c.yaml: parallel_config")
    check_target(layout, False, "CPU", "c.yaml: parallel_config")
