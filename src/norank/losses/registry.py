"""Loss names and how norank builds each one from its settings."""

from __future__ import annotations

import torch

from norank.losses.multi_similarity import MultiSimilarityLoss
from norank.losses.prototypical import PrototypicalLoss
from norank.losses.proxy import ArcFaceLoss, ProxyAnchorLoss
from norank.losses.supcon import SupConLoss
from norank.losses.triplet import TripletLoss

__all__ = ["LOSSES", "make_loss"]

# Name -> class: the names `loss=` accepts.
LOSSES = {
    "triplet": TripletLoss,
    "proxy_anchor": ProxyAnchorLoss,
    "supcon": SupConLoss,
    "multi_similarity": MultiSimilarityLoss,
    "arcface": ArcFaceLoss,
    "prototypical": PrototypicalLoss,
}

# The Multi-Similarity paper's mining threshold; make_loss builds the loss with its miner on.
MS_EPSILON = 0.1


def make_loss(
    name: str,
    *,
    n_classes: int | None = None,
    embedding_dim: int | None = None,
    margin: float = 2.0,
    distance: str = "euclidean",
    mining: str = "semihard",
    generator: torch.Generator | None = None,
) -> torch.nn.Module:
    """Build the loss called ``name`` (a key of :data:`LOSSES`) with norank's settings.

    Which arguments each name reads (the others are ignored, so a caller can always pass all of them):

    - ``"triplet"``: ``margin``, ``distance``, ``mining`` -> ``TripletLoss(margin, distance, mining)``.
    - ``"proxy_anchor"``: ``n_classes``, ``embedding_dim``, ``generator`` -> ``ProxyAnchorLoss`` with the
      paper's margin 0.1 and α 32.
    - ``"arcface"``: ``n_classes``, ``embedding_dim``, ``generator`` -> ``ArcFaceLoss`` with margin 28.6°
      and scale 64.
    - ``"supcon"``: none -> ``SupConLoss(temperature=0.1)``.
    - ``"multi_similarity"``: none -> ``MultiSimilarityLoss(2, 50, 0.5, epsilon=0.1)``, the paper's
      weighting with its mining.
    - ``"prototypical"``: none -> ``PrototypicalLoss()``.
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(map(repr, LOSSES))}.")
    if name == "triplet":
        return TripletLoss(margin=margin, distance=distance, mining=mining)
    if name in ("proxy_anchor", "arcface"):
        if n_classes is None or embedding_dim is None:
            raise ValueError(f"loss {name!r} learns one vector per class: pass n_classes and embedding_dim.")
        return LOSSES[name](n_classes, embedding_dim, generator=generator)
    if name == "multi_similarity":
        return MultiSimilarityLoss(epsilon=MS_EPSILON)
    return LOSSES[name]()
