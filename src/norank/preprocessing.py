"""Tensor stack → feature vectors, fitted on training data only and stored with the model.

Each sample of shape (d1, ..., dk) becomes one row. Symmetric matrices (connectivity) keep only their
strict upper triangle, optionally Fisher z-transformed; rows may then be projected onto their
leading principal components (fitted on the training rows); finally they are normalised per sample
("patient-wise"), per feature (statistics of the training set), or not at all. "tangent" maps stacks of
SPD matrices to the tangent space at a training mean (norank.tangent), then standardises per feature.
"""

from __future__ import annotations

import numpy as np

from norank.tangent import (
    DEFAULT_METRIC,
    check_matrix_shape,
    check_metric,
    fit_reference,
    tangent_vectors,
)

NORMALIZATIONS = ("sample", "feature", "none", "tangent")
_EPS = 1e-8
_CHUNK_ROWS = 4096
IN_MEMORY_BYTES = 2 * 1024**3  # inputs up to this size are processed at once: PCA fits, training caches


def check_n_components(k) -> None:
    """Refuse a component count that is not a positive integer (None keeps every feature)."""
    if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1):
        raise ValueError(f"pca_components={k!r} must be a positive integer, or None to keep every feature.")


def looks_symmetric(X, n_check: int = 16) -> bool:
    """True when X is a stack of square matrices and its first samples are symmetric."""
    if len(getattr(X, "shape", ())) != 3 or X.shape[1] != X.shape[2] or X.shape[1] < 2:
        return False
    head = np.asarray(X[: min(n_check, len(X))], dtype=np.float64)
    return bool(np.allclose(head, head.transpose(0, 2, 1), rtol=1e-5, atol=1e-6))


