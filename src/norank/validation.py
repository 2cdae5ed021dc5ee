"""Input checks with one clear error per problem, naming the fix.

Arrays in memory are validated whole. Memory-mapped arrays and other lazy array-likes (anything with
`shape`, `__len__` and `__getitem__`, such as an h5py dataset) are kept lazy: their shape and dtype are
checked here and their values batch by batch as they are read.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import column_or_1d


def is_lazy(X) -> bool:
    """True for inputs read batch by batch instead of loaded: memory maps and array-likes without __array__."""
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or isinstance(X, (list, tuple)):
        return False
    return hasattr(X, "shape") and hasattr(X, "__len__") and hasattr(X, "__getitem__")


def _check_sparse(X) -> None:
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "Sparse input is not supported: norank needs dense tensors. Convert with X.toarray() first."
        )


def _check_dtype(dtype) -> None:
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError("Complex data not supported: pass real-valued X (for example np.abs(X) or X.real).")
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(f"X must be numeric, got dtype {dtype}; convert it with X.astype(np.float32).")


def check_finite(X: np.ndarray, what: str = "X") -> None:
    if not np.isfinite(X).all():
        raise ValueError(
            f"{what} contains NaN or infinity; remove or impute those values (e.g. np.nan_to_num) before fitting."
        )


def check_X(X, *, estimator_name: str = "NoRankEmbedder"):
    """Validated X: a float array in memory, or the lazy array-like itself.

    Returns (X, lazy). In-memory input is converted to float32 without touching the caller's array.
    """
    if X is None:
        raise ValueError("X is None; pass a stack of samples of shape (n_samples, d1, ..., dk).")
    _check_sparse(X)
    lazy = is_lazy(X)
    if not lazy:
        try:
            X = np.asarray(X)
            if X.dtype == object:
                X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"X must be numeric and rectangular ({exc}); convert it to a float array of shape (n, d1, ..., dk)."
            ) from None
    shape = tuple(X.shape)
    if len(shape) < 2:
        raise ValueError(
            f"Expected a 2-D or higher array of shape (n_samples, d1, ..., dk), got shape {shape}. Reshape your "
            "data: X.reshape(1, -1) for a single sample, X.reshape(-1, 1) for a single feature."
        )
    if shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required: pass a non-empty X."
        )
    if int(np.prod(shape[1:])) == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required: "
            "each sample needs at least one value."
        )
    _check_dtype(X.dtype)
    if not lazy:
        X = X.astype(np.float32, copy=False)
        check_finite(X)
    return X, lazy


def check_labels(y, n_samples: int):
    """(classes_, codes) with codes 0..C-1; y may hold ints, strings or other sortable objects."""
    if y is None:
        raise ValueError(
            "NoRankEmbedder requires y to be passed, but the target y is None; pass the class label of each sample."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one class label per sample, got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"y has {len(y)} labels but X has {n_samples} samples; pass one label per sample of X."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; every sample needs a class label.")
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError:
        raise TypeError("y mixes label types that cannot be sorted; use labels of one type (all str or all int).") from None
    if n_samples < 2:
        raise ValueError(f"NoRankEmbedder needs at least 2 samples; got {n_samples} sample.")
    if len(classes) < 2:
        raise ValueError(
            f"NoRankEmbedder needs at least 2 classes to learn a metric; got 1 class ({classes[0]!r}). "
            "Pass samples of at least two classes."
        )
    counts = np.bincount(codes, minlength=len(classes))
    singles = classes[counts == 1]
    if len(singles) == len(classes):
        raise ValueError(
            "Every class has a single sample, so there are no positive pairs to learn from; "
            "each class needs at least 2 samples."
        )
    if len(singles):
        shown = ", ".join(repr(c) for c in singles[:5]) + (" …" if len(singles) > 5 else "")
        warnings.warn(
            f"{len(singles)} class(es) have a single sample ({shown}); they are used only as negatives, "
            "never as anchors. Add samples to those classes to learn them.",
            UserWarning,
            stacklevel=3,
        )
    return classes, codes.astype(np.int64), counts
