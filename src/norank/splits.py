"""Stratified index splits: the one family every part of norank draws class-balanced subsets from.

Three functions, one signature shape ``(y, size, random_state, *, minimums)``, each returning sorted
integer positions into ``y``:

- `holdout_split(y, test_size, random_state)`: the evaluation protocol's train/test split. It is
  scikit-learn's ``StratifiedShuffleSplit``, so it equals ``train_test_split(..., stratify=y,
  random_state=random_state)``: tuning scripts and ``norank reproduce`` see the same splits.
- `stratified_split(y, test_size, random_state, *, min_train=1, min_test=1)`: a split that keeps a
  minimum per class on each side (validation splits, encoder selection).
- `stratified_subset(y, size, random_state, *, min_per_class=1)`: a class-proportional subsample
  (training-set fractions, capped datasets, estimates on large n).

The last two round ``share × class size`` per class (Python's round) and draw each class's members with
one ``rng.permutation`` per class, classes in sorted order. ``random_state`` is an int, None or a numpy
``Generator``; a Generator is advanced, so successive calls with it draw different samples.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["holdout_split", "stratified_split", "stratified_subset"]


def holdout_split(y, test_size: float = 0.3, random_state=0, *, shuffled: bool = False):
    """(train, test) of the held-out protocol: scikit-learn's stratified shuffle split, sorted.

    ``shuffled=True`` keeps scikit-learn's drawn order (what ``train_test_split`` returns): row order
    changes what an order-dependent fit (batches drawn by position) computes, so code that must reproduce
    numbers measured with ``train_test_split`` needs it."""
    from sklearn.model_selection import StratifiedShuffleSplit

    y = _labels(y)
    _check_share(test_size, "test_size", upper_inclusive=False)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        small = classes[counts < 2][:5].tolist()
        raise ValueError(
            f"The stratified held-out split needs at least 2 samples per class, but classes {small} "
            "have fewer; drop those classes or pass more data."
        )
    sss = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=_legacy_seed(random_state))
    train, test = next(sss.split(np.zeros(len(y)), y))
    return (train, test) if shuffled else (np.sort(train), np.sort(test))


def stratified_split(y, test_size: float, random_state=None, *, min_train: int = 1, min_test: int = 1):
    """(train, test): about ``test_size`` of each class in test, at least ``min_test`` of it there and at
    least ``min_train`` left in train. ``min_train`` wins: a class with fewer than ``min_train + min_test``
    samples gives its test part only what is left after ``min_train`` (possibly nothing)."""
    y = _labels(y)
    _check_share(test_size, "test_size", upper_inclusive=False)
    _check_count(min_train, "min_train")
    _check_count(min_test, "min_test")
    rng = np.random.default_rng(random_state)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = min(max(min_test, round(test_size * len(members))), max(len(members) - min_train, 0))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_subset(y, size, random_state=None, *, min_per_class: int = 1):
    """Sorted positions of a class-proportional subsample of y.

    ``size`` is a share in (0, 1] or a count in [1, len(y)]; each class keeps ``round(share × its size)``
    members, at least ``min_per_class`` (all of them when it has fewer). A share of 1 keeps everything."""
    y = _labels(y)
    _check_count(min_per_class, "min_per_class")
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if not 1 <= int(size) <= len(y):
            raise ValueError(f"size={size} must lie in [1, {len(y)}] (a count of samples) or in (0, 1] (a share).")
        share = int(size) / len(y)
    else:
        _check_share(size, "size", upper_inclusive=True)
        share = float(size)
    rng = np.random.default_rng(random_state)
    keep = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        keep.append(members[: min(len(members), max(min_per_class, round(share * len(members))))])
    return np.sort(np.concatenate(keep))


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels, got shape {y.shape}.")
    return y


def _check_share(value, name: str, upper_inclusive: bool) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < float(value)
    ok = ok and (float(value) <= 1 if upper_inclusive else float(value) < 1)
    if not ok:
        bound = "(0, 1]" if upper_inclusive else "(0, 1)"
        raise ValueError(f"{name}={value!r} must be a share in {bound}.")


def _check_count(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative integer.")


def _legacy_seed(random_state):
    """scikit-learn takes an int, None or a RandomState; a Generator gives it a fresh int seed."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)):
        raise TypeError(f"random_state must be an int, None or a numpy Generator, got {type(random_state).__name__}.")
    return random_state
