"""The data order both backends follow: one permutation per epoch from the seed, cut into global batches.

Step ``s`` reads global batch ``s``; with data parallelism, rank ``r`` of ``w`` reads the ``r``-th contiguous
slice of it. Resuming at step ``s`` is just asking for batch ``s``: the position is the step.
"""

from __future__ import annotations

import numpy as np

from mindcode.errors import MindcodeError


class Sampler:
    def __init__(self, num_rows: int, batch_size: int, seed: int, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        if num_rows < batch_size:
            raise MindcodeError(f"the dataset has {num_rows} rows, fewer than one global batch of {batch_size}")
        if batch_size % world_size:
            raise MindcodeError(f"global batch {batch_size} is not divisible by {world_size} data-parallel ranks")
        self.num_rows, self.batch_size, self.seed, self.shuffle = num_rows, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = num_rows // batch_size  # the last partial batch of an epoch is dropped
        self._epoch, self._order = -1, np.arange(num_rows)

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = (np.random.default_rng([self.seed, epoch]).permutation(self.num_rows) if self.shuffle
                           else np.arange(self.num_rows))
        return self._order

    def global_batch(self, step: int) -> np.ndarray:
        epoch, index = divmod(step, self.batches_per_epoch)
        return self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]

    def batch(self, step: int) -> np.ndarray:
        """This rank's row indices for ``step``."""
        per_rank = self.batch_size // self.world_size
        return self.global_batch(step)[self.rank * per_rank:(self.rank + 1) * per_rank]

    def epoch_of(self, step: int) -> int:
        return step // self.batches_per_epoch
