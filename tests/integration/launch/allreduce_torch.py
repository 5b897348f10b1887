"""Worker for the torchrun launcher tests: gloo AllReduce of rank + 1, written to OUT/rank{r}.txt.
A second argument ``fail`` makes rank 1 exit 3; ``sleep=S`` waits S seconds before the collective."""

import os
import sys
import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, size = dist.get_rank(), dist.get_world_size()
if len(sys.argv) > 2 and sys.argv[2] == "fail" and rank == 1:
    sys.exit(3)
if len(sys.argv) > 2 and sys.argv[2].startswith("sleep="):
    time.sleep(float(sys.argv[2].split("=")[1]))
value = torch.tensor([rank + 1.0])
dist.all_reduce(value)
with open(os.path.join(sys.argv[1], f"rank{rank}.txt"), "w") as f:
    f.write(f"{size} {value.item()}")
dist.destroy_process_group()
