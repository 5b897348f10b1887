"""DPO and SimPO in PyTorch, the math of ``mindcode.train.preference`` (and of the ascend backend's loss cell)."""

from __future__ import annotations

from typing import Any


def sequence_logps(model: Any, input_ids: Any, labels: Any) -> tuple[Any, Any]:
    """Per row: the summed log-probability of the trained tokens (``labels != -100``) and their count."""
    import torch

    logits = model(input_ids=input_ids[:, :-1]).logits.float()
    target = labels[:, 1:]
    mask = target != -100
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(-1), mask.sum(-1).float()


def preference_losses(config: Any, logps: Any, counts: Any, reference: Any) -> Any:
    """Per-pair losses from ``[2b]`` summed log-probabilities (``pair_rows`` order: chosen, rejected, chosen, ...)
    and ``[b, 2]`` reference ones."""
    import torch.nn.functional as F

    p = config.preference
    chosen, rejected = logps[0::2], logps[1::2]
    if config.stage == "simpo":
        z = p.beta * (chosen / counts[0::2] - rejected / counts[1::2]) - p.gamma
    else:
        z = p.beta * ((chosen - reference[:, 0]) - (rejected - reference[:, 1]))
    return (1 - p.label_smoothing) * F.softplus(-z) + p.label_smoothing * F.softplus(z)
