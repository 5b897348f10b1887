"""DPO and SimPO as MindSpore cells over MindFormers' ``LlamaForCausalLM`` (its decoder and ``lm_head``): the math
of ``mindcode.train.preference``, and of the gpu backend's ``preference_losses``.

Rows come in ``mindcode.train.preference.pair_rows`` order (each chosen row followed by its rejected row), so
MindFormers' micro-batching cells, which slice every input by rows, hand each micro-batch whole pairs together with
their reference values. The loss cell is what MindFormers' step cell differentiates, so it returns the loss alone;
the policy's per-row log-probabilities and token counts of the step (before the update) are kept in a non-trainable
parameter for the metrics (with MindFormers' accumulation: those of the last micro-batch).
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops


class SequenceLogps(nn.Cell):
    """``(input_ids, labels) -> (summed log-probability of the trained tokens, their count)`` per row."""

    def __init__(self, network: Any):
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, input_ids, labels):
        hidden = self.network.model(input_ids[:, :-1])
        logits = ops.cast(self.network.lm_head(hidden), ms.float32)
        target = labels[:, 1:]
        mask = ops.not_equal(target, -100)
        safe = ops.select(mask, target, ops.zeros_like(target))
        logp = ops.gather_elements(ops.log_softmax(logits, -1), 2, ops.expand_dims(safe, -1)).squeeze(-1)
        weights = ops.cast(mask, ms.float32)
        return (logp * weights).sum(-1), weights.sum(-1)


class PreferenceLoss(nn.Cell):
    """``(input_ids [2b, L], labels [2b, L], reference [b, 2]) -> loss`` for ``config.stage`` dpo or simpo;
    ``pairs``: the pairs one call sees (sizes the metrics buffer)."""

    def __init__(self, network: Any, config: Any, pairs: int):
        super().__init__(auto_prefix=False)
        p = config.preference
        self.network = network
        self.scores = SequenceLogps(network)
        self.simpo = config.stage == "simpo"  # constants in the graph
        self.beta, self.gamma, self.smoothing, self.rpo_alpha = p.beta, p.gamma, p.label_smoothing, p.rpo_alpha
        self.last = Parameter(Tensor(np.zeros(4 * pairs, np.float32)), name="preference_last_step",
                              requires_grad=False)

    def softplus(self, x):
        return ops.log1p(ops.exp(-ops.abs(x))) + ops.maximum(x, 0.0)

    def construct(self, input_ids, labels, reference):
        logps, counts = self.scores(input_ids, labels)
        by_pair, n = logps.reshape((-1, 2)), counts.reshape((-1, 2))
        chosen, rejected = by_pair[:, 0], by_pair[:, 1]
        if self.simpo:
            z = self.beta * (chosen / n[:, 0] - rejected / n[:, 1]) - self.gamma
        else:
            z = self.beta * ((chosen - reference[:, 0]) - (rejected - reference[:, 1]))
        loss = ((1 - self.smoothing) * self.softplus(-z) + self.smoothing * self.softplus(z)).mean()
        if self.rpo_alpha:
            loss = loss - self.rpo_alpha * chosen.sum() / n[:, 0].sum()
        ops.assign(self.last, ops.stop_gradient(ops.concat([logps, counts])))
        return loss
