"""Tensor stack → feature vectors, fitted on training data only and stored with the model.

Each sample of shape (d1, ..., dk) becomes one row. Symmetric matrices (connectivity) keep only their
strict upper triangle, optionally Fisher z-transformed; rows may then be projected onto their
leading principal components (fitted on the training rows); finally they are normalised per sample
("patient-wise"), per feature (statistics of the training set), or not at all. "tangent" maps stacks of
SPD matrices to the tangent space at a training mean (norank.tangent), then standardises per feature.
"""

from __future__ import annotations

import warnings

import numpy as np

from norank.samplewise import (
    CHUNK_ROWS,
    asymmetric_samples,
    chunk_rows,
    first_asymmetric,
    looks_symmetric,
    standardise_samples,
    work_dtype,
)
from norank.tangent import (
    DEFAULT_METRIC,
    check_matrix_shape,
    check_metric,
    fit_reference,
    tangent_vectors,
)

NORMALIZATIONS = ("sample", "feature", "none", "tangent")
IN_MEMORY_BYTES = 2 * 1024**3  # inputs up to this size are processed at once: PCA fits, training caches


def check_n_components(k) -> None:
    """Refuse a component count that is not a positive integer (None keeps every feature)."""
    if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1):
        raise ValueError(f"pca_components={k!r} must be a positive integer, or None to keep every feature.")


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

    # Fitted arrays that only some settings have (None otherwise).
    tangent_reference_: np.ndarray | None
    pca_mean_: np.ndarray | None
    pca_components_: np.ndarray | None

    def __init__(
        self,
        normalization="sample",
        symmetric="auto",
        fisher_z=False,
        fisher_clip=0.999,
        n_components=None,
        tangent_metric=DEFAULT_METRIC,
    ):
        self.normalization = normalization
        self.symmetric = symmetric
        self.fisher_z = fisher_z
        self.fisher_clip = fisher_clip
        self.n_components = n_components
        self.tangent_metric = tangent_metric

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X) -> TensorPreprocessor:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r} is not supported; use one of {NORMALIZATIONS}.")
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
            if self.symmetric_ and (bad := first_asymmetric(X)) is not None:
                raise ValueError(
                    f"symmetric=True keeps only the strict upper triangle, but training sample {bad} is not a "
                    "symmetric matrix; pass symmetric=False (or 'auto') to keep every entry."
                )
        if self.fisher_z and not self.symmetric_:
            raise ValueError("fisher_z=True applies to symmetric correlation matrices; pass symmetric=True too.")
        if self.symmetric_:
            r = self.input_shape_[0]
            self.n_features_ = r * (r - 1) // 2
        else:
            self.n_features_ = int(np.prod(self.input_shape_))
        self._check_sample_width()
        self.tangent_reference_ = None
        if self.normalization == "tangent":
            self._fit_tangent(X)
        self.pca_mean_ = self.pca_components_ = None
        if self.n_components is not None:
            self._fit_pca(X)
            self.n_features_ = int(self.n_components)
        self.mean_ = np.zeros(self.n_features_, np.float64)
        self.scale_ = np.ones(self.n_features_, np.float64)
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

    def _check_sample_width(self) -> None:
        """Per-sample z-scores of 1 value are always 0: refused. Those of 2 values are always (-1, 1), (1, -1) or
        (0, 0), which keeps only the order of the two: a warning (scikit-learn's own checks fit 2 features)."""
        check_n_components(self.n_components)
        width = self.n_features_ if self.n_components is None else int(self.n_components)
        if self.normalization != "sample" or width >= 3:
            return
        after = (
            " after pca_components"
            if self.n_components is not None
            else (" (the strict upper triangle of symmetric matrices)" if self.symmetric_ else "")
        )
        message = (
            f"normalization='sample' z-scores each sample over its own values, but got {width} feature(s) per "
            f"sample{after}: every sample would become {'the same point' if width == 1 else 'one of 3 points'}. "
            "Pass normalization='feature' (statistics of each feature over the training set) or "
            "normalization='none'."
        )
        if width == 1:
            raise ValueError(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    def _fit_pca(self, X) -> None:
        from sklearn.decomposition import PCA, IncrementalPCA

        k, n = self.n_components, len(X)
        check_n_components(k)
        if k > min(n, self.n_features_):
            raise ValueError(
                f"pca_components={k} exceeds what {n} training samples of {self.n_features_} features allow "
                f"(at most {min(n, self.n_features_)}); lower pca_components."
            )
        itemsize = np.dtype(work_dtype(getattr(X, "dtype", np.float32))).itemsize
        if n * self.n_features_ * itemsize <= IN_MEMORY_BYTES:
            pca = PCA(int(k), random_state=0).fit(self._vectorise(np.asarray(X[:])))
        else:
            # Equal chunks of at least max(CHUNK_ROWS, k) rows: IncrementalPCA needs k rows per chunk.
            n_chunks = max(1, n // max(CHUNK_ROWS, int(k)))
            bounds = np.linspace(0, n, n_chunks + 1).astype(int)
            pca = IncrementalPCA(int(k))
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                pca.partial_fit(self._vectorise(np.asarray(X[start:stop])))
        self.pca_mean_ = pca.mean_.astype(np.float64)
        self.pca_components_ = np.ascontiguousarray(pca.components_.T, dtype=np.float32)  # (features, k)

    def _rows(self, X) -> np.ndarray:
        """Vectorised rows, projected onto the principal components when they were fitted."""
        rows = self._vectorise(X)
        if self.pca_components_ is not None and self.pca_mean_ is not None:
            dtype = rows.dtype  # float64 inputs are centred in float64: an offset far above the spread survives
            rows = (rows - self.pca_mean_.astype(dtype, copy=False)) @ self.pca_components_.astype(dtype, copy=False)
        return rows

    def _fit_feature_stats(self, X) -> None:
        """Mean and std of each feature over the training rows, streamed in float64 chunks and merged with
        Chan et al.'s pairwise update: no sum of squares, so an offset far above the spread cancels nothing."""
        count, mean = 0, np.zeros(self.n_features_, np.float64)
        m2 = np.zeros(self.n_features_, np.float64)
        low, high = np.full(self.n_features_, np.inf), np.full(self.n_features_, -np.inf)
        step = chunk_rows(int(np.prod(self.input_shape_)))
        for start in range(0, len(X), step):
            rows = self._rows(np.asarray(X[start : start + step])).astype(np.float64)  # a copy
            low, high = np.minimum(low, rows.min(0)), np.maximum(high, rows.max(0))
            block_mean = rows.mean(0)
            rows -= block_mean
            delta, total = block_mean - mean, count + len(rows)
            mean += delta * (len(rows) / total)
            m2 += np.einsum("ij,ij->j", rows, rows) + delta * delta * (count * len(rows) / total)
            count = total
        std = np.sqrt(m2 / count)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError(
                "Per-feature statistics overflow float64: X holds values too large to square; rescale X "
                "(e.g. divide it by its largest absolute value) or use normalization='sample'."
            )
        constant = (high == low) | (std == 0)  # exact: constant features become exactly zero after centring
        self.mean_ = np.where(constant, low, mean)
        self.scale_ = np.where(constant, 1.0, std)

    # -- transforming --------------------------------------------------------------------------------
    def _vectorise(self, X: np.ndarray) -> np.ndarray:
        if self.normalization == "tangent":
            return tangent_vectors(X, self.tangent_reference_, self.tangent_metric)  # float64, chunked
        X = np.asarray(X)
        X = X.astype(work_dtype(X.dtype), copy=False)
        if self.symmetric_:
            r = self.input_shape_[0]
            iu = np.triu_indices(r, k=1)
            rows = X[:, iu[0], iu[1]]
            if self.fisher_z:
                rows = np.arctanh(np.clip(rows, -self.fisher_clip, self.fisher_clip))
            return np.ascontiguousarray(rows)
        return X.reshape(len(X), -1)

    def transform(self, X) -> np.ndarray:
        """Rows of float32 features, a new array (the input is never modified).

        Chunks of samples are vectorised in their own precision and normalised in float64; only the result
        is rounded to float32, so rescaling X or adding an offset far above its spread keeps the rows.
        """
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but the model was fitted on samples of shape "
                f"{self.input_shape_}; reshape the input to match the training data."
            )
        out = np.empty((len(X), self.n_features_), np.float32)
        step = chunk_rows(int(np.prod(self.input_shape_)))
        for start in range(0, len(X), step):
            block = np.asarray(X[start : start + step])
            if self.symmetric_ and len(bad := asymmetric_samples(block)):
                raise ValueError(
                    f"Sample {start + int(bad[0])} of X is not a symmetric matrix, but the model was fitted on "
                    "symmetric matrices and keeps only their strict upper triangle, so its lower triangle would be "
                    "ignored. Pass symmetric matrices, or refit with symmetric=False to use every entry."
                )
            rows, part = self._rows(block), out[start : start + len(block)]
            if self.normalization == "sample":
                standardise_samples(rows, part)  # bounded by sqrt(n_features_): always finite
                continue
            if self.normalization in ("feature", "tangent"):
                rows = self._standardise_features(rows)
            elif rows.dtype == np.float32:  # checked values, copied as they are
                part[...] = rows
                continue
            with np.errstate(over="ignore"):
                part[...] = rows
            if not np.isfinite(part).all():
                raise ValueError(
                    f"X's preprocessed values (normalization={self.normalization!r}) exceed float32's range "
                    "(about 3.4e38); rescale X, or use normalization='sample', which is scale-free."
                )
        return out

    def _standardise_features(self, rows) -> np.ndarray:
        """(rows - mean_) / scale_, in the rows' precision; for float32 rows the mean is subtracted as a float32
        pair (high and low part), which keeps it as exact as float64 without mixing dtypes (slow in numpy)."""
        if rows.dtype != np.float32:
            return (rows - self.mean_) / self.scale_
        high = self.mean_.astype(np.float32)
        centred = rows - high
        centred -= (self.mean_ - high).astype(np.float32)
        with np.errstate(over="ignore"):
            centred *= (1.0 / self.scale_).astype(np.float32)
        return centred

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
        arrays: dict[str, np.ndarray] = {"mean_": self.mean_, "scale_": self.scale_}
        if self.pca_components_ is not None and self.pca_mean_ is not None:
            arrays.update(pca_mean_=self.pca_mean_, pca_components_=self.pca_components_)
        if self.tangent_reference_ is not None:
            arrays["tangent_reference_"] = self.tangent_reference_
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> TensorPreprocessor:
        pre = cls(
            config["normalization"],
            config["symmetric"],
            config["fisher_z"],
            config["fisher_clip"],
            config.get("n_components"),  # absent from models saved before PCA existed
            config.get("tangent_metric", DEFAULT_METRIC),
        )
        pre.input_shape_ = tuple(config["input_shape_"])
        pre.symmetric_ = bool(config["symmetric_"])
        pre.n_features_ = int(config["n_features_"])
        pre.mean_ = np.asarray(arrays["mean_"], np.float64)  # float32 in models saved before float64 statistics
        pre.scale_ = np.asarray(arrays["scale_"], np.float64)
        pre.tangent_reference_ = None
        if pre.normalization == "tangent":
            pre.tangent_reference_ = np.asarray(arrays["tangent_reference_"], np.float64)
            if pre.tangent_reference_.shape != (pre.input_shape_[0],) * 2:
                raise ValueError("The saved tangent-space reference does not match the saved input shape.")
        pre.pca_mean_ = pre.pca_components_ = None
        if pre.n_components is not None:
            pre.pca_mean_ = np.asarray(arrays["pca_mean_"], np.float64)
            pre.pca_components_ = np.asarray(arrays["pca_components_"], np.float32)
            if pre.pca_components_.shape != (len(pre.pca_mean_), pre.n_features_):
                raise ValueError("The saved principal components do not match the saved feature count.")
        if pre.mean_.shape != (pre.n_features_,) or pre.scale_.shape != (pre.n_features_,):
            raise ValueError("The saved preprocessing statistics do not match the saved feature count.")
        return pre
