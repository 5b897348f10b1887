"""dpo's reference pass under MindFormers' semi-auto parallel, without any rank reading the whole init.

The reference model is a second ``LlamaForCausalLM`` in the training layout, built without initialised parameters
(MindSpore's ``no_init_parameters``). MindFormers' ``transform_and_load_checkpoint`` (its prediction path, as in
``predict_job.py``) compiles the log-probability graph for its strategy, transforms the init into per-rank slices
(``auto_trans_ckpt``) and loads each rank's own. The model serves the reference pass alone and is released before
MindFormers' Trainer compiles the policy and loads the init into it, sliced again for the training strategy
(``TransformCkpt`` remakes its folder for each strategy). The two models share no parameter, so the training
graph's layout (the parallel optimizer's shards among it) never meets the prediction graph's.

Pipeline stages are not split here (a forward without MindFormers' ``PipelineCell``): under ``pipeline_stage > 1``
mindcode still loads the init whole for the reference pass (``MindFormersSection.init_reading``, which
``mindcode plan`` counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from backends.ascend.checkpoint import load_sliced
from backends.ascend.model import build_model
from mindcode.presets import ModelConfig


def reference_scores(shape: ModelConfig, seq_length: int, settings: dict[str, Any], parallel_config: Any,
                     job_file: Path, input_ids: np.ndarray, labels: np.ndarray) -> Any:
    """``SequenceLogps`` over the reference model, each rank holding only its slice of the init named by the job
    (``job_file``: the run's MindFormers YAML, ``load_checkpoint`` and ``auto_trans_ckpt``); ``input_ids`` and
    ``labels``: one batch of the pass, the shapes the graph is compiled for."""
    ms = runtime.mindspore()
    from mindformers import MindFormerConfig
    from mindspore.nn.utils import no_init_parameters

    from backends.ascend.preference import SequenceLogps

    with no_init_parameters():
        model = build_model(shape, seq_length, settings=settings, parallel_config=parallel_config)
    scores = SequenceLogps(model)
    scores.set_train(False)
    job = MindFormerConfig(str(job_file))  # a fresh copy: MindFormers' Trainer converts the run's own later
    load_sliced(job, scores, (ms.Tensor(input_ids, ms.int32), ms.Tensor(labels, ms.int32)))
    return scores
