"""Triplet miners on a batch's B×B distance matrix.

Every miner takes ``(dist, labels, margin)`` — ``dist`` a (B, B) distance matrix (squared or plain
Euclidean, the caller's choice), ``labels`` (B,) integer class labels — and returns three LongTensors
``(anchors, positives, negatives)`` indexing the batch, the index-tuple convention of
pytorch-metric-learning, so a loss can consume them directly.

Mining never builds a B×B×B tensor. The (anchor, positive) pairs are enumerated once (O(B²)); miners
that must compare each pair with every negative (``all``, ``margin_triplets``, semi-hard with small
classes) do so in blocks of at most ``ELEMENT_BUDGET`` elements (set in :mod:`norank.triplet_kernels`),
so memory stays bounded by the budget (plus the output) even for a 2-class batch, where there are ~B²/2
pairs. Hard and batch-hard need one
pass over the B×B matrix; semi-hard with few large classes sorts each row once (O(B² log B)) instead.
Anchors with no positive or no negative in the batch produce no triplets. Mining runs under ``no_grad``:
the indices carry no gradient; the loss re-reads ``dist`` at those indices. This module checks inputs and
holds the public miners and miner objects; the unchecked kernels live in :mod:`norank.triplet_kernels`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from norank import triplet_kernels as kernels
from norank.distances import check_distance, check_label_tensor, check_matrix, pairwise_distances
from norank.triplet_kernels import ELEMENT_BUDGET, Triplets

__all__ = [
    "ELEMENT_BUDGET",
    "MINERS",
    "BatchMiner",
    "TripletMiner",
    "active_anchor_fraction",
    "active_fraction",
    "all_triplets",
    "batch_hard_triplets",
    "hard_triplets",
    "margin_triplet_loss",
    "margin_triplets",
    "mine",
    "semihard_triplets",
]

MARGIN_KINDS = ("all", "hard", "semihard", "easy")


def _check_margin(margin) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0; got {margin!r}.")
    return float(margin)


def _check_inputs(dist, labels, margin) -> None:
    if not isinstance(dist, torch.Tensor) or not dist.is_floating_point():
        raise TypeError(
            "dist must be a floating-point torch.Tensor of shape (B, B); "
            "compute it with norank.distances.pairwise_distances(z)."
        )
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be a square (B, B) distance matrix; got shape {tuple(dist.shape)}.")
    if not bool(torch.isfinite(dist.sum(dtype=torch.float64))):  # one pass; NaN or inf anywhere shows
        raise ValueError(
            "dist contains NaN or inf: the embeddings have diverged; lower the learning rate "
            "or check the inputs for NaN."
        )
    check_label_tensor(labels, dist.shape[0], "dist")
    _check_margin(margin)


@torch.no_grad()
def semihard_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> Triplets:
    """FaceNet semi-hard mining (the paper's Algorithm 1): one triplet per (anchor, positive) pair.

    The negative is the closest one farther than the positive, ``argmin d(a,n)`` over ``d(a,n) > d(a,p)``.
    When no negative is farther than the positive (every negative is closer: the pair is already "hard"),
    the farthest negative is taken instead, i.e. the least hard of them — the convention of TensorFlow's
    ``triplet_semihard_loss``. ``margin`` does not change which negative is chosen (a closest semi-hard
    negative beyond ``d(a,p) + margin`` simply gives zero loss, as would any farther one); it is accepted
    so all miners share one signature. Ties go to the lowest index.
    """
    _check_inputs(dist, labels, margin)
    return kernels.KERNELS["semihard"](dist, labels, margin)


@torch.no_grad()
def hard_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> Triplets:
    """Hard mining (the paper's Algorithm 2): for each (anchor, positive) pair, the closest negative.

    The closest negative depends on the anchor only, so it is found once per row (O(B²)).
    ``margin`` is accepted for the shared signature only.
    """
    _check_inputs(dist, labels, margin)
    return kernels.KERNELS["hard"](dist, labels, margin)


@torch.no_grad()
def batch_hard_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> Triplets:
    """Batch-hard mining (Hermans et al. 2017): per anchor, its farthest positive and closest negative.

    One triplet per anchor; the same triplets as pytorch-metric-learning's ``BatchHardMiner``.
    ``margin`` is accepted for the shared signature only.
    """
    _check_inputs(dist, labels, margin)
    return kernels.KERNELS["batch_hard"](dist, labels, margin)


@torch.no_grad()
def all_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> Triplets:
    """Every valid triplet with positive loss, ``d(a,n) < d(a,p) + margin``.

    Tested exactly as the loss computes ``(d(a,p) + margin) − d(a,n) > 0``, so every triplet returned
    has a loss above 0 in :func:`norank.losses.triplet_margin_loss`, even after rounding.
    """
    _check_inputs(dist, labels, margin)
    return kernels.KERNELS["all"](dist, labels, margin)


def _check_kind(kind: str) -> None:
    if kind not in MARGIN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, MARGIN_KINDS))}; got {kind!r}.")


def _margin_keep(gap: torch.Tensor, margin: float, kind: str) -> torch.Tensor:
    """TripletMarginMiner's sets on ``gap = d(a,n) − d(a,p)``; NaN (not a negative) fails every test."""
    if kind == "easy":
        return gap > margin
    if kind == "hard":
        return gap <= min(0.0, margin)  # gap <= margin and gap <= 0 in one comparison
    keep = gap <= margin
    if kind == "semihard":
        keep &= gap > 0
    return keep


@torch.no_grad()
def margin_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2, kind: str = "all") -> Triplets:
    """The triplet sets of pytorch-metric-learning's ``TripletMarginMiner(margin, type_of_triplets=kind)``.

    With ``gap = d(a,n) − d(a,p)``: ``"all"`` keeps ``gap <= margin``, ``"hard"`` also ``gap <= 0``,
    ``"semihard"`` also ``gap > 0``, ``"easy"`` keeps ``gap > margin``. Note ``"all"`` here includes
    triplets exactly on the margin (zero loss), unlike :func:`all_triplets`. Kept for like-for-like
    comparisons; training uses the miners in :data:`MINERS`.
    """
    _check_inputs(dist, labels, margin)
    _check_kind(kind)

    def keep(d_ap, d_an):
        return _margin_keep(d_an.sub_(d_ap), margin, kind)  # d_an is a fresh block, free to overwrite

    return kernels.select_triplets(dist, labels, keep)


def margin_triplet_loss(
    dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.2, kind: str = "all"
) -> tuple[torch.Tensor, int]:
    """Mining and loss in one pass: the mean of ``[d(a,p) + margin − d(a,n)]₊`` over the triplets that
    :func:`margin_triplets` (``kind``) would return, and their number, without listing them.

    Equal to ``triplet_margin_loss(dist, *margin_triplets(dist, labels, margin, kind), margin)`` (the
    same triplet set and mean) with gradients to ``dist``; when only the loss is needed it skips writing
    and gathering millions of (a, p, n) indices, the cost that bounds the listing miners. Returns
    ``(loss, count)``; with no triplet the loss is a zero attached to ``dist``'s graph.
    """
    _check_inputs(dist, labels, margin)
    _check_kind(kind)
    anchors, positives, same, _ = kernels.pairs(labels)
    total, count = dist.reshape(-1)[:0].sum(), 0
    for block in kernels.blocks(anchors.shape[0], dist.shape[0]):
        a, p = anchors[block], positives[block]
        d_ap, d_an = dist[a, p][:, None], dist[a]
        with torch.no_grad():
            keep = _margin_keep((d_an - d_ap).masked_fill_(same[a], math.nan), margin, kind)
        count += int(keep.sum())
        total = total + torch.relu((d_ap + margin) - d_an).masked_fill(~keep, 0.0).sum()
    return (total / count if count else total), count


MINERS = {
    "semihard": semihard_triplets,
    "hard": hard_triplets,
    "batch_hard": batch_hard_triplets,
    "all": all_triplets,
}


def mine(dist: torch.Tensor, labels: torch.Tensor, method: str = "semihard", margin: float = 0.2) -> Triplets:
    """Run the miner named ``method`` (a key of :data:`MINERS`)."""
    if method not in MINERS:
        raise ValueError(f"unknown mining method {method!r}; choose one of {', '.join(map(repr, MINERS))}.")
    return MINERS[method](dist, labels, margin)


@torch.no_grad()
def active_anchor_fraction(
    dist: torch.Tensor,
    anchors: torch.Tensor | Sequence[int],
    positives: torch.Tensor | Sequence[int],
    negatives: torch.Tensor | Sequence[int],
    margin: float,
    labels: torch.Tensor,
) -> float:
    """Share of eligible anchors with at least one mined triplet of positive loss.

    Eligible anchors have at least one positive and one negative in the batch. A value falling to 0 means
    every mined triplet already satisfies the margin: training has stopped learning. Returns 0.0 when no
    anchor is eligible. The index triple may be tensors or sequences of ints (converted here, checked).
    """
    _check_inputs(dist, labels, margin)
    anchors, positives, negatives = (
        torch.as_tensor(t, dtype=torch.long, device=dist.device) for t in (anchors, positives, negatives)
    )
    if not anchors.shape == positives.shape == negatives.shape or anchors.ndim != 1:
        raise ValueError(
            "anchors, positives and negatives must be 1-D index tensors of equal length; got "
            f"{tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}."
        )
    return float(active_fraction(dist, anchors, positives, negatives, margin, labels))


@torch.no_grad()
def active_fraction(
    dist: torch.Tensor,
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    margin: float,
    labels: torch.Tensor,
) -> torch.Tensor:
    """:func:`active_anchor_fraction` as a 0-dim tensor, unchecked and without a device synchronisation.

    For a training step's hot path, whose inputs were checked where they entered.
    """
    _, _, valid = kernels.classes(labels)
    losing = (dist[anchors, negatives] < dist[anchors, positives] + margin).to(dist.dtype)
    hits = torch.zeros(dist.shape[0], dtype=dist.dtype, device=dist.device).index_add_(0, anchors, losing)
    return ((hits > 0) & valid).sum() / valid.sum().clamp_min(1)


class BatchMiner:
    """The public entry shared by miner objects: ``miner(embeddings, labels) -> index tuple``.

    A call checks the tensors' shapes and dtypes (metadata only, no device synchronisation), builds the
    subclass's (B, B) ``matrix`` of the batch without a graph and hands it to ``mine_matrix``, the
    unchecked path a loss that already holds the matrix calls directly.
    """

    def matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mine_matrix(self, matrix: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        check_matrix("embeddings", embeddings)
        check_label_tensor(labels, embeddings.shape[0])
        return self.mine_matrix(self.matrix(embeddings.detach()), labels)


class TripletMiner(BatchMiner):
    """A triplet miner object: ``miner(embeddings, labels) -> (anchors, positives, negatives)``.

    ``kind`` names one of :data:`MINERS` (``"semihard"``, ``"hard"``, ``"batch_hard"``, ``"all"``),
    ``distance`` one of ``norank.distances.DISTANCES``; ``margin`` matters to ``"all"`` only. Settings are
    checked once, here; a call (see :class:`BatchMiner`) builds the distance matrix without a graph and
    mines on it. A loss that already holds the distance matrix calls :meth:`mine_matrix`, the unchecked hot
    path, instead. Returns LongTensors, PML's index-tuple convention.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    >>> a, p, n = TripletMiner("batch_hard")(z, torch.arange(4).repeat(2))
    """

    def __init__(self, kind: str = "semihard", margin: float = 2.0, distance: str = "euclidean"):
        if not isinstance(kind, str) or kind not in MINERS:
            raise ValueError(f"unknown mining kind {kind!r}; choose one of {', '.join(map(repr, MINERS))}.")
        check_distance(distance)
        self.kind, self.margin, self.distance = kind, _check_margin(margin), distance

    def __repr__(self) -> str:
        return f"TripletMiner(kind={self.kind!r}, margin={self.margin!r}, distance={self.distance!r})"

    def matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        return pairwise_distances(embeddings, squared=self.distance == "squared")

    @torch.no_grad()
    def mine_matrix(self, matrix: torch.Tensor, labels: torch.Tensor) -> Triplets:
        """Mine on a (B, B) matrix of this miner's distance, unchecked: the per-step path of a loss."""
        return kernels.KERNELS[self.kind](matrix, labels, self.margin)
