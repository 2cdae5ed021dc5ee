"""Baselines for the norank comparison, one adapter shape for all.

Every adapter has `fit(X_train, y_train=None) -> self` and `transform(X) -> float32 (n, m)`, and the
attributes `name` and `supervised`. Each fits its own preprocessing on the training samples only, and
`transform` embeds new samples, so every method can be scored on held-out data.

>>> from norank.baselines import make_baseline
>>> model = make_baseline("pca", random_state=0)
>>> model.supervised
False
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial

from norank.baselines import transformer as _transformer
from norank.baselines._base import Baseline
from norank.baselines.connectome import TangentLogisticBaseline, TangentSVCBaseline
from norank.baselines.deep import DECBaseline, VAEBaseline
from norank.baselines.linear import LDABaseline, NCABaseline, PCABaseline, RawBaseline
from norank.baselines.manifold import SupervisedUMAPBaseline, TSNEBaseline, UMAPBaseline
from norank.baselines.tensor import CPBaseline, TSVDBaseline, TuckerBaseline
from norank.baselines.transformer import TransformerBaseline

BASELINES: dict[str, Callable[..., Baseline]] = {
    "raw": RawBaseline,
    "pca": PCABaseline,
    "tsne": TSNEBaseline,
    "umap": UMAPBaseline,
    "umap_supervised": SupervisedUMAPBaseline,
    "cp_r5": partial(CPBaseline, rank=5),
    "cp_r10": partial(CPBaseline, rank=10),
    "cp_r20": partial(CPBaseline, rank=20),
    "tucker_r5": partial(TuckerBaseline, rank=5),
    "tucker_r10": partial(TuckerBaseline, rank=10),
    "tucker_r20": partial(TuckerBaseline, rank=20),
    "tsvd": TSVDBaseline,
    "lda": LDABaseline,
    "nca": NCABaseline,
    "vae": VAEBaseline,
    "dec": DECBaseline,
    "transformer": TransformerBaseline,
    "tangent_logistic": TangentLogisticBaseline,
    "tangent_svc": TangentSVCBaseline,
}
SUPERVISED = ["umap_supervised", "lda", "nca", "transformer", "tangent_logistic", "tangent_svc"]
# Baselines defined only on stacks of symmetric positive-definite matrices (connectomes such as ABIDE);
# on other data they refuse with a ValueError.
SPD_ONLY = ["tangent_logistic", "tangent_svc"]
UNSUPERVISED = [name for name in BASELINES if name not in SUPERVISED]


def _factory_class(factory):
    return factory.func if isinstance(factory, partial) else factory


def make_baseline(name: str, random_state=0, **overrides):
    """A fresh, unfitted adapter for `name`, seeded with `random_state`.

    `overrides` are constructor keywords of the adapter (for example `n_components=20` for "pca"); for
    "transformer" they are `NoRankEmbedder` keywords (for example `epochs=5`) over its own settings.
    """
    if name not in BASELINES:
        raise ValueError(f"Unknown baseline {name!r}; use one of: {', '.join(BASELINES)}.")
    factory = BASELINES[name]
    cls = _factory_class(factory)
    if cls is TransformerBaseline and "params" not in overrides:
        params = {**_transformer.SETTINGS, **overrides} if overrides else None
        return TransformerBaseline(params=params, random_state=random_state)
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "random_state"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TypeError(
            f"Baseline {name!r} does not take {', '.join(unknown)}; its settings are: {', '.join(sorted(allowed))}."
        )
    return factory(random_state=random_state, **overrides)


__all__ = [
    "BASELINES",
    "SUPERVISED",
    "UNSUPERVISED",
    "SPD_ONLY",
    "make_baseline",
    "RawBaseline",
    "PCABaseline",
    "LDABaseline",
    "NCABaseline",
    "TSNEBaseline",
    "UMAPBaseline",
    "SupervisedUMAPBaseline",
    "CPBaseline",
    "TuckerBaseline",
    "TSVDBaseline",
    "VAEBaseline",
    "DECBaseline",
    "TransformerBaseline",
    "TangentLogisticBaseline",
    "TangentSVCBaseline",
]
