"""The pieces norank keeps one copy of: stratified splits (norank.splits) and leave-one-out precision@1."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from norank.metrics import evaluate, precision_at_1
from norank.splits import holdout_split, stratified_split, stratified_subset

Y = np.repeat(np.arange(4), [10, 20, 31, 40])


def test_holdout_split_equals_train_test_split():
    for seed in (0, 3, 1000):
        train, test = holdout_split(Y, 0.3, seed)
        tr, te = train_test_split(np.arange(len(Y)), test_size=0.3, stratify=Y, random_state=seed)
        assert train.tolist() == sorted(tr) and test.tolist() == sorted(te)
        drawn = holdout_split(Y, 0.3, seed, shuffled=True)
        assert drawn[0].tolist() == tr.tolist() and drawn[1].tolist() == te.tolist()
    with pytest.raises(ValueError, match="at least 2 samples per class"):
        holdout_split(np.array([0, 0, 1, 1, 2]), 0.3, 0)


def _brute_force_split(y, share, seed, min_train, min_test):
    """The documented rule, one class at a time, with the documented draw."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in sorted(set(y.tolist())):
        members = rng.permutation([i for i in range(len(y)) if y[i] == c])
        n_test = round(share * len(members))
        n_test = max(n_test, min_test)
        n_test = min(n_test, max(len(members) - min_train, 0))
        test += members[:n_test].tolist()
        train += members[n_test:].tolist()
    return sorted(train), sorted(test)


@pytest.mark.parametrize("min_train,min_test", [(1, 1), (2, 0), (9, 1)])
def test_stratified_split_follows_its_rule(min_train, min_test):
    y = np.concatenate([Y, [7]])  # a one-sample class
    train, test = stratified_split(y, 0.25, 5, min_train=min_train, min_test=min_test)
    assert (train.tolist(), test.tolist()) == _brute_force_split(y, 0.25, 5, min_train, min_test)
    assert not set(train) & set(test) and len(train) + len(test) == len(y)
    for c in np.unique(y):
        n = np.sum(y == c)
        assert np.sum(y[train] == c) >= min(min_train, n)
    assert np.sum(y[test] == 7) == 0  # min_train wins over min_test


def test_stratified_subset_shares_and_counts():
    keep = stratified_subset(Y, 0.1, 0, min_per_class=2)
    assert np.bincount(Y[keep]).tolist() == [2, 2, 3, 4]
    assert stratified_subset(Y, 1.0, 0).tolist() == list(range(len(Y)))
    counted = stratified_subset(Y, 20, 0, min_per_class=2)  # 20 of 101: about a fifth of each class
    assert np.bincount(Y[counted]).tolist() == [2, 4, 6, 8]
    rng = np.random.default_rng(1)
    assert not np.array_equal(stratified_subset(Y, 0.5, rng), stratified_subset(Y, 0.5, rng))  # a Generator advances
    assert np.array_equal(stratified_subset(Y, 0.5, 4), stratified_subset(Y, 0.5, 4))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: stratified_subset(Y, 0.0, 0), "share"),
        (lambda: stratified_subset(Y, 500, 0), r"\[1, 101\]"),
        (lambda: stratified_split(Y, 1.0, 0), "test_size"),
        (lambda: stratified_split(Y, 0.2, 0, min_train=-1), "min_train"),
        (lambda: stratified_split(Y.reshape(-1, 1), 0.2, 0), "1-D"),
    ],
)
def test_split_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_precision_at_1_matches_brute_force_and_evaluate():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.repeat(np.arange(5), 8), [9]])  # class 9 has one sample: not a query
    Z = rng.normal(size=(len(y), 3)) + 0.8 * y[:, None]
    d = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    queries = y != 9
    expected = np.mean(y[d.argmin(1)][queries] == y[queries])
    assert precision_at_1(Z, y) == pytest.approx(expected)
    assert precision_at_1(Z, y) == pytest.approx(evaluate(Z, y)["precision_at_1"])
    with pytest.raises(ValueError, match="two samples"):
        precision_at_1(Z[:3], np.array([0, 1, 2]))
