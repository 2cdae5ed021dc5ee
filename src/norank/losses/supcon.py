"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), the in-batch "SupCon out" form."""

from __future__ import annotations

import torch

from norank.losses._common import (
    BatchLoss,
    IndexTuple,
    check_real,
    cosine,
    masked_log_sum_exp,
    pair_masks,
)

__all__ = ["SupConLoss"]


class SupConLoss(BatchLoss):
    """Supervised contrastive loss: each anchor's same-class samples against all other samples.

    With cosine similarities ``s_ij`` and temperature ``τ``, anchor ``i`` with positives ``P(i)`` (same
    class, not ``i``) and the set ``A(i)`` of its positives and negatives scores
    ``ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} log( exp(s_ip/τ) / Σ_{a∈A(i)} exp(s_ia/τ) )``; the loss is the mean of
    ``ℓ_i`` over the anchors where it is above 0 (pytorch-metric-learning's ``AvgNonZeroReducer``, so
    anchors without a positive drop out). The same value as PML's ``SupConLoss``. A batch without any
    positive pair or without any negative pair gives a zero attached to the graph. ``indices_tuple``
    (PML's triplets or pairs) restricts the pairs; by default every pair counts.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> loss = SupConLoss(temperature=0.1)(z, torch.arange(4).repeat(2))
    """

    name = "supcon"
    repr_fields = ("temperature",)

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = check_real("temperature", temperature, positive=True)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        pos, neg = pair_masks(labels, indices_tuple)
        logits = cosine(embeddings, embeddings) / self.temperature
        log_prob = logits - masked_log_sum_exp(logits, pos | neg)[:, None]
        n_pos = pos.sum(dim=1)
        per_anchor = -torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1) / n_pos.clamp_min(1)
        counted = per_anchor > 0
        loss = torch.where(counted, per_anchor, torch.zeros_like(per_anchor)).sum() / counted.sum().clamp_min(1)
        return loss * (pos.any() & neg.any()).to(loss.dtype)
