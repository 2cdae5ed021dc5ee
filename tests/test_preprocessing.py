"""TensorPreprocessor: per-sample and per-feature standardisation against scikit-learn's scale."""

import numpy as np
import pytest
from sklearn.preprocessing import scale

from norank.preprocessing import TensorPreprocessor


def test_sample_normalisation_equals_sklearn_scale_of_each_row():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 6, 7)).astype(np.float32)
    X[4] = 1.5  # a constant sample stays finite (all zeros)
    copy = X.copy()
    rows = TensorPreprocessor("sample").fit(X).transform(X)
    expected = scale(X.reshape(50, -1).astype(np.float64), axis=1)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, expected, atol=2e-5)
    assert np.array_equal(X, copy)  # the input is never modified


def test_feature_normalisation_equals_sklearn_scale_of_each_column():
    X = np.random.default_rng(1).normal(-1.0, 4.0, size=(80, 12)).astype(np.float32)
    rows = TensorPreprocessor("feature").fit(X).transform(X)
    np.testing.assert_allclose(rows, scale(X.astype(np.float64), axis=0), atol=2e-5)


def _same_up_to_component_signs(a, b, atol):
    signs = np.sign((a * b).sum(0))
    np.testing.assert_allclose(a, b * signs, atol=atol)


def test_pca_projection_equals_sklearn_pca_of_the_training_rows():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(2)
    X = (rng.normal(size=(70, 5)) @ rng.normal(size=(5, 48)) + 0.1 * rng.normal(size=(70, 48))).reshape(70, 6, 8)
    X = X.astype(np.float32)
    copy = X.copy()
    pre = TensorPreprocessor("none", n_components=5).fit(X[:50])
    oracle = PCA(5).fit(X[:50].reshape(50, -1).astype(np.float64))
    expected = oracle.transform(X[50:].reshape(20, -1).astype(np.float64))
    rows = pre.transform(X[50:])
    assert rows.shape == (20, 5) and rows.dtype == np.float32 and pre.n_features_ == 5
    _same_up_to_component_signs(rows, expected, atol=1e-3)
    assert np.array_equal(X, copy)
    # Normalisation applies to the component scores.
    scores = TensorPreprocessor("feature", n_components=5).fit(X[:50]).transform(X[:50])
    _same_up_to_component_signs(scores, scale(oracle.transform(X[:50].reshape(50, -1).astype(np.float64))), atol=1e-3)


def test_pca_of_connectivity_uses_the_upper_triangle():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    C = np.stack([np.corrcoef(a) for a in rng.normal(size=(40, 9, 30))]).astype(np.float32)
    pre = TensorPreprocessor("none", n_components=4).fit(C)
    iu = np.triu_indices(9, 1)
    expected = PCA(4).fit_transform(C[:, iu[0], iu[1]].astype(np.float64))
    assert pre.symmetric_
    _same_up_to_component_signs(pre.transform(C), expected, atol=1e-3)


def test_large_stacks_fit_pca_incrementally_with_the_same_subspace(monkeypatch):
    import norank.preprocessing as module

    rng = np.random.default_rng(4)
    X = (rng.normal(size=(300, 3)) * [5.0, 3.0, 2.0] @ rng.normal(size=(3, 20)) + 0.05 * rng.normal(size=(300, 20)))
    X = X.astype(np.float32)
    full = TensorPreprocessor("none", n_components=3).fit(X)
    monkeypatch.setattr(module, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(module, "_CHUNK_ROWS", 64)
    chunked = TensorPreprocessor("none", n_components=3).fit(X)
    # Same principal subspace: the projections onto each other's components match.
    P, Q = full.pca_components_, chunked.pca_components_
    np.testing.assert_allclose(np.abs(P.T @ Q), np.eye(3), atol=1e-3)
    _same_up_to_component_signs(chunked.transform(X), full.transform(X), atol=1e-2)


def test_pca_state_round_trips():
    X = np.random.default_rng(5).normal(size=(30, 12)).astype(np.float32)
    pre = TensorPreprocessor("sample", n_components=4).fit(X)
    config, arrays = pre.get_state()
    again = TensorPreprocessor.from_state(config, arrays)
    assert np.array_equal(again.transform(X), pre.transform(X))
    old_config = {k: v for k, v in TensorPreprocessor("sample").fit(X).get_state()[0].items() if k != "n_components"}
    old = TensorPreprocessor.from_state(old_config, TensorPreprocessor("sample").fit(X).get_state()[1])
    assert old.n_components is None and old.transform(X).shape == (30, 12)  # models saved before PCA load


@pytest.mark.parametrize("k, match", [(0, "positive integer"), (2.5, "positive integer"), (True, "positive integer"),
                                      (31, "exceeds what 30 training samples")])
def test_bad_pca_components(k, match):
    X = np.random.default_rng(6).normal(size=(30, 40)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        TensorPreprocessor(n_components=k).fit(X)
