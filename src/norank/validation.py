"""Input checks with one clear error per problem, naming the fix.

Arrays in memory are validated whole (in chunks, so a check never copies a big array) and keep their own
numeric dtype: the preprocessing converts each chunk to the precision it needs, so float64 data is never
rounded to float32 before it is centred. Memory-mapped arrays and other lazy array-likes are kept lazy:
anything with `shape`, `__len__` and `__getitem__` (an integer or a slice of samples) is accepted, such as
an h5py dataset; their shape and dtype are checked here and their values block by block as they are read.

Labels have one check, `label_values`, on which `label_codes` and the estimator's `check_labels` build:
integers of any width, bool, finite floats and str are accepted; anything else is refused at `fit`.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from typing import Any, Protocol

import numpy as np
from sklearn.utils.validation import column_or_1d

_CHECK_BYTES = 64 * 1024**2  # finiteness is checked in blocks of about this many input bytes
_MISSING = "missing values (None, NaN or pd.NA)"


class LazyArray(Protocol):
    """The type of a lazy X (see `is_lazy`): samples read block by block, as from an h5py dataset."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, item: Any, /) -> Any: ...


def is_lazy(X) -> bool:
    """True for inputs read block by block instead of loaded: memory maps and array-likes without __array__
    that have `shape`, `__len__` and `__getitem__` (an integer or a slice of samples)."""
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or isinstance(X, (list, tuple)):
        return False
    return hasattr(X, "shape") and hasattr(X, "__len__") and hasattr(X, "__getitem__")


