"""TensorPreprocessor: per-sample and per-feature standardisation against scikit-learn's scale."""

import numpy as np
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
