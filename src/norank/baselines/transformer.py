"""The transformer baseline: the norank estimator itself with a transformer encoder.

It is trained with the same objective as norank (mined triplets plus the diversity and uniformity
penalties, same preprocessing and optimiser), so comparing it with norank isolates the encoder: image
rows (or patches of the feature vector) become tokens of a small transformer instead of one MLP input.
Held-out samples are embedded by the trained encoder, like norank's.
"""

from __future__ import annotations

import numpy as np

from norank.baselines._base import Baseline, seed_of


class TransformerBaseline(Baseline):
    """`NoRankEmbedder(encoder="transformer", random_state=random_state, **params)`.

    Parameters
    ----------
    params : dict or None, default=None
        Further `NoRankEmbedder` keywords (for example `epochs`); "encoder" and "random_state" are set here.
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

        params = dict(self.params or {})
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