def as_numpy(a):
    """`a` itself, or a torch tensor as a numpy array (detached, on the CPU): no gradient or device issue."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(a, torch.Tensor):
        return a
    if a.is_sparse:
        raise TypeError("Sparse tensors are not supported: norank needs dense tensors. Use tensor.to_dense() first.")
    a = a.detach().cpu()
    return (a.float() if a.dtype == torch.bfloat16 else a).numpy()


def _check_sparse(X) -> None:
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("Sparse input is not supported: norank needs dense tensors. Convert with X.toarray() first.")


def check_dtype(dtype, what: str = "X") -> None:
    """Refuse complex and non-numeric dtypes (bool and integers are numeric)."""
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError(
            f"Complex data not supported: pass real-valued {what} (for example np.abs({what}) or {what}.real)."
        )
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(f"{what} must be numeric, got dtype {dtype}; convert it with {what}.astype(np.float32).")


def check_finite(X, what: str = "X") -> None:
    """Refuse NaN and infinity, scanning blocks of samples so no full-size temporary is made."""
    X = np.asarray(X)
    if X.dtype.kind in "biu":
        return
    X = X.reshape(1) if X.ndim == 0 else X
    step = max(1, _CHECK_BYTES // max(1, X[:1].nbytes))
    for start in range(0, len(X), step):
        if not np.isfinite(X[start : start + step]).all():
            raise ValueError(
                f"{what} contains NaN or infinity (missing values such as None or pd.NA count as NaN); remove or "
                "impute those values (e.g. np.nan_to_num) before fitting."
            )


def _objects_to_float(X: np.ndarray) -> np.ndarray:
    """An object array as float64: None and pd.NA become NaN; strings, complex and other objects are refused."""
    out = np.empty(X.size, np.float64)
    for i, value in enumerate(X.flat):  # object arrays are Python objects already: a loop costs no more
        if value is None or type(value).__name__ in ("NAType", "NaTType"):
            out[i] = np.nan
        elif isinstance(value, (complex, np.complexfloating)):
            check_dtype(np.complex128)
        elif isinstance(value, (str, bytes)):
            raise TypeError(
                f"X must be numeric, but it holds strings ({value!r}); convert it with X.astype(np.float64)."
            )
        else:
            try:
                out[i] = float(value)
            except (TypeError, ValueError, OverflowError) as exc:
                raise TypeError(
                    f"X must be numeric ({exc}); convert it to a float array of shape (n, d1, ..., dk)."
                ) from None
    return out.reshape(X.shape)


def _in_memory(X) -> np.ndarray:
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"X must be numeric and rectangular ({exc}); convert it to a float array of shape (n, d1, ..., dk)."
        ) from None
    return _objects_to_float(X) if X.dtype == object else X


class LazyRows:
    """An array-like known only by `shape`, `__len__` and `__getitem__`, read as checked numpy blocks.

    Gives the rest of norank the `dtype` and `ndim` it relies on; the dtype is the first sample's, and
    every block read is checked for numeric values of the declared sample shape.
    """

    def __init__(self, X, shape: tuple):
        self.X, self.shape, self.ndim = X, shape, len(shape)
        self.dtype = self[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def _block(self, value, shape: tuple, where: str) -> np.ndarray:
        block = _in_memory(value)
        check_dtype(block.dtype)
        if block.size != int(np.prod(shape)):
            raise ValueError(
                f"{where} has shape {block.shape}, but X declares samples of shape {self.shape[1:]}; "
                "every sample must have the declared shape."
            )
        return block.reshape(shape)

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return self._block(self._read(int(item)), self.shape[1:], f"X[{int(item)}]")
        rows = np.arange(len(self))[item]
        try:
            return self._block(self._read(item), (len(rows), *self.shape[1:]), "a block of X")
        except (TypeError, ValueError):  # no slice / array indexing: one sample at a time
            blocks = [self[int(i)] for i in rows]
            return np.stack(blocks) if blocks else np.empty((0, *self.shape[1:]), self.dtype)

    def _read(self, item):
        try:
            return self.X[item]
        except (IndexError, KeyError) as exc:
            raise TypeError(
                f"X[{item!r}] could not be read ({exc!r}); a lazy X must support X[i] for every integer i < len(X)."
            ) from None


def _lazy_shape(X) -> tuple:
    try:
        shape = tuple(int(s) for s in X.shape)
    except (TypeError, ValueError):
        raise TypeError(f"X.shape must be a tuple of integers, got {X.shape!r}.") from None
    if len(shape) and len(X) != shape[0]:
        raise ValueError(f"len(X) = {len(X)} disagrees with X.shape = {shape}; they must describe the same samples.")
    return shape


def _lazy_view(X, shape: tuple):
    """X itself when it carries a numpy dtype and ndim (memory maps, h5py), else a `LazyRows` over it."""
    if isinstance(getattr(X, "dtype", None), np.dtype) and getattr(X, "ndim", None) == len(shape):
        return X
    return LazyRows(X, shape)


def _check_shape(shape: tuple) -> None:
    if len(shape) < 2:
        raise ValueError(
            f"Expected a 2-D or higher array of shape (n_samples, d1, ..., dk), got shape {shape}. Reshape your "
            "data: X.reshape(1, -1) for a single sample, X.reshape(-1, 1) for a single feature (which needs "
            "normalization='feature' or 'none': per-sample normalisation needs at least 2 values per sample)."
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


def check_X(X: Any, *, estimator_name: str = "NoRankEmbedder") -> tuple[np.ndarray | LazyArray, bool]:
    """Validated X: a numeric array in memory in its own dtype (never a copy of a numeric array), or a lazy
    array-like with `shape`, `ndim` and `dtype`.

    Returns (X, lazy). Torch tensors are read as numpy arrays (detached), object arrays and DataFrames as
    float64 with missing values refused; the caller's array is never modified.
    """
    if X is None:
        raise ValueError(f"X is None; pass a stack of samples of shape (n_samples, d1, ..., dk) to {estimator_name}.")
    _check_sparse(X)
    X = as_numpy(X)
    lazy = is_lazy(X)
    if lazy:
        shape = _lazy_shape(X)
        _check_shape(shape)
        X = _lazy_view(X, shape)
    else:
        X = _in_memory(X)
        _check_shape(tuple(X.shape))
    check_dtype(X.dtype)
    if not lazy:
        check_finite(X)
    return X, lazy


# -- labels -----------------------------------------------------------------------------------------
_LABEL_KINDS = "integers, bools, finite floats or strings"


def _label_kind(value) -> str:
    missing = value is None or type(value).__name__ in ("NAType", "NaTType")
    if missing or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Integral, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _labels_from_objects(y: np.ndarray, name: str) -> np.ndarray:
    """Object labels as a plain array of their one kind; mixtures (other than int with float) are refused."""
    kinds = {_label_kind(v) for v in y}
    if "missing" in kinds:
        raise ValueError(f"{name} contains {_MISSING}; every sample needs a class label.")
    if kinds == {"int", "float"}:
        kinds = {"float"}
    if len(kinds) > 1:
        raise TypeError(
            f"{name} mixes label types ({', '.join(sorted(kinds))}); use labels of one type, e.g. {name}.astype(str)."
        )
    kind = kinds.pop() if kinds else "str"
    if kind not in ("bool", "int", "float", "str"):
        raise TypeError(f"{name} holds labels of type {kind}; labels must be {_LABEL_KINDS}.")
    if kind != "int":
        return np.asarray(y.tolist(), dtype={"bool": bool, "float": np.float64, "str": str}[kind])
    for dtype in (np.int64, np.uint64):
        if all(np.iinfo(dtype).min <= int(v) <= np.iinfo(dtype).max for v in y):
            return np.asarray([int(v) for v in y], dtype=dtype)
    raise TypeError(f"{name} holds integer labels beyond 64 bits; map them to smaller integers or to strings.")


def label_values(y, n_samples: int, name: str = "y", *, x_name: str = "X", optional: bool = False) -> np.ndarray:
    """The one label check: a 1-D array of n_samples labels of an accepted dtype, or one clear error.

    Accepted: integers of any width, bool, finite floats and str (classes keep that dtype). Refused with a
    TypeError: bytes, datetimes, timedeltas, complex and other objects, and objects that mix label types.
    `x_name` names the samples in messages; `optional` says that the labels may also be left out (None).
    """
    y = as_numpy(y)
    y = np.asarray(y, dtype=object) if isinstance(y, (list, tuple)) else np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one class label per sample, got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"{name} has {len(y)} labels but {x_name} has {n_samples} samples; "
            f"pass one label per row (sample) of {x_name}" + (f", or {name}=None." if optional else ".")
        )
    kind = y.dtype.kind
    if kind == "O":
        y = _labels_from_objects(y, name)
    elif kind == "T":
        y = y.astype(str)
    elif kind not in "biufU":
        hint = f"{name}.astype(str)" if kind in "SMm" else f"{name}.real or {name}.astype(str)"
        raise TypeError(
            f"{name} has dtype {y.dtype}, which is not a supported label type; labels must be {_LABEL_KINDS}: "
            f"convert them, e.g. with {hint}."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinity; every sample needs a class label.")
    return y


def label_codes(y, n_samples: int, name: str = "y", *, x_name: str = "X"):
    """(classes, codes 0..C-1 as int64, counts per class) of labels checked by `label_values`."""
    y = label_values(y, n_samples, name, x_name=x_name)
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    return classes, codes.astype(np.int64).ravel(), counts


def check_labels(y, n_samples: int):
    """(classes_, codes, counts) for `NoRankEmbedder.fit`: at least 2 classes, and a class with 2 samples."""
    if y is None:
        raise ValueError(
            "NoRankEmbedder requires y to be passed, but the target y is None; pass the class label of each sample."
        )
    classes, codes, counts = label_codes(y, n_samples)
    if n_samples < 2:
        raise ValueError(f"NoRankEmbedder needs at least 2 samples; got {n_samples} sample.")
    if len(classes) < 2:
        raise ValueError(
            f"NoRankEmbedder needs at least 2 classes to learn a metric; got 1 class ({classes[0]!r}). "
            "Pass samples of at least two classes."
        )
    singles = classes[counts == 1]
    if len(singles) == len(classes):
        raise ValueError(
            "Every class has a single sample, so there are no positive pairs to learn from; "
            "each class needs at least 2 samples."
        )
    if len(singles):
        shown = ", ".join(repr(c) for c in singles[:5]) + (" …" if len(singles) > 5 else "")
        warnings.warn(
            f"{len(singles)} class(es) have a single sample ({shown}); the class-balanced sampler repeats such a "
            "sample to fill its class's places in a batch, so it is its own positive: training keeps other classes "
            "away from it but learns nothing about its class's spread. Add samples to those classes to learn them.",
            UserWarning,
            stacklevel=3,
        )
    return classes, codes, counts
