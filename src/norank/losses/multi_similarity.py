"""Multi-Similarity loss and miner (Wang et al., CVPR 2019): pair weighting by self, positive and
negative similarities, and the miner that keeps the informative pairs."""

from __future__ import annotations

import math

import torch

from norank.losses._common import (
    BatchLoss,
    IndexTuple,
    check_real,
    cosine,
    log1p_sum_exp,
    pair_masks,
)
from norank.mining import BatchMiner

__all__ = ["MultiSimilarityLoss", "MultiSimilarityMiner"]


class MultiSimilarityMiner(BatchMiner):
    """Pairs worth weighting (the paper's mining step): ``miner(embeddings, labels) -> (a1, p, a2, n)``.

    On cosine similarities ``s``, a positive pair ``(a, p)`` is kept when ``s_ap − ε < max_n s_an`` (it
    is less similar than the anchor's hardest negative, up to ``ε``), a negative pair ``(a, n)`` when
    ``s_an + ε > min_p s_ap``. Returns PML's pair tuple of LongTensors, the same pairs as
    pytorch-metric-learning's ``MultiSimilarityMiner(epsilon)`` (in index order, where PML's follow the
    sorted similarities). A loss holding the similarity matrix calls :meth:`masks` (no index lists) or
    :meth:`mine_matrix`, both unchecked.
    """

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = check_real("epsilon", epsilon)

    def __repr__(self) -> str:
        return f"MultiSimilarityMiner(epsilon={self.epsilon!r})"

    def matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        return cosine(embeddings, embeddings)

    @torch.no_grad()
    def mine_matrix(self, matrix: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mine on a (B, B) cosine-similarity matrix, unchecked: the per-step path of a loss."""
        pos, neg = self.masks(matrix, labels)
        return (*torch.nonzero(pos, as_tuple=True), *torch.nonzero(neg, as_tuple=True))

    @torch.no_grad()
    def masks(self, sim: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept positive and negative pairs as (B, B) boolean masks (no index lists, no host sync)."""
        pos, neg = pair_masks(labels)
        hardest_neg = sim.masked_fill(~neg, -math.inf).amax(dim=1, keepdim=True)
        easiest_pos = sim.masked_fill(~pos, math.inf).amin(dim=1, keepdim=True)
        return pos & (sim - self.epsilon < hardest_neg), neg & (sim + self.epsilon > easiest_pos)


class MultiSimilarityLoss(BatchLoss):
    """Multi-Similarity loss on cosine similarities ``s``, per anchor ``i``, averaged over the batch:

    ``(1/α) log(1 + Σ_{p∈P(i)} e^{−α(s_ip − λ)}) + (1/β) log(1 + Σ_{n∈N(i)} e^{β(s_in − λ)})``,

    ``λ`` = ``base``. ``P(i)`` and ``N(i)`` are every positive and negative pair of the batch, the pairs
    of a given ``indices_tuple`` (PML's triplets or pairs), or, with ``epsilon`` set, the pairs the
    :class:`MultiSimilarityMiner` keeps (the paper's full method, mined on this loss's own similarity
    matrix). An anchor without pairs scores 0. The same value as pytorch-metric-learning's
    ``MultiSimilarityLoss`` (which instead returns 0 when every index list holds at most one entry).
    """

    name = "multi_similarity"
    repr_fields = ("alpha", "beta", "base", "epsilon")

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, epsilon: float | None = None):
        super().__init__()
        self.alpha = check_real("alpha", alpha, positive=True)
        self.beta = check_real("beta", beta, positive=True)
        self.base = check_real("base", base)
        self.epsilon = None if epsilon is None else check_real("epsilon", epsilon)
        self.miner = None if epsilon is None else MultiSimilarityMiner(epsilon)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        sim = cosine(embeddings, embeddings)
        if indices_tuple is None and self.miner is not None:
            pos, neg = self.miner.masks(sim.detach(), labels)
        else:
            pos, neg = pair_masks(labels, indices_tuple)
        pos_term = log1p_sum_exp(self.alpha * (self.base - sim), pos) / self.alpha
        neg_term = log1p_sum_exp(self.beta * (sim - self.base), neg) / self.beta
        return (pos_term + neg_term).mean()
