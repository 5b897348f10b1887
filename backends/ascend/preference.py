"""DPO and SimPO as MindSpore cells over MindFormers' ``LlamaForCausalLM`` (its decoder and ``lm_head``): the math
of ``mindcode.train.preference``, and of the gpu backend's ``preference_losses``.

The loss cell is what MindFormers' step cell differentiates, so it returns the loss alone; the policy's per-row
log-probabilities and token counts of the step (before the update) are kept in a non-trainable parameter for the
metrics.
"""

from __future__ import annotations

from typing import Any


def sequence_logps_cell(network: Any) -> Any:
    """A cell: ``(input_ids, labels) -> (summed log-probability of the trained tokens, their count)`` per row."""
    import mindspore as ms
    from mindspore import nn, ops

    class SequenceLogps(nn.Cell):
        def __init__(self):
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

    return SequenceLogps()


def preference_loss_cell(network: Any, config: Any, pairs: int) -> Any:
    """``(input_ids [2b, L], labels [2b, L], reference [b, 2]) -> loss`` for ``config.stage`` dpo or simpo."""
    import numpy as np
    from mindspore import Parameter, Tensor, nn, ops

    p, simpo = config.preference, config.stage == "simpo"
    beta, gamma, smoothing, rpo_alpha = p.beta, p.gamma, p.label_smoothing, p.rpo_alpha  # constants in the graph
    scores = sequence_logps_cell(network)

    class PreferenceLoss(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.network = network
            self.scores = scores
            self.last = Parameter(Tensor(np.zeros(4 * pairs, np.float32)), name="preference_last_step",
                                  requires_grad=False)

        def softplus(self, x):
            return ops.log1p(ops.exp(-ops.abs(x))) + ops.maximum(x, 0.0)

        def construct(self, input_ids, labels, reference):
            logps, counts = self.scores(input_ids, labels)
            chosen, rejected = logps[:pairs], logps[pairs:]
            if simpo:
                z = beta * (chosen / counts[:pairs] - rejected / counts[pairs:]) - gamma
            else:
                z = beta * ((chosen - reference[:, 0]) - (rejected - reference[:, 1]))
            loss = ((1 - smoothing) * self.softplus(-z) + smoothing * self.softplus(z)).mean()
            if rpo_alpha:
                loss = loss - rpo_alpha * chosen.sum() / counts[:pairs].sum()
            ops.assign(self.last, ops.stop_gradient(ops.concat([logps, counts])))
            return loss

    return PreferenceLoss()
