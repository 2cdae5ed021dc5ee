"""The loss terms of norank, each usable on its own: tensors in, a differentiable scalar out.

``L = L_triplet + λ1·L_div + λ2·L_unif + λ3·L_local + λ4·L_global`` (see DESIGN.md §1). The triplet term
consumes a distance matrix and the index triples of :mod:`norank.mining`, so the choice of distance
(squared or plain Euclidean) and of miner stays with the caller. ``ProxyAnchorLoss`` is an alternative
to the triplet term that needs no mining.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from norank.distances import pairwise_distances

__all__ = [
    "ProxyAnchorLoss",
    "diversity_loss",
    "global_preservation_loss",
    "local_preservation_loss",
    "triplet_margin_loss",
    "uniformity_loss",
]

EPS = 1e-8


def _check_batch(name: str, t, min_rows: int = 2) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (B, m).")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (B samples, m dimensions); got shape {tuple(t.shape)}.")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples); got {t.shape[0]}. Use a larger batch.")


def triplet_margin_loss(dist, anchors, positives, negatives, margin: float = 0.2) -> torch.Tensor:
    """Mean over the given triplets of ``[d(a,p) + margin − d(a,n)]₊``, read from ``dist``.

    Triplets with zero loss count in the mean (pytorch-metric-learning's ``MeanReducer``). With no
    triplets the result is a zero still attached to ``dist``'s graph, so ``backward()`` works (and
    gives zero gradients) instead of failing on a constant.
    """
    if not isinstance(dist, torch.Tensor) or dist.ndim != 2 or not dist.is_floating_point():
        raise TypeError("dist must be a floating-point (B, B) torch.Tensor from norank.distances.pairwise_distances.")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number; got {margin!r}.")
    idx = [torch.as_tensor(t, dtype=torch.long, device=dist.device) for t in (anchors, positives, negatives)]
    if any(t.ndim != 1 for t in idx) or not idx[0].shape == idx[1].shape == idx[2].shape:
        raise ValueError("anchors, positives and negatives must be 1-D index tensors of equal length; got shapes "
                         f"{[tuple(t.shape) for t in idx]}.")
    a, p, n = idx
    if a.numel() == 0:
        return dist.reshape(-1)[:0].sum()
    return torch.relu((dist[a, p] + margin) - dist[a, n]).mean()


def diversity_loss(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Mean squared off-diagonal correlation between embedding dimensions (decorrelation penalty).

    ``C`` is the (m, m) correlation matrix of the batch over its m dimensions and the loss is
    ``(1 / (m(m−1))) Σ_{i≠j} C_ij²``: 0 when dimensions are uncorrelated, 1 when the batch has collapsed
    onto a line. ``eps`` in the variances keeps constant dimensions at correlation 0 instead of NaN.
    """
    _check_batch("z", z)
    m = z.shape[1]
    if m < 2:
        raise ValueError(f"diversity_loss needs at least 2 embedding dimensions; got {m}.")
    zc = z - z.mean(dim=0, keepdim=True)
    cov = zc.T @ zc / z.shape[0]
    std = torch.sqrt(torch.diagonal(cov) + eps)
    corr = cov / (std[:, None] * std[None, :])
    off = ~torch.eye(m, dtype=torch.bool, device=z.device)
    return (corr[off] ** 2).sum() / (m * (m - 1))


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020) uniformity: ``log mean_{i<j} exp(−t ‖z_i − z_j‖²)``, via logsumexp.

    Lower is more uniform on the sphere; the minimum for unit vectors is negative. logsumexp avoids the
    underflow of ``exp`` at large ``t`` or distances.
    """
    _check_batch("z", z)
    if not t > 0:
        raise ValueError(f"t must be > 0; got {t!r}.")
    d2 = pairwise_distances(z, squared=True)
    i, j = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return torch.logsumexp(-t * d2[i, j], dim=0) - math.log(i.numel())


def local_preservation_loss(z: torch.Tensor, x: torch.Tensor, n_neighbors: int = 5) -> torch.Tensor:
    """Keep input-space neighbours close in the embedding: a scale-free Laplacian-eigenmaps objective.

    The k nearest neighbours of each sample in input space (within the batch, Euclidean on ``x``, the
    preprocessed (B, d) inputs) form a kNN graph W; the loss is the Laplacian Eigenmaps / Locality
    Preserving Projections energy (Belkin & Niyogi 2003; He & Niyogi 2003), the mean of ``‖z_i − z_j‖²``
    over graph edges, divided by its mean over all pairs — the trace-ratio normalisation that makes
    shrinking the embedding useless. 1 means neighbours are no closer than random pairs; lower is better.
    ``n_neighbors`` is capped at B − 1.
    """
    _check_batch("z", z)
    _check_batch("x", x)
    if x.shape[0] != z.shape[0]:
        raise ValueError(f"x and z must have the same number of rows; got {x.shape[0]} and {z.shape[0]}.")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be an integer >= 1; got {n_neighbors!r}.")
    b = z.shape[0]
    k = min(n_neighbors, b - 1)
    with torch.no_grad():
        dx = pairwise_distances(x.detach().to(z.dtype), squared=True)
        dx.fill_diagonal_(math.inf)
        neighbours = dx.topk(k, dim=1, largest=False).indices
    dz = pairwise_distances(z, squared=True)
    near = dz.gather(1, neighbours).mean()
    everyone = dz.sum() / (b * (b - 1))
    return near / (everyone + EPS)


def global_preservation_loss(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``1 − Pearson r`` between the batch's pairwise input and embedding distances.

    The correlation of a Shepard diagram (input vs embedding distance over all pairs), a standard
    distance-preservation score for dimension reduction (e.g. Espadoto et al. 2019, "Toward a quantitative
    survey of dimension reduction techniques"). 0 when distances are perfectly linearly related, up to 2.
    Plain Euclidean distances on both sides; ``x`` is the preprocessed (B, d) input batch.
    """
    _check_batch("z", z)
    _check_batch("x", x)
    if x.shape[0] != z.shape[0]:
        raise ValueError(f"x and z must have the same number of rows; got {x.shape[0]} and {z.shape[0]}.")
    b = z.shape[0]
    i, j = torch.triu_indices(b, b, offset=1, device=z.device)
    with torch.no_grad():
        dx = pairwise_distances(x.detach().to(z.dtype), squared=False)[i, j]
    dz = pairwise_distances(z, squared=False)[i, j]
    dx = dx - dx.mean()
    dz = dz - dz.mean()
    r = (dx * dz).sum() / torch.sqrt((dx * dx).sum() * (dz * dz).sum() + EPS)
    return 1.0 - r


