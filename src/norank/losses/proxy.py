"""Losses with one learnable vector per class: Proxy-Anchor and ArcFace.

Both score every sample against every class, so they need no mining and cost O(B·C·m) per batch; their
class vectors are ``nn.Parameter`` s that the optimiser trains with the encoder. ``lr_multiplier`` says
how much faster than the encoder the class vectors are meant to learn (the training core may read it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from norank.distances import safe_sqrt
from norank.losses._common import (
    BatchLoss,
    IndexTuple,
    check_class_range,
    check_positive_int,
    check_real,
    cosine,
    log1p_sum_exp,
    no_indices,
)

__all__ = ["ArcFaceLoss", "ProxyAnchorLoss"]

Seed = torch.Generator | None  # where the class vectors' initial values are drawn from (None: the global RNG)


class _ClassVectors(BatchLoss):
    """Shared checks of the losses with one learnable ``embedding_dim`` vector per class."""

    lr_multiplier = 1.0  # class vectors learn at the encoder's rate unless a loss says otherwise

    def __init__(self, n_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.n_classes = check_positive_int("n_classes", n_classes)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)

    def _draw(self, init: Callable[..., torch.Tensor], generator: Seed) -> nn.Parameter:
        """(n_classes, embedding_dim) initial vectors, drawn by ``init`` from ``generator``."""
        weights = torch.empty(self.n_classes, self.embedding_dim)
        init(weights, generator=generator)
        return nn.Parameter(weights)

    def _checked(
        self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None
    ) -> torch.Tensor:
        """Labels as int64 after the class-vector checks (the batch itself is checked by ``forward``)."""
        no_indices(type(self).__name__, indices_tuple)
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings have {embeddings.shape[1]} dimensions but the class vectors have "
                f"{self.embedding_dim}; build the loss with embedding_dim={embeddings.shape[1]}."
            )
        check_class_range(labels, self.n_classes)
        return labels.long()


class ProxyAnchorLoss(_ClassVectors):
    """Proxy-Anchor loss (Kim et al., CVPR 2020): one learnable proxy per class, no mining needed.

    With cosine similarities ``s(z, p_c)`` between normalised embeddings and proxies,
    ``L = (1/|P+|) Σ_{c∈P+} log(1 + Σ_{z∈Z_c+} e^{−α(s−δ)}) + (1/C) Σ_c log(1 + Σ_{z∈Z_c−} e^{α(s+δ)})``,
    where P+ are the classes present in the batch. The same value as pytorch-metric-learning's
    ``ProxyAnchorLoss`` given the same proxies. Proxies start Kaiming-normal (fan-out), as in the paper's
    code, drawn from ``generator`` so runs are reproducible; the paper trains them 100× faster than the
    network (``lr_multiplier``). A batch of one class has no negatives: that class's term is 0.

    Examples
    --------
    >>> loss_fn = ProxyAnchorLoss(10, 32, generator=torch.Generator().manual_seed(0))
    >>> loss = loss_fn(torch.randn(8, 32), torch.arange(8))
    """

    name = "proxy_anchor"
    lr_multiplier = 100.0

    def __init__(
        self, n_classes: int, embedding_dim: int, margin: float = 0.1, alpha: float = 32.0, generator: Seed = None
    ) -> None:
        super().__init__(n_classes, embedding_dim)
        self.margin = check_real("margin", margin)
        self.alpha = check_real("alpha", alpha, positive=True)
        self.proxies = self._draw(partial(nn.init.kaiming_normal_, mode="fan_out"), generator)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        labels = self._checked(embeddings, labels, indices_tuple)
        z = embeddings
        # α·cos as (C, B): α folded into the GEMM, one contiguous row per class for the reductions.
        proxies = nn.functional.normalize(self.proxies.to(z.dtype), dim=1)
        scaled = (self.alpha * proxies) @ nn.functional.normalize(z, dim=1).T
        rows = torch.arange(len(labels), device=z.device)
        own = scaled[labels, rows]  # α·cos of each sample to its own proxy
        # Positives: one per sample, so only the classes present in the batch need a term.
        present, slot = torch.unique(labels, return_inverse=True)
        pos = torch.full((len(present), len(labels)), -math.inf, dtype=scaled.dtype, device=z.device)
        pos_term = log1p_sum_exp(pos.index_put((slot, rows), self.alpha * self.margin - own))
        # Negatives: every class against every sample outside it. In place on the GEMM's result (its
        # backward reads only the inputs), saving a (C, B) copy; log(1 + Σ exp(s + αδ)) per class.
        neg = scaled.index_put_((labels, rows), torch.tensor(-math.inf, dtype=scaled.dtype, device=z.device))
        neg_term = log1p_sum_exp(neg, shift=self.alpha * self.margin)
        return pos_term.sum() / len(present) + neg_term.sum() / self.n_classes


class ArcFaceLoss(_ClassVectors):
    """ArcFace, additive angular margin (Deng et al., CVPR 2019): softmax over class weights.

    With ``θ`` the angle between a normalised embedding and its class's normalised weight, the target
    logit ``cos θ`` becomes ``cos(θ + m)`` (``m`` = ``margin_degrees`` in radians) while ``θ + m <= π``,
    and ``cos θ − m·sin m`` beyond, which keeps it decreasing in ``θ``; every logit is multiplied by
    ``scale`` and the loss is the mean cross-entropy over the batch. The same value as
    pytorch-metric-learning's ``ArcFaceLoss`` given the same weights (theirs are the transpose).
    ``cos(θ + m)`` is computed as ``cos θ·cos m − sin θ·sin m`` with a square root whose gradient is
    kept finite at ``|cos θ| = 1``, where ``acos`` would give an infinite one. Weights start standard
    normal, drawn from ``generator``.
    """

    name = "arcface"

    def __init__(
        self,
        n_classes: int,
        embedding_dim: int,
        margin_degrees: float = 28.6,
        scale: float = 64.0,
        generator: Seed = None,
    ) -> None:
        super().__init__(n_classes, embedding_dim)
        self.margin_degrees = check_real("margin_degrees", margin_degrees)
        if not 0 <= self.margin_degrees < 180:
            raise ValueError(f"margin_degrees must lie in [0, 180); got {margin_degrees!r}.")
        self.scale = check_real("scale", scale, positive=True)
        self.weight = self._draw(nn.init.normal_, generator)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        labels = self._checked(embeddings, labels, indices_tuple)
        m = math.radians(self.margin_degrees)
        cos = cosine(embeddings, self.weight.to(embeddings.dtype))  # (B, C)
        c = cos.gather(1, labels[:, None]).squeeze(1).clamp(-1.0, 1.0)
        sin = safe_sqrt(1.0 - c * c)  # sin θ, θ in [0, π]
        target = torch.where(c >= -math.cos(m), c * math.cos(m) - sin * math.sin(m), c - m * math.sin(m))
        logits = cos.scatter(1, labels[:, None], target[:, None])
        return nn.functional.cross_entropy(self.scale * logits, labels)
