"""Prototypical networks (Snell et al., NeurIPS 2017) inside one batch, leave-one-out."""

from __future__ import annotations

import torch

from norank.distances import pairwise_distances_between
from norank.losses._common import BatchLoss, IndexTuple, no_indices

__all__ = ["PrototypicalLoss"]


class PrototypicalLoss(BatchLoss):
    """Classify each sample by its squared distance to the class prototypes of the rest of the batch.

    The exact form. For a batch with classes ``k`` (those present), prototype ``c_k`` is the mean of the
    batch's embeddings of class ``k``; for sample ``i`` of class ``y_i`` its own class's prototype is the
    leave-one-out mean ``c_{y_i}^{(−i)}`` of the other samples of ``y_i``, so ``i`` is never its own
    prototype (the batch plays support and query set at once, Snell et al.'s episode without a split).
    With ``d_ik = ‖z_i − c_k‖²`` (``c_{y_i}^{(−i)}`` for ``k = y_i``), sample ``i`` scores the
    cross-entropy ``ℓ_i = d_{i y_i} + log Σ_k exp(−d_ik)`` of the softmax over ``−d_ik``. The loss is the
    mean of ``ℓ_i`` over the samples whose class has at least two samples in the batch (a single sample
    has no leave-one-out prototype, though it still serves as its class's prototype for the others);
    with no such sample it is a zero attached to the graph. A batch of one class gives 0 (one candidate).
    Gradients flow through the prototypes as well as the queries.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> loss = PrototypicalLoss()(z, torch.arange(4).repeat(2))
    """

    name = "prototypical"

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        no_indices("PrototypicalLoss", indices_tuple)
        z = embeddings
        _, slot, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        sums = torch.zeros(len(counts), z.shape[1], dtype=z.dtype, device=z.device).index_add(0, slot, z)
        dist = pairwise_distances_between(z, sums / counts[:, None].to(z.dtype), squared=True)  # (B, K)
        own = counts[slot]
        usable = own >= 2
        loo = (sums[slot] - z) / (own - 1).clamp_min(1)[:, None].to(z.dtype)
        own_dist = ((z - loo) ** 2).sum(dim=1)
        dist = dist.scatter(1, slot[:, None], own_dist[:, None])
        per_sample = own_dist + torch.logsumexp(-dist, dim=1)
        kept = torch.where(usable, per_sample, torch.zeros_like(per_sample))
        return kept.sum() / usable.sum().clamp_min(1)