class ProxyAnchorLoss(nn.Module):
    """Proxy-Anchor loss (Kim et al., CVPR 2020): one learnable proxy per class, no mining needed.

    With cosine similarities ``s(z, p_c)`` between normalised embeddings and proxies,
    ``L = (1/|P+|) Σ_{c∈P+} log(1 + Σ_{z∈Z_c+} e^{−α(s−δ)}) + (1/C) Σ_c log(1 + Σ_{z∈Z_c−} e^{α(s+δ)})``,
    where P+ are the classes present in the batch. The same value as pytorch-metric-learning's
    ``ProxyAnchorLoss`` given the same proxies. Proxies start Kaiming-normal (fan-out), as in the paper's
    code, drawn from ``generator`` so runs are reproducible.

    Examples
    --------
    >>> loss_fn = ProxyAnchorLoss(10, 32, generator=torch.Generator().manual_seed(0))
    >>> loss = loss_fn(torch.randn(8, 32), torch.arange(8))
    """

    def __init__(self, n_classes: int, embedding_dim: int, margin: float = 0.1, alpha: float = 32.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        for name, value in (("n_classes", n_classes), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha!r}.")
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.margin = float(margin)
        self.alpha = float(alpha)
        proxies = torch.empty(n_classes, embedding_dim)
        nn.init.kaiming_normal_(proxies, mode="fan_out", generator=generator)
        self.proxies = nn.Parameter(proxies)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_batch("z", z, min_rows=1)
        if z.shape[1] != self.embedding_dim:
            raise ValueError(f"z has {z.shape[1]} dimensions but the proxies have {self.embedding_dim}.")
        labels = torch.as_tensor(labels, device=z.device)
        if labels.is_floating_point() or labels.ndim != 1 or labels.shape[0] != z.shape[0]:
            raise ValueError(f"labels must be a 1-D integer tensor of length {z.shape[0]}.")
        labels = labels.long()
        if labels.min() < 0 or labels.max() >= self.n_classes:
            raise ValueError(f"labels must lie in [0, {self.n_classes}); got range "
                             f"[{int(labels.min())}, {int(labels.max())}]. Remap them to 0..n_classes-1.")
        proxies = self.proxies.to(z.dtype)
        # α·cos as (C, B): α folded into the GEMM, one contiguous row per class for the reductions.
        scaled = (self.alpha * nn.functional.normalize(proxies, dim=1)) @ nn.functional.normalize(z, dim=1).T
        rows = torch.arange(len(labels), device=z.device)
        own = scaled[labels, rows]  # α·cos of each sample to its own proxy
        # Positives: one per sample, so only the classes present in the batch need a term.
        present, slot = torch.unique(labels, return_inverse=True)
        pos = torch.full((len(present), len(labels)), -math.inf, dtype=scaled.dtype, device=z.device)
        pos_term = _log1p_sum_exp(pos.index_put((slot, rows), self.alpha * self.margin - own))
        # Negatives: every class against every sample outside it. In place on the GEMM's result (its
        # backward reads only the inputs), saving a (C, B) copy; log(1 + Σ exp(s + αδ)) per class.
        neg = scaled.index_put_((labels, rows), torch.tensor(-math.inf, dtype=scaled.dtype, device=z.device))
        neg_term = _log1p_sum_exp(neg, shift=self.alpha * self.margin)
        return pos_term.sum() / len(present) + neg_term.sum() / self.n_classes


def _log1p_sum_exp(s: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """Per row, ``log(1 + Σ exp(s + shift))`` stably (entries of -inf drop out; a row of them gives 0)."""
    return torch.logaddexp(torch.logsumexp(s, dim=1) + shift, torch.zeros((), dtype=s.dtype, device=s.device))
