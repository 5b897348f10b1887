"""MindFormers' own training entry on a YAML mindcode wrote, with mindcode's cells registered first.

    python -m backends.ascend.run_mindformer --config runs/tiny_cpu/ascend/mindformers.yaml
    bash scripts/msrun_launcher.sh "python -m backends.ascend.run_mindformer --config OUTPUT_DIR/mindformers.yaml" 16 8 ...

What runs is what MindFormers' ``run_mindformer.py`` runs for ``run_mode: train``: ``set_output_path``,
``build_context``, ``Trainer(config).train()``; the YAML loads its weights (``load_checkpoint``), saves through
``CheckpointMonitor`` and stops at ``TrainCallBack``'s step. Importing ``backends.ascend.cells`` is the only
addition: it registers the CPU-safe step cell the YAML names on MindSpore's CPU target.
"""

from __future__ import annotations

import argparse


def main(config_path: str) -> None:
    import backends.ascend.cells  # noqa: F401 - registers mindcode's wrapper with MindFormers
    from mindformers import MindFormerConfig, Trainer, build_context
    from mindformers.utils.file_utils import set_output_path

    config = MindFormerConfig(config_path)
    set_output_path(config.output_dir)
    build_context(config)
    Trainer(config).train()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a mindformers.yaml written by `mindcode train`")
    main(parser.parse_args().config)
