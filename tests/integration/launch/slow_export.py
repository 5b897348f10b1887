"""Worker for the export test: 2 gloo ranks whose default group times out after 3 s export the tiny model while
rank 0's consolidation of the HF files takes 8 s (a slow shared filesystem, in small). ``default`` as the second
argument sends the export's collectives over the default group instead of mindcode's own."""

import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import transformers

from backends.gpu import checkpoint
from mindcode.presets import PRESETS

dist.init_process_group("gloo", timeout=timedelta(seconds=60))  # a slow start must not fail the rendezvous
dist.barrier()
dist.distributed_c10d._set_pg_timeout(timedelta(seconds=3))  # then the default group's collectives time out at 3 s
rank = dist.get_rank()
finish = dcp.HuggingFaceStorageWriter.finish


def slow_finish(self, *args, **kwargs):
    if rank == 0:
        time.sleep(8)
    return finish(self, *args, **kwargs)


dcp.HuggingFaceStorageWriter.finish = slow_finish
if len(sys.argv) > 2 and sys.argv[2] == "default":
    dist.new_group = lambda *a, **k: None  # the export's collectives on the default group (3 s)
shape = PRESETS["tiny"]
torch.manual_seed(0)
model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape.to_hf_config()))
checkpoint.export_hf(model, shape, "float32", Path(sys.argv[1]), rank)
dist.destroy_process_group()
