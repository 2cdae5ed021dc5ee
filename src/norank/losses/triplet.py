"""The triplet margin loss (the paper's objective): a function on a distance matrix and mined index
triples, and ``TripletLoss``, the object that builds the matrix, mines on it and reports diagnostics."""

from __future__ import annotations

import math

import torch

from norank.distances import pairwise_distances
from norank.losses._common import BatchLoss, IndexTuple, attached_zero
from norank.mining import TripletMiner, active_fraction

__all__ = ["TripletLoss", "triplet_margin_loss"]


def _triplet_indices(
    anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, device: torch.device
) -> list[torch.Tensor]:
    idx = [torch.as_tensor(t, dtype=torch.long, device=device) for t in (anchors, positives, negatives)]
    if any(t.ndim != 1 for t in idx) or not idx[0].shape == idx[1].shape == idx[2].shape:
        raise ValueError(
            "anchors, positives and negatives must be 1-D index tensors of equal length; got shapes "
            f"{[tuple(t.shape) for t in idx]}."
        )
    return idx


def _hinge_mean(dist: torch.Tensor, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float) -> torch.Tensor:
    if a.numel() == 0:
        return attached_zero(dist)
    return torch.relu((dist[a, p] + margin) - dist[a, n]).mean()


def triplet_margin_loss(
    dist: torch.Tensor, anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """Mean over the given triplets of ``[d(a,p) + margin − d(a,n)]₊``, read from ``dist``.

    Triplets with zero loss count in the mean (pytorch-metric-learning's ``MeanReducer``). With no
    triplets the result is a zero still attached to ``dist``'s graph, so ``backward()`` works (and
    gives zero gradients) instead of failing on a constant.
    """
    if not isinstance(dist, torch.Tensor) or dist.ndim != 2 or not dist.is_floating_point():
        raise TypeError("dist must be a floating-point (B, B) torch.Tensor from norank.distances.pairwise_distances.")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number; got {margin!r}.")
    a, p, n = _triplet_indices(anchors, positives, negatives, dist.device)
    return _hinge_mean(dist, a, p, n, margin)


class TripletLoss(BatchLoss):
    """Triplet margin loss with in-batch mining: ``loss(embeddings, labels, indices_tuple=None)``.

    The (B, B) matrix of ``distance`` (``"euclidean"`` or ``"squared"``) is built once; unless an
    ``indices_tuple`` ``(anchors, positives, negatives)`` is given, the ``mining`` miner (a
    :class:`norank.mining.TripletMiner` kind) picks triplets on its detached copy; the result is the mean
    hinge :func:`triplet_margin_loss` (a zero attached to the graph when there is no triplet).

    After each call ``stats`` holds two detached 0-dim tensors (no host synchronisation in the step):
    ``active_fraction``, the share of eligible anchors with a mined triplet of positive loss (0 means
    training has stopped learning), and ``embedding_spread``, the batch's mean plain-Euclidean pairwise
    distance over all B² entries, diagonal included (0 means the embeddings collapsed to a point).

    Examples
    --------
    >>> loss_fn = TripletLoss(margin=0.5, distance="squared", mining="batch_hard")
    >>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> loss = loss_fn(z, torch.arange(4).repeat(2))
    """

    name = "triplet"
    repr_fields = ("margin", "distance", "mining")

    def __init__(self, margin: float = 2.0, distance: str = "euclidean", mining: str = "semihard") -> None:
        super().__init__()
        self.miner = TripletMiner(mining, margin, distance)  # checks all three settings
        self.margin, self.distance, self.mining = self.miner.margin, distance, mining
        self.stats: dict[str, torch.Tensor] = {}

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        squared = self.distance == "squared"
        dist = pairwise_distances(embeddings, squared=squared)
        if indices_tuple is None:
            a, p, n = self.miner.mine_matrix(dist.detach(), labels)
        elif isinstance(indices_tuple, (tuple, list)) and len(indices_tuple) == 3:
            anchors, positives, negatives = indices_tuple
            a, p, n = _triplet_indices(anchors, positives, negatives, dist.device)
        else:
            raise ValueError(
                "TripletLoss needs indices_tuple = (anchors, positives, negatives) from a triplet "
                "miner; a 4-tuple of pairs or another object cannot form triplets."
            )
        loss = _hinge_mean(dist, a, p, n, self.margin)
        with torch.no_grad():
            d = dist.detach()
            self.stats = {
                "active_fraction": active_fraction(d, a, p, n, self.margin, labels),
                "embedding_spread": (d.clamp_min(0).sqrt() if squared else d).mean(),
            }
        return loss
