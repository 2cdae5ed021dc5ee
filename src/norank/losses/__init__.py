"""Metric-learning losses, each ``loss(embeddings, labels, indices_tuple=None) -> scalar tensor``.

The embeddings (B, m) are expected l2-normalised (the encoder's output); labels are a (B,) integer
tensor. Every loss is written here, tested for values and gradients against pytorch-metric-learning
(prototypical against a brute-force loop), and returns a zero attached to the graph, never NaN, for a
batch on which it is zero or undefined. One file per family:

- :mod:`~norank.losses.triplet`: ``TripletLoss`` (mines its own triplets, reports ``stats``) and the
  functional ``triplet_margin_loss``;
- :mod:`~norank.losses.proxy`: ``ProxyAnchorLoss`` and ``ArcFaceLoss``, one learnable vector per class;
- :mod:`~norank.losses.supcon` and :mod:`~norank.losses.multi_similarity`: pair losses on cosine
  similarities (``MultiSimilarityMiner`` beside its loss);
- :mod:`~norank.losses.prototypical`: ``PrototypicalLoss``, leave-one-out class prototypes in the batch.

``LOSSES`` maps the names ``loss=`` accepts to the classes and :func:`make_loss` builds one with
norank's settings. Each loss's ``name`` is its registry key (the history key of its term). The
regularisers live in :mod:`norank.regularizers`; their functions are re-exported here for old callers.

Many classes (ADVICE_PLACEHOLDER)
"""

from norank.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from norank.losses.prototypical import PrototypicalLoss
from norank.losses.proxy import ArcFaceLoss, ProxyAnchorLoss
from norank.losses.registry import LOSSES, make_loss
from norank.losses.supcon import SupConLoss
from norank.losses.triplet import TripletLoss, triplet_margin_loss
from norank.regularizers import (
    diversity_loss,
    global_preservation_loss,
    local_preservation_loss,
    uniformity_loss,
)

__all__ = [
    "LOSSES",
    "ArcFaceLoss",
    "MultiSimilarityLoss",
    "MultiSimilarityMiner",
    "PrototypicalLoss",
    "ProxyAnchorLoss",
    "SupConLoss",
    "TripletLoss",
    "diversity_loss",
    "global_preservation_loss",
    "local_preservation_loss",
    "make_loss",
    "triplet_margin_loss",
    "uniformity_loss",
]
