"""Neighbour-graph embeddings: t-SNE, UMAP and supervised UMAP.

Both sit on the same front end as the `pca` baseline (per-feature standardisation, 50 PCA components,
fitted on the training samples), which is the usual practice and keeps neighbour search cheap.

t-SNE (scikit-learn) has no map for new samples, and refitting on train + test would let the test
samples shape the embedding. Held-out samples are therefore placed by a distance-weighted k-nearest-
neighbour regression of the training embedding in the PCA space, fitted on the training samples only;
a training sample is its own nearest neighbour at distance 0, so `transform(X_train)` gives back the
t-SNE embedding itself. UMAP has its own out-of-sample `transform`, which is used as it is.

t-SNE's gradient runs on one OpenMP thread: on a shared 2-core machine two threads were about 3x slower
(900 samples: 7 s of CPU on one thread, 22 s on two), and the result does not depend on the count.

UMAP's numba code starts numba's OpenMP thread pool, which sets the OpenMP thread count torch shares to
every core; torch's count is put back afterwards. Left changed, it made later norank fits in the same
process run on another thread count, so their numbers differed from a fresh process's (ABIDE 1-NN
0.657 against 0.641 on one split) and parallel experiment runs oversubscribed the cores.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from sklearn.manifold import TSNE
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from norank.baselines._base import VectorBaseline, check_int, seed_of, store_params
from norank.baselines.linear import scaled_pca


class _ManifoldBase(VectorBaseline):
    def _front(self, F):
        wanted = check_int(self.n_pca, "n_pca")
        self.front_ = scaled_pca(min(wanted, len(F), F.shape[1]), seed_of(self.random_state)).fit(F)
        return self.front_.transform(F)

    def fit_transform(self, X, y=None, **fit_params):
        """The embedding of the training samples as fitted (for UMAP, `embedding_` rather than a
        `transform` of the same samples, as umap-learn does)."""
        return np.ascontiguousarray(self.fit(X, y).embedding_, dtype=np.float32)


class TSNEBaseline(_ManifoldBase):
    """t-SNE (Barnes–Hut, scikit-learn) of the training samples; held-out samples by k-NN regression.

    Parameters
    ----------
    n_components : int, default=2
        Barnes–Hut t-SNE supports at most 3.
    perplexity : float, default=30.0
        Capped at (n_train − 1) / 3 for small training sets.
    n_neighbors : int, default=10
        Neighbours (distance-weighted) used to place a new sample.
    n_pca : int, default=50
    random_state : int, default=0
    """

    name = "tsne"

    def __init__(self, n_components=2, perplexity=30.0, n_neighbors=10, n_pca=50, random_state=0):
        store_params(self, locals())

    def _fit_rows(self, F, y):
        n_components = check_int(self.n_components, "n_components")
        if n_components > 3:
            raise ValueError(f"t-SNE (Barnes–Hut) supports n_components <= 3, got {n_components}.")
        if len(F) < 4:
            raise ValueError(f"t-SNE needs at least 4 training samples, got {len(F)}.")
        P = self._front(F)
        self.perplexity_ = float(min(self.perplexity, (len(F) - 1) / 3.0))
        tsne = TSNE(
            n_components=n_components,
            perplexity=self.perplexity_,
            init="pca",
            random_state=seed_of(self.random_state),
        )
        with threadpool_limits(1, user_api="openmp"):
            self.embedding_ = tsne.fit_transform(P).astype(np.float32)
        k = min(check_int(self.n_neighbors, "n_neighbors"), len(F))
        self.regressor_ = KNeighborsRegressor(n_neighbors=k, weights="distance").fit(P, self.embedding_)

    def _transform_rows(self, F):
        return self.regressor_.predict(self.front_.transform(F))


@contextmanager
def keep_torch_threads():
    """Restore torch's intra-op thread count on exit, whatever the code inside did to OpenMP."""
    import torch

    n_threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


class UMAPBaseline(_ManifoldBase):
    """UMAP (umap-learn) with `n_components`=10 (more than a plot's 2, for metrics); held-out samples by
    umap-learn's `transform`.

    Parameters
    ----------
    n_components : int, default=10
    n_neighbors : int, default=15
        Capped at n_train − 1.
    min_dist : float, default=0.1
    n_pca : int, default=50
    random_state : int, default=0
        Seeds UMAP (which then runs single-threaded, so results repeat).
    """

    name = "umap"

    def __init__(self, n_components=10, n_neighbors=15, min_dist=0.1, n_pca=50, random_state=0):
        store_params(self, locals())

    def _fit_rows(self, F, y):
        import umap  # optional dependency (the `experiments` extra); imported only when used

        if len(F) < 3:
            raise ValueError(f"UMAP needs at least 3 training samples, got {len(F)}.")
        P = self._front(F)
        self.umap_ = umap.UMAP(
            n_components=check_int(self.n_components, "n_components"),
            n_neighbors=min(check_int(self.n_neighbors, "n_neighbors", minimum=2), len(F) - 1),
            min_dist=self.min_dist,
            random_state=seed_of(self.random_state),
            n_jobs=1,
        )
        with keep_torch_threads():
            self.umap_.fit(P, y=y if self.supervised else None)
        self.embedding_ = np.asarray(self.umap_.embedding_, dtype=np.float32)

    def _transform_rows(self, F):
        with keep_torch_threads():
            return self.umap_.transform(self.front_.transform(F))


class SupervisedUMAPBaseline(UMAPBaseline):
    """UMAP fitted with the training labels (umap-learn's supervised mode, categorical target metric);
    held-out samples by `transform`, which uses no labels. Parameters as for `UMAPBaseline`."""

    name = "umap_supervised"
    supervised = True
