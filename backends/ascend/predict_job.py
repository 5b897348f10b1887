"""Model-parallel prediction on Ascend as MindFormers' own predict runs it (``predict_codellama_34b.yaml``: 4 devices,
``use_parallel: True``, ``model_parallel: 4``; ``base_trainer``'s predict, ``model_runner``'s load).

``mindcode launch --nproc_per_node N -- predict --backend ascend ...`` runs N msrun workers; each one

1. writes the job, in MindFormers' format, to ``WORK_DIR/mindformers/predict_rank_N.yaml`` and reads it back;
2. sets the context and semi-auto parallel through MindFormers' ``build_context`` (``full_batch``: every rank is
   fed the same prompts and decodes the same tokens);
3. builds MindFormers' ``LlamaForCausalLM`` with the job's ``TransformerOpParallelConfig`` and without initialising
   its parameters (MindSpore's ``no_init_parameters``), so no rank ever holds the whole model;
4. hands the complete ``.ckpt`` to MindFormers' ``transform_and_load_checkpoint`` (``auto_trans_ckpt``): it
   compiles the prediction graph for its strategy, transforms the checkpoint into per-rank slices under
   ``WORK_DIR/mindformers/transformed_checkpoint`` and loads each rank's own.

``WORK_DIR`` is the folder of predict's ``--output``.

MindSpore's CPU target refuses semi-auto parallel, so there the split stops with one line (as training's does);
the tests check this path with MindFormers' calls spied on, and ``tests/parity/test_ascend_scale.py`` holds the
4-device run for an Atlas host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from backends.ascend import runtime
from backends.ascend.checkpoint import load_sliced
from backends.ascend.mindformers_config import write_yaml
from backends.ascend.parallel import STRATEGY_FILE
from mindcode.errors import MindcodeError
from mindcode.parallel import Layout, ParallelConfig, check_model, resolve
from mindcode.presets import ModelConfig

HEADER = "the model-parallel prediction job of one msrun worker (MindFormers' format; backends/ascend/predict_job.py)"


def predict_job(layout: Layout, checkpoint: str | Path, work_dir: str | Path, model_config: dict[str, Any],
                device: str) -> dict[str, Any]:
    """The MindFormers predict job: ``model_config`` (the ``LlamaConfig`` keys: shape, dtypes, cache) split by
    ``layout``'s model parallel, the complete ``checkpoint`` loaded sliced, ``work_dir`` for its strategy and slices."""
    return {
        "seed": 0,
        "output_dir": str(Path(work_dir) / "mindformers"),
        "load_checkpoint": str(checkpoint),
        "load_ckpt_format": "ckpt",
        "auto_trans_ckpt": True,  # each rank loads its slice of the complete checkpoint
        "src_strategy_path_or_dir": "",  # the checkpoint is complete, not itself split
        "only_save_strategy": False,
        "resume_training": False,
        "run_mode": "predict",
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "llama"},
        "runner_config": {"epochs": 1, "batch_size": model_config["batch_size"], "sink_mode": True, "sink_size": 1},
        "use_parallel": True,
        "parallel": {"parallel_mode": 1, "gradients_mean": False, "enable_alltoall": False, "full_batch": True,
                     "search_mode": "sharding_propagation", "enable_parallel_optimizer": False,
                     "strategy_ckpt_save_file": STRATEGY_FILE},
        "parallel_config": {**layout.as_dict(), "gradient_aggregation_group": 4},
        "micro_batch_interleave_num": 1,
        "context": runtime.predict_context_keys(device),
        "model": {"arch": {"type": "LlamaForCausalLM"}, "model_config": {"type": "LlamaConfig", **model_config}},
    }


def build_split_model(config: ModelConfig, checkpoint: str | Path, model_parallel: int, work_dir: str | Path,
                      llama_config: dict[str, Any]) -> Any:
    """MindFormers' ``LlamaForCausalLM`` split over ``model_parallel`` msrun workers, each holding and loading only
    its slice (see the module); ``llama_config``: every ``LlamaConfig`` key (rows, length, cache) but the layout."""
    layout = resolve(ParallelConfig(model_parallel=model_parallel), model_parallel, "predict")
    rows, length = llama_config["batch_size"], llama_config["seq_length"]
    check_model(layout, config, length, 1, "predict")
    device = runtime.device_target()
    if device == "CPU":
        raise MindcodeError(f"predict over {model_parallel} processes: model_parallel {model_parallel} is MindSpore's "
                            f"semi-auto parallel, which needs Ascend devices; on its CPU target ascend prediction runs "
                            f"in one process")
    if not Path(checkpoint).is_file():
        raise MindcodeError(f"{checkpoint}: no such checkpoint file")
    mindformers = runtime.mindformers()
    from mindformers import MindFormerConfig
    from mindformers.core.parallel_config import build_parallel_config
    from mindspore.communication import get_rank
    from mindspore.nn.utils import no_init_parameters

    path = Path(work_dir) / "mindformers" / f"predict_rank_{get_rank()}.yaml"  # each rank's context its own device
    write_yaml(predict_job(layout, checkpoint, work_dir, llama_config, device), path, HEADER)
    job = MindFormerConfig(str(path))
    runtime.predict_context(job)
    build_parallel_config(job)
    with no_init_parameters():  # the parameters get their data from the checkpoint's slices, never whole
        model = mindformers.LlamaForCausalLM(config=mindformers.LlamaConfig(**llama_config,
                                                                            parallel_config=job.parallel_config))
    load_sliced(job, model, model.prepare_inputs_for_predict_layout(np.ones((rows, length), np.int32)))
    return model
