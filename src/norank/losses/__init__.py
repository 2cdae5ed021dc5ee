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

Which loss for many classes: keep ``"triplet"`` (the default) or take ``"supcon"``; avoid the
class-vector losses. Measured by ``benchmarks/bench_losses.py`` (10,000 synthetic classes, 50,000
training samples, batches of 64 classes x 4, the same MLP, Adam and 5 epochs for every loss, one CPU
thread): the in-batch losses cost 0.8-1.2 CPU seconds per epoch, since their work grows with the batch and
not with the number of classes, and reached held-out precision@1 1.000 (triplet), 0.9996 (supcon), 0.998
(multi_similarity) and 0.983 (prototypical); ``"proxy_anchor"`` and ``"arcface"`` score every sample
against all 10,000 class vectors at every step and cost 5.9 and 6.9 s per epoch (5-6x the triplet loss)
for 0.986 and 0.937 (ArcFace's class weights trained at the encoder's learning rate, untuned). One seed
on a shared machine: triplet, supcon and multi_similarity lie within 0.002 of each other.
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