class TensorPreprocessor:
    """Vectorise and normalise a stack of tensors.

    Parameters
    ----------
    normalization : {"sample", "feature", "none", "tangent"}
        "sample" z-scores each row by its own mean and std; "feature" z-scores each feature by the
        training mean and std; "none" leaves values as they are. "tangent" maps SPD matrices (n, R, R)
        to their tangent vectors at the `tangent_metric` mean of the training matrices (upper triangle
        with the diagonal, √2 off it), then z-scores each feature by training statistics: the log-mapped
        diagonal and off-diagonal entries differ in scale by orders of magnitude, and the encoder's
        initialisation and learning rate assume unit-scale inputs.
    symmetric : bool or "auto"
        Keep only the strict upper triangle of symmetric (n, R, R) input. "auto" checks the data.
    fisher_z : bool
        Apply artanh to the upper triangle (correlation matrices), clipping |r| to `fisher_clip`.
    n_components : int or None
        Project rows onto this many leading principal components of the training rows (scikit-learn's
        PCA; IncrementalPCA for stacks over 2 GiB) before normalising. None keeps every feature.
    tangent_metric : {"riemann", "logeuclid", "euclid"}
        Metric of the reference mean and logarithmic map for normalization="tangent".
    """

    def __init__(self, normalization="sample", symmetric="auto", fisher_z=False, fisher_clip=0.999, n_components=None,
                 tangent_metric=DEFAULT_METRIC):
        self.normalization = normalization
        self.symmetric = symmetric
        self.fisher_z = fisher_z
        self.fisher_clip = fisher_clip
        self.n_components = n_components
        self.tangent_metric = tangent_metric

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X) -> "TensorPreprocessor":
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization={self.normalization!r} is not supported; use one of {NORMALIZATIONS}."
            )
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        if self.symmetric == "auto":
            self.symmetric_ = looks_symmetric(X)
        else:
            self.symmetric_ = bool(self.symmetric)
            if self.symmetric_ and (len(self.input_shape_) != 2 or self.input_shape_[0] != self.input_shape_[1]):
                raise ValueError(
                    f"symmetric=True needs square matrices (n, R, R); got samples of shape {self.input_shape_}. "
                    "Pass symmetric=False for other tensors."
                )
        if self.fisher_z and not self.symmetric_:
            raise ValueError("fisher_z=True applies to symmetric correlation matrices; pass symmetric=True too.")
        if self.symmetric_:
            r = self.input_shape_[0]
            self.n_features_ = r * (r - 1) // 2
        else:
            self.n_features_ = int(np.prod(self.input_shape_))
        self.tangent_reference_ = None
        if self.normalization == "tangent":
            self._fit_tangent(X)
        self.pca_mean_ = self.pca_components_ = None
        if self.n_components is not None:
            self._fit_pca(X)
            self.n_features_ = int(self.n_components)
        self.mean_ = np.zeros(self.n_features_, np.float32)
        self.scale_ = np.ones(self.n_features_, np.float32)
        if self.normalization in ("feature", "tangent"):
            self._fit_feature_stats(X)
        return self

    def _fit_tangent(self, X) -> None:
        """Reference mean of the training matrices; features are the upper triangle with the diagonal."""
        r = check_matrix_shape(self.input_shape_)
        check_metric(self.tangent_metric)
        if self.fisher_z or self.symmetric is False:
            raise ValueError(
                "normalization='tangent' maps whole SPD matrices: leave fisher_z=False and symmetric='auto'."
            )
        self.symmetric_ = True
        self.n_features_ = r * (r + 1) // 2
        self.tangent_reference_ = fit_reference(X, self.tangent_metric)

    def _fit_pca(self, X) -> None:
        from sklearn.decomposition import PCA, IncrementalPCA

        k, n = self.n_components, len(X)
        check_n_components(k)
        if k > min(n, self.n_features_):
            raise ValueError(
                f"pca_components={k} exceeds what {n} training samples of {self.n_features_} features allow "
                f"(at most {min(n, self.n_features_)}); lower pca_components."
            )
        if n * self.n_features_ * 4 <= IN_MEMORY_BYTES:
            pca = PCA(int(k), random_state=0).fit(self._vectorise(np.asarray(X[:])))
        else:
            # Equal chunks of at least max(_CHUNK_ROWS, k) rows: IncrementalPCA needs k rows per chunk.
            n_chunks = max(1, n // max(_CHUNK_ROWS, int(k)))
            bounds = np.linspace(0, n, n_chunks + 1).astype(int)
            pca = IncrementalPCA(int(k))
            for start, stop in zip(bounds[:-1], bounds[1:]):
                pca.partial_fit(self._vectorise(np.asarray(X[start:stop])))
        self.pca_mean_ = pca.mean_.astype(np.float32)
        self.pca_components_ = np.ascontiguousarray(pca.components_.T, dtype=np.float32)  # (features, k)

    def _rows(self, X) -> np.ndarray:
        """Vectorised rows, projected onto the principal components when they were fitted."""
        rows = self._vectorise(X)
        if self.pca_components_ is not None:
            rows = (rows - self.pca_mean_) @ self.pca_components_
        return rows

    def _fit_feature_stats(self, X) -> None:
        # Streaming sums in float64, so memory-mapped stacks never load at once.
        total = np.zeros(self.n_features_, np.float64)
        total_sq = np.zeros(self.n_features_, np.float64)
        n = len(X)
        for start in range(0, n, _CHUNK_ROWS):
            rows = self._rows(np.asarray(X[start : start + _CHUNK_ROWS])).astype(np.float64)
            total += rows.sum(0)
            total_sq += (rows * rows).sum(0)
        mean = total / n
        var = np.maximum(total_sq / n - mean * mean, 0.0)
        std = np.sqrt(var)
        std[std < _EPS] = 1.0  # constant features stay constant (zero after centring)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = std.astype(np.float32)

    # -- transforming --------------------------------------------------------------------------------
    def _vectorise(self, X: np.ndarray) -> np.ndarray:
        if self.normalization == "tangent":
            return tangent_vectors(X, self.tangent_reference_, self.tangent_metric)  # float64, chunked
        X = np.asarray(X, dtype=np.float32)
        if self.symmetric_:
            r = self.input_shape_[0]
            iu = np.triu_indices(r, k=1)
            rows = X[:, iu[0], iu[1]]
            if self.fisher_z:
                rows = np.arctanh(np.clip(rows, -self.fisher_clip, self.fisher_clip))
            return np.ascontiguousarray(rows, dtype=np.float32)
        return X.reshape(len(X), -1)

    def transform(self, X) -> np.ndarray:
        """Rows of float32 features, a new array (the input is never modified)."""
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but the model was fitted on samples of shape "
                f"{self.input_shape_}; reshape the input to match the training data."
            )
        rows = self._rows(X)
        if self.normalization == "sample":
            # Centre into a new array, then scale it in place: half the passes and temporaries of
            # (rows - mean) / rows.std(1), the largest cost of transform after the forward pass.
            centred = rows - rows.mean(1, keepdims=True, dtype=np.float32)
            std = np.sqrt(np.einsum("ij,ij->i", centred, centred) / rows.shape[1])[:, None]
            centred *= 1.0 / np.where(std < _EPS, 1.0, std)
            rows = centred
        elif self.normalization in ("feature", "tangent"):
            rows = (rows - self.mean_) / self.scale_
        elif rows.base is not None or not rows.flags.owndata:
            rows = rows.copy()
        return rows.astype(np.float32, copy=False)

    # -- persistence ---------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict, dict]:
        """(JSON-able config, arrays) describing the fitted preprocessor."""
        config = {
            "normalization": self.normalization,
            "symmetric": self.symmetric,
            "fisher_z": bool(self.fisher_z),
            "fisher_clip": float(self.fisher_clip),
            "input_shape_": list(self.input_shape_),
            "symmetric_": bool(self.symmetric_),
            "n_features_": int(self.n_features_),
            "n_components": None if self.n_components is None else int(self.n_components),
            "tangent_metric": self.tangent_metric,
        }
        arrays = {"mean_": self.mean_, "scale_": self.scale_}
        if self.pca_components_ is not None:
            arrays.update(pca_mean_=self.pca_mean_, pca_components_=self.pca_components_)
        if self.tangent_reference_ is not None:
            arrays["tangent_reference_"] = self.tangent_reference_
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> "TensorPreprocessor":
        pre = cls(
            config["normalization"], config["symmetric"], config["fisher_z"], config["fisher_clip"],
            config.get("n_components"),  # absent from models saved before PCA existed
            config.get("tangent_metric", DEFAULT_METRIC),
        )
        pre.input_shape_ = tuple(config["input_shape_"])
        pre.symmetric_ = bool(config["symmetric_"])
        pre.n_features_ = int(config["n_features_"])
        pre.mean_ = np.asarray(arrays["mean_"], np.float32)
        pre.scale_ = np.asarray(arrays["scale_"], np.float32)
        pre.tangent_reference_ = None
        if pre.normalization == "tangent":
            pre.tangent_reference_ = np.asarray(arrays["tangent_reference_"], np.float64)
            if pre.tangent_reference_.shape != (pre.input_shape_[0],) * 2:
                raise ValueError("The saved tangent-space reference does not match the saved input shape.")
        pre.pca_mean_ = pre.pca_components_ = None
        if pre.n_components is not None:
            pre.pca_mean_ = np.asarray(arrays["pca_mean_"], np.float32)
            pre.pca_components_ = np.asarray(arrays["pca_components_"], np.float32)
            if pre.pca_components_.shape != (len(pre.pca_mean_), pre.n_features_):
                raise ValueError("The saved principal components do not match the saved feature count.")
        if pre.mean_.shape != (pre.n_features_,) or pre.scale_.shape != (pre.n_features_,):
            raise ValueError("The saved preprocessing statistics do not match the saved feature count.")
        return pre
