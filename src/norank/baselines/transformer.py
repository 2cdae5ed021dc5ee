"""The transformer baseline: the norank estimator itself with a transformer encoder.

It is trained with norank's objective (mined triplets, same preprocessing and optimiser), so comparing it
with norank isolates the encoder: image rows (or patches of the feature vector) become tokens of a small
transformer instead of one MLP input. Its training settings are its own (`SETTINGS`), not norank's
defaults, which were chosen for the MLP. Held-out samples are embedded by the trained encoder.
"""

from __future__ import annotations

import numpy as np

from norank.baselines._base import Baseline, seed_of

# The baseline's own NoRankEmbedder keywords (every other keyword at the estimator's default), chosen on
# tuning seeds 100-102 by benchmarks/study_transformer.py over six datasets (docs/baselines.md): with
# norank's 30 epochs the transformer was undertrained; 100 epochs raised its held-out 1-NN accuracy / ARI
# by +0.020 / +0.052 on average (Olivetti +0.044 / +0.196, LFW +0.043 / +0.094), the most of the
# variants tried; a smaller learning rate lowered both, a larger one lowered LFW and ABIDE.
SETTINGS: dict = {"epochs": 100}


class TransformerBaseline(Baseline):
    """`NoRankEmbedder(encoder="transformer", random_state=random_state, **params)`.

    Parameters
    ----------
    params : dict or None, default=None
        `NoRankEmbedder` keywords (for example `epochs`); None takes the baseline's own `SETTINGS`.
        "encoder" and "random_state" are set here.
    random_state : int, default=0

    Attributes
    ----------
    embedder_ : the fitted `norank.NoRankEmbedder`.
    """

    name = "transformer"
    supervised = True

    def __init__(self, params=None, random_state=0):
        self.params = params
        self.random_state = random_state

    def _fit(self, X, y):
        from norank.estimator import NoRankEmbedder

        params = dict(SETTINGS if self.params is None else self.params)
        taken = sorted({"encoder", "random_state"} & set(params))
        if taken:
            raise ValueError(
                f"params may not set {taken}: the transformer baseline fixes them; pass random_state directly."
            )
        self.embedder_ = NoRankEmbedder(encoder="transformer", random_state=seed_of(self.random_state), **params)
        self.embedder_.fit(X, y)
        self.n_components_ = int(self.embedder_.embedding_dim)

    def _transform(self, X):
        return np.asarray(self.embedder_.transform(X))
