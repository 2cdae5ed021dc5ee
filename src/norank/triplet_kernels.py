"""The unchecked blockwise kernels behind :mod:`norank.mining`.

Each kernel takes ``(dist, labels, margin)`` already checked by its caller and returns the
``(anchors, positives, negatives)`` LongTensors of one miner. The budget constants below bound the memory of
the (pairs × negatives) comparisons; they live here, with the code that reads them, so a test or a user
tuning them sets them on this module.
"""

from __future__ import annotations

import math

import torch

# Largest (pairs × negatives) block compared at once: 2**22 elements is 16 MiB per float32 temporary
# (larger blocks measured no faster on CPU).
ELEMENT_BUDGET = 2**22
# Semi-hard mining scans pairs × B (about positives × B per anchor) or sorts each row (about B·log₂B per
# anchor); it sorts when anchors average more than SORT_FACTOR·log₂B positives (few large classes).
# 0.75 is the measured crossover on CPU for B in 256..1024.
SORT_FACTOR = 0.75
# What a miner returns: (anchors, positives, negatives) LongTensors indexing the batch.
Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _empty(device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    e = torch.empty(0, dtype=torch.long, device=device)
    return e, e.clone(), e.clone()


def classes(labels: torch.Tensor):
    """Same-class mask (B, B) with the diagonal set, each sample's class size, and anchors that have
    both a positive and a negative (class size between 2 and B − 1)."""
    same = labels[:, None] == labels[None, :]
    # Class sizes from one sort, O(B log B): torch.unique's data-dependent output size would synchronise an
    # accelerator, and summing the (B, B) mask costs a B² integer copy.
    ordered = labels.sort().values
    size = torch.searchsorted(ordered, labels, right=True) - torch.searchsorted(ordered, labels)
    return same, size, (size >= 2) & (size < labels.shape[0])


def pairs(labels: torch.Tensor):
    """(anchor, positive) pairs of anchors having a negative, in lexicographic order, and the classes."""
    same, size, valid = classes(labels)
    anchors, positives = torch.nonzero(same & valid[:, None], as_tuple=True)
    distinct = anchors != positives
    return anchors[distinct], positives[distinct], same, size


def blocks(n_pairs: int, n_cols: int) -> list[slice]:
    """Consecutive slices of the pairs, each sized so that (pairs in slice) × ``n_cols`` <= ``ELEMENT_BUDGET``."""
    step = max(1, ELEMENT_BUDGET // max(1, n_cols))
    return [slice(start, start + step) for start in range(0, n_pairs, step)]


def select_triplets(dist, labels, keep_fn):
    """All (a, p, n) with n a negative of a and ``keep_fn(d(a,p) (c,1), d(a,n) (c,B))`` true.

    Pairs are compared with every column in blocks of at most ``ELEMENT_BUDGET`` elements. Columns that
    are not negatives of the anchor hold NaN, and every comparison with NaN is false, so ``keep_fn``
    (a comparison) rejects them without a separate mask; it may overwrite its d(a,n) block, a fresh
    copy. Output is ordered by (anchor, positive, negative), the order of a ``torch.where`` over a dense
    triplet mask.
    """
    anchors, positives, same, _ = pairs(labels)
    neg_only = dist.masked_fill(same, math.nan)
    kept = []
    for block in blocks(anchors.shape[0], dist.shape[0]):
        a, p = anchors[block], positives[block]
        rows, n = torch.nonzero(keep_fn(dist[a, p][:, None], neg_only[a]), as_tuple=True)
        kept.append((a[rows], p[rows], n))
    if not kept:
        return _empty(dist.device)
    return tuple(torch.cat([b[i] for b in kept]) for i in range(3))


def _closest_farther_blocks(dist, same, size, anchors, positives):
    """Per pair, argmin d(a,n) over negatives with d(a,n) > d(a,p) (-1 if none), in budgeted blocks."""
    neg_only = dist.masked_fill(same, math.inf)
    out = []
    for block in blocks(anchors.shape[0], dist.shape[0]):
        a, p = anchors[block], positives[block]
        d_an = neg_only[a]
        d_an = d_an.masked_fill(d_an <= dist[a, p][:, None], math.inf)
        best, idx = d_an.min(dim=1)
        out.append(torch.where(torch.isinf(best), -1, idx))
    return torch.cat(out) if out else anchors.new_empty(0)


def _closest_farther_sorted(dist, same, size, anchors, positives):
    """Same result as :func:`_closest_farther_blocks` from one sort of each row: O(B² log B) in all.

    Each row's negative distances are sorted once (stable, so among equal distances the lowest index
    comes first, as with argmin); a binary search per pair finds the first one beyond d(a,p). Worth it
    when anchors have many positives (few classes), where pairs × B approaches B³.
    """
    b = dist.shape[0]
    if anchors.numel() == 0:
        return anchors.new_empty(0)
    sorted_d, order = dist.masked_fill(same, math.inf).sort(dim=1, stable=True)
    counts = torch.bincount(anchors, minlength=b)
    rank = torch.arange(anchors.shape[0], device=dist.device) - (torch.cumsum(counts, 0) - counts)[anchors]
    queries = dist.new_full((b, int(counts.max())), math.inf)
    queries[anchors, rank] = dist[anchors, positives]
    first = torch.searchsorted(sorted_d, queries, right=True)[anchors, rank]
    found = first < b - size[anchors]  # the anchor's number of negatives
    return torch.where(found, order[anchors, first.clamp(max=b - 1)], -1)


def _semihard(dist, labels, margin):
    anchors, positives, same, size = pairs(labels)
    b = dist.shape[0]
    if anchors.numel() > SORT_FACTOR * math.log2(max(b, 2)) * b:
        chosen = _closest_farther_sorted(dist, same, size, anchors, positives)
    else:
        chosen = _closest_farther_blocks(dist, same, size, anchors, positives)
    farthest = dist.masked_fill(same, -math.inf).argmax(dim=1)
    return anchors, positives, torch.where(chosen >= 0, chosen, farthest[anchors])


def _hard(dist, labels, margin):
    anchors, positives, same, _ = pairs(labels)
    closest = dist.masked_fill(same, math.inf).argmin(dim=1)
    return anchors, positives, closest[anchors]


def _batch_hard(dist, labels, margin):
    same, _, valid = classes(labels)
    positive_d = torch.where(same, dist, -math.inf)
    positive_d.fill_diagonal_(-math.inf)
    _, far_pos = positive_d.max(dim=1)
    _, near_neg = dist.masked_fill(same, math.inf).min(dim=1)
    anchors = torch.nonzero(valid, as_tuple=True)[0]
    return anchors, far_pos[anchors], near_neg[anchors]


def _all(dist, labels, margin):
    return select_triplets(dist, labels, lambda d_ap, d_an: d_an < d_ap + margin)


# The kernels by miner name: (dist, labels, margin) -> (a, p, n), called under no_grad by norank.mining's
# public functions (after their input checks) and by TripletMiner's hot path.
KERNELS = {"semihard": _semihard, "hard": _hard, "batch_hard": _batch_hard, "all": _all}
