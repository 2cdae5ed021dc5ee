"""Linear baselines: raw features, PCA, and the supervised PCA→LDA and PCA→NCA pipelines.

LDA and NCA are the supervised baselines a label-trained embedding has to beat, so their PCA front end is
not fixed by hand: its size is chosen by an inner stratified cross-validation on the training split
(1-NN accuracy in the embedding, the held-out protocol's own score), over `pca_grid` capped by what the
smallest inner training fold can support (n_fold − n_classes, beyond which the within-class scatter is
singular and LDA overfits). For NCA the same cross-validation also decides whether the PCA scores are
whitened.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from norank.baselines._base import VectorBaseline, check_int, seed_of

PCA_GRID = (20, 50, 100, 200)


def scaled_pca(n_components: int, random_state: int = 0, whiten: bool = False) -> Pipeline:
    """Per-feature standardisation (training mean / std) then PCA with an exact (LAPACK) SVD."""
    pca = PCA(n_components=n_components, whiten=whiten, svd_solver="full", random_state=random_state)
    return Pipeline([("scale", StandardScaler()), ("pca", pca)])


def pca_candidates(n_fit: int, n_features: int, n_classes: int, grid=PCA_GRID, rank: int | None = None) -> list[int]:
    """The grid capped by what `n_fit` training samples of `n_classes` classes support, and by the
    numerical `rank` of the standardised data when given."""
    cap = max(1, min(n_fit - n_classes, n_fit - 1, n_features, n_features if rank is None else rank))
    return sorted({max(1, min(int(g), cap)) for g in grid})


def standardised_rank(F) -> int:
    """Numerical rank (numpy's default tolerance) of F after per-feature standardisation.

    PCA components beyond it are rounding noise; LDA and NCA rescale them by their near-zero variance, so
    a held-out sample with any weight there lands arbitrarily far away (a digits test sample reached norm
    4e14, which sent k-means' ARI to 0)."""
    return int(np.linalg.matrix_rank(StandardScaler().fit_transform(F)))


def select_front(F, y, head, grid=PCA_GRID, whiten=(False,), cv: int = 3, random_state: int = 0):
    """((size, whiten) with the best inner 1-NN accuracy, {(size, whiten): accuracy}) for scaled PCA
    followed by `head`.

    One PCA per fold is fitted at the largest candidate size and sliced: with an exact SVD the first c
    components are those of PCA(n_components=c), and whitening divides each by the square root of its
    variance, so each candidate is scored as its own pipeline would be. Ties go to the smaller size, then
    to no whitening. With fewer than 2 samples in some class no fold split exists: the largest size for
    the whole training set and the first whitening option are used, with no scores.
    """
    n_classes = len(np.unique(y))
    n_splits = min(cv, int(np.bincount(y).min()))
    if n_splits < 2:
        return (pca_candidates(len(F), F.shape[1], n_classes, grid, standardised_rank(F))[-1], whiten[0]), {}
    folds = list(StratifiedKFold(n_splits, shuffle=True, random_state=random_state).split(F, y))
    rank = min(standardised_rank(F[tr]) for tr, _ in folds)  # every fold supports it; the full set too
    sizes = pca_candidates(min(len(tr) for tr, _ in folds), F.shape[1], n_classes, grid, rank)
    options = [(c, w) for c in sizes for w in whiten]
    correct = dict.fromkeys(options, 0)
    for tr, va in folds:
        front = scaled_pca(sizes[-1], random_state).fit(F[tr])
        scale = np.sqrt(front.named_steps["pca"].explained_variance_)
        P_tr, P_va = front.transform(F[tr]), front.transform(F[va])
        for c, w in options:
            A, B = (P_tr[:, :c] / scale[:c], P_va[:, :c] / scale[:c]) if w else (P_tr[:, :c], P_va[:, :c])
            model = clone(head).fit(A, y[tr])
            knn = KNeighborsClassifier(n_neighbors=1).fit(model.transform(A), y[tr])
            correct[c, w] += int((knn.predict(model.transform(B)) == y[va]).sum())
    scores = {option: correct[option] / len(F) for option in options}
    best = max(options, key=lambda o: (scores[o], -o[0], -whiten.index(o[1])))
    return best, scores


class RawBaseline(VectorBaseline):
    """The input itself: each sample's values as one row (no scaling), the reference every method is
    compared against. Symmetric matrices keep their strict upper triangle.

    Examples
    --------
    >>> import numpy as np
    >>> RawBaseline().fit(np.ones((3, 2, 2))).transform(np.ones((1, 2, 2))).shape
    (1, 4)
    """

    name = "raw"

    def __init__(self, random_state=0):
        self.random_state = random_state

    def _fit_rows(self, F, y):
        self.n_components_ = F.shape[1]

    def _transform_rows(self, F):
        return F


class PCABaseline(VectorBaseline):
    """Per-feature standardised PCA with `n_components` (default 50) components, capped by the number of
    training samples and features. Held-out samples use the training mean, std and components.

    Parameters
    ----------
    n_components : int, default=50
    random_state : int, default=0
    """

    name = "pca"

    def __init__(self, n_components=50, random_state=0):
        self.n_components = n_components
        self.random_state = random_state

    def _fit_rows(self, F, y):
        wanted = check_int(self.n_components, "n_components")
        self.n_components_ = min(wanted, len(F), F.shape[1])
        self.pipeline_ = scaled_pca(self.n_components_, seed_of(self.random_state)).fit(F)

    def _transform_rows(self, F):
        return self.pipeline_.transform(F)


class _SupervisedPCA(VectorBaseline):
    """Scaled PCA, its size chosen by inner cross-validation, followed by a supervised linear map."""

    supervised = True
    whiten_options: tuple[bool, ...] = (False,)

    def _head(self):  # pragma: no cover - abstract
        """The supervised map; its output size follows its input (n_components=None)."""
        raise NotImplementedError

    def _fit_rows(self, F, y):
        cv = check_int(self.cv, "cv", minimum=2)
        if np.ndim(self.pca_grid) != 1 or len(self.pca_grid) == 0:
            raise ValueError(f"pca_grid must be a non-empty list of positive integers, got {self.pca_grid!r}.")
        for size in self.pca_grid:
            check_int(size, "every pca_grid entry")
        seed = seed_of(self.random_state)
        (self.n_pca_, self.whiten_), self.cv_scores_ = select_front(
            F, y, self._head(), self.pca_grid, self.whiten_options, cv, seed
        )
        front = scaled_pca(self.n_pca_, seed, self.whiten_)
        self.pipeline_ = Pipeline(front.steps + [("head", self._head())]).fit(F, y)
        self.n_components_ = self.pipeline_.transform(F[:1]).shape[1]

    def _transform_rows(self, F):
        return self.pipeline_.transform(F)


class LDABaseline(_SupervisedPCA):
    """PCA→LDA (Fisherfaces): standardise, PCA to a cross-validated size, then LDA to n_classes − 1
    dimensions (1 for two classes). Held-out samples go through the fitted pipeline. Whitening is not
    tried: LDA is invariant to it.

    Parameters
    ----------
    pca_grid : tuple of int, default=(20, 50, 100, 200)
        PCA sizes tried by the inner cross-validation (capped by n_fold − n_classes).
    cv : int, default=3
        Inner stratified folds (fewer when a class has fewer training samples).
    random_state : int, default=0
        Seeds the fold split.
    """

    name = "lda"

    def __init__(self, pca_grid=PCA_GRID, cv=3, random_state=0):
        self.pca_grid = pca_grid
        self.cv = cv
        self.random_state = random_state

    def _head(self):
        return LinearDiscriminantAnalysis(solver="svd")


class NCABaseline(_SupervisedPCA):
    """PCA→NCA: standardise, PCA to a cross-validated size with or without whitening (also chosen by the
    inner cross-validation), then scikit-learn's Neighbourhood Components Analysis (full-rank linear map,
    `init="auto"`, L-BFGS for at most `max_iter` iterations). Held-out samples go through the fitted
    pipeline.

    NCA's soft neighbours are exp(−squared distance): unwhitened PCA scores of thousands of standardised
    features lie so far apart that the assignment is already hard and NCA barely moves (LFW held-out 1-NN
    0.57), while whitened scores let it learn (0.78); on Olivetti unwhitened scores are as good or better.

    Parameters
    ----------
    pca_grid : tuple of int, default=(20, 50, 100, 200)
    cv : int, default=3
    max_iter : int, default=50
    random_state : int, default=0
        Seeds the fold split and NCA's initialisation.
    """

    name = "nca"
    whiten_options = (False, True)

    def __init__(self, pca_grid=PCA_GRID, cv=3, max_iter=50, random_state=0):
        self.pca_grid = pca_grid
        self.cv = cv
        self.max_iter = max_iter
        self.random_state = random_state

    def _head(self):
        return NeighborhoodComponentsAnalysis(
            init="auto",
            max_iter=check_int(self.max_iter, "max_iter"),
            random_state=seed_of(self.random_state),
        )
