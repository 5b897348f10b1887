"""Worker for the msrun launcher tests: AllReduce of rank + 1 over all workers, written to OUT/rank{r}.txt."""

import os
import sys

import numpy as np

import mindspore as ms
from mindspore import ops
from mindspore.communication import get_group_size, get_rank, init

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
init()
rank, size = get_rank(), get_group_size()
if len(sys.argv) > 2 and sys.argv[2] == "fail" and rank == 1:
    sys.exit(3)
total = ops.AllReduce()(ms.Tensor(np.array([rank + 1.0], np.float32)))
with open(os.path.join(sys.argv[1], f"rank{rank}.txt"), "w") as f:
    f.write(f"{size} {float(total.asnumpy()[0])}")
