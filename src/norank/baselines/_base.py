"""What every baseline adapter shares: input checks, the fitted input shape, and the vectoriser.

An adapter is a small scikit-learn transformer: `fit(X_train, y_train=None)` learns everything from the
training samples (preprocessing included) and `transform(X)` embeds any samples of the same shape,
returning float32 rows. Errors name the problem and the fix, and the caller's arrays are never modified.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from norank.preprocessing import TensorPreprocessor
from norank.validation import check_X, label_codes, label_values


def check_stack(X, what: str = "X") -> np.ndarray:
    """X as a float64 array (n, d1, ..., dk) or (n, d); one clear error otherwise.

    A float64 input comes back as the caller's own array, so adapters never write into the result.
    """
    checked, lazy = check_X(X, estimator_name="baseline")  # shape, dtype and finiteness checks
    source = np.asarray(checked[:] if lazy else checked).astype(np.float64, copy=False)
    if lazy and not np.isfinite(source).all():
        raise ValueError(f"{what} contains NaN or infinity; remove or impute those values first.")
    return source


def check_targets(y, n_samples: int, name: str):
    """(classes, integer codes) for a supervised fit, by the one label check; y=None or one class is refused."""
    if y is None:
        raise ValueError(
            f"The {name!r} baseline is supervised and needs y_train; pass the class label of each "
            "training sample: fit(X_train, y_train)."
        )
    classes, codes, _ = label_codes(y, n_samples, "y_train", x_name="X_train")
    if len(classes) < 2:
        raise ValueError(f"The {name!r} baseline needs at least 2 classes in y_train; got {len(classes)}.")
    return classes, codes


def check_optional_targets(y, n_samples: int):
    """y passed to an unsupervised adapter (which ignores the labels), by the one label check; None stays None."""
    return None if y is None else label_values(y, n_samples, "y_train", x_name="X_train", optional=True)


def check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def seed_of(random_state) -> int:
    """An int seed from random_state (int or None → 0); numpy RandomState objects are refused."""
    if random_state is None:
        return 0
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"random_state must be an int, got {type(random_state).__name__}; pass an integer seed.")
    return int(random_state)


def store_params(estimator, given: dict) -> None:
    """Store each keyword of the estimator's `__init__` as given, and nothing else (scikit-learn's contract).

    Called as `store_params(self, locals())` at the top of `__init__`: the signature is the one list of the
    parameters, so none can be forgotten or stored under another name; checks wait for `fit`.
    """
    for name in inspect.signature(type(estimator).__init__).parameters:
        if name != "self":
            setattr(estimator, name, given[name])


class Baseline(TransformerMixin, BaseEstimator):
    """Base class: subclasses set `name`, `supervised` and implement `_fit(X, y)` / `_transform(X)`.

    `X` reaching `_fit` / `_transform` is a float64 array of the original stack shape; `y` is the integer
    class code per sample for supervised adapters, the caller's labels (or None) otherwise.
    """

    supervised = False

    @property
    def name(self) -> str:
        """The method name of the records; read-only (a subclass sets it as a class attribute or a property)."""
        return "baseline"

    def fit(self, X_train, y_train=None):
        X = check_stack(X_train, "X_train")
        if self.supervised:
            self.classes_, y = check_targets(y_train, len(X), self.name)
        else:
            y = check_optional_targets(y_train, len(X))
        self._fit(X, y)
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        return self

    def _check_fitted_input(self, X) -> np.ndarray:
        """X checked as `check_stack` does, for a fitted adapter: its samples must be shaped like the training ones."""
        check_is_fitted(self, "input_shape_")
        X = check_stack(X)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {self.name!r} was fitted on samples of "
                f"shape {self.input_shape_}; pass samples shaped like the training data."
            )
        return X

    def transform(self, X):
        X = self._check_fitted_input(X)
        Z = np.asarray(self._transform(X), dtype=np.float32)
        return np.ascontiguousarray(Z.reshape(len(X), -1))

    def _fit(self, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, X):  # pragma: no cover - abstract
        raise NotImplementedError


class VectorBaseline(Baseline):
    """A baseline that works on one feature row per sample.

    Rows are the flattened sample, or for stacks of symmetric matrices (connectivity) their strict upper
    triangle, so duplicated entries and the constant diagonal do not count twice.
    """

    def _vectoriser(self, X) -> TensorPreprocessor:
        return TensorPreprocessor(normalization="none", symmetric="auto").fit(X)

    def _fit(self, X, y):
        self.vectoriser_ = self._vectoriser(X)
        self._fit_rows(self._rows(X), y)

    def _transform(self, X):
        return self._transform_rows(self._rows(X))

    def _rows(self, X) -> np.ndarray:
        return self.vectoriser_.transform(X).astype(np.float64)

    def _fit_rows(self, F, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform_rows(self, F):  # pragma: no cover - abstract
        raise NotImplementedError
