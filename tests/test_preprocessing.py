"""TensorPreprocessor: per-sample and per-feature standardisation against scikit-learn's scale."""

import numpy as np
import pytest
from sklearn.preprocessing import scale

from norank import samplewise
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
    X = rng.normal(size=(300, 3)) * [5.0, 3.0, 2.0] @ rng.normal(size=(3, 20)) + 0.05 * rng.normal(size=(300, 20))
    X = X.astype(np.float32)
    full = TensorPreprocessor("none", n_components=3).fit(X)
    monkeypatch.setattr(module, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(module, "CHUNK_ROWS", 64)
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


@pytest.mark.parametrize(
    "k, match",
    [
        (0, "positive integer"),
        (2.5, "positive integer"),
        (True, "positive integer"),
        (31, "exceeds what 30 training samples"),
    ],
)
def test_bad_pca_components(k, match):
    X = np.random.default_rng(6).normal(size=(30, 40)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        TensorPreprocessor(n_components=k).fit(X)


# -- scale and offset safety (issue 13, item 9) -------------------------------------------------------
def _rows64(seed=7, shape=(40, 5, 6)):
    return np.random.default_rng(seed).normal(2.0, 3.0, size=shape)


@pytest.mark.parametrize("factor", [1e-9, 1e-3, 1e3, 1e19])
def test_sample_rows_do_not_change_when_the_data_is_rescaled(factor):
    X = _rows64()
    expected = scale(X.reshape(40, -1), axis=1)  # the float64 oracle
    pre = TensorPreprocessor("sample").fit(X)
    np.testing.assert_allclose(pre.transform(X * factor), expected, atol=1e-5)
    np.testing.assert_allclose(TensorPreprocessor("sample").fit(X * factor).transform(X * factor), expected, atol=1e-5)


@pytest.mark.parametrize("normalization, axis", [("sample", 1), ("feature", 0)])
def test_float64_rows_survive_an_offset_far_above_their_spread(normalization, axis):
    X = _rows64()
    expected = scale(X.reshape(40, -1), axis=axis)
    shifted = X + 1e8  # float32 keeps steps of 8 here: a cast before centring loses the data
    rows = TensorPreprocessor(normalization).fit(shifted).transform(shifted)
    np.testing.assert_allclose(rows, expected, atol=1e-5)


def test_a_sample_with_a_tiny_spread_is_standardised_not_zeroed():
    X = _rows64(8, (10, 12))
    signal = X[3].copy()
    X[3] = 5.0 + 1e-12 * signal  # a spread far below any absolute epsilon, still a real signal
    X[4] = 5.0  # a constant sample becomes exactly zero
    X[5] = 0.0
    rows = TensorPreprocessor("sample").fit(X).transform(X)
    np.testing.assert_allclose(rows[3], scale(signal[None], axis=1)[0], atol=1e-3)
    assert not rows[4].any() and not rows[5].any()


def test_constant_features_become_zero_at_any_offset():
    X = _rows64(9, (30, 4))
    X[:, 1] = 1e8 + 0.1  # constant, at an offset where a mean rounds
    rows = TensorPreprocessor("feature").fit(X).transform(X)
    assert not rows[:, 1].any()
    np.testing.assert_allclose(rows[:, [0, 2, 3]], scale(X[:, [0, 2, 3]]), atol=1e-5)


def test_chunked_transform_equals_whole_and_reads_memory_maps_in_their_own_precision(monkeypatch, tmp_path):

    base = _rows64(10, (50, 4, 5))
    X = base + 1e8
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    whole = TensorPreprocessor("feature").fit(X).transform(X)
    monkeypatch.setattr(samplewise, "_CHUNK_BYTES", 8 * 20 * 7)  # 7 samples per chunk
    chunked = TensorPreprocessor("feature").fit(mm)
    np.testing.assert_allclose(chunked.transform(mm), whole, atol=1e-6)
    np.testing.assert_allclose(chunked.transform(mm), scale(base.reshape(50, -1)), atol=1e-5)


def test_values_beyond_float32_are_refused_not_returned_as_inf():
    X = _rows64(11, (20, 6)) * 1e300
    with pytest.raises(ValueError, match="float32's range.*normalization='sample'"):
        TensorPreprocessor("none").fit(X).transform(X)
    rows = TensorPreprocessor("sample").fit(X).transform(X)  # scale-free, so fine
    np.testing.assert_allclose(rows, scale(X / 1e300, axis=1), atol=1e-5)


def test_statistics_survive_persistence_in_float64():
    X = _rows64(12, (30, 6)) + 1e8
    pre = TensorPreprocessor("feature").fit(X)
    config, arrays = pre.get_state()
    assert arrays["mean_"].dtype == np.float64
    again = TensorPreprocessor.from_state(config, arrays)
    assert np.array_equal(again.transform(X), pre.transform(X))


# -- per-sample normalisation of 1 or 2 values -------------------------------------------------------
@pytest.mark.parametrize(
    "make, kwargs, width",
    [
        (lambda X: X[:, :1], {}, 1),
        (lambda X: X[:, :2], {}, 2),
        (lambda X: np.stack([np.eye(2)] * len(X)) + X[:, :1, None] * [[0, 1], [1, 0]], {}, 1),  # 2x2 symmetric
        (lambda X: X, {"n_components": 2}, 2),
    ],
)
def test_sample_normalisation_of_one_value_is_refused_and_of_two_warned(make, kwargs, width):
    X = make(_rows64(13, (30, 8)))
    match = rf"{width} feature\(s\).*normalization='feature'.*normalization='none'"
    if width == 1:
        with pytest.raises(ValueError, match=match):
            TensorPreprocessor("sample", **kwargs).fit(X)
    else:
        with pytest.warns(UserWarning, match=match):
            rows = TensorPreprocessor("sample", **kwargs).fit(X).transform(X)
        assert len(np.unique(rows, axis=0)) <= 3  # what the warning says
    for other in ("feature", "none"):
        rows = TensorPreprocessor(other, **kwargs).fit(X).transform(X)
        assert rows.shape == (30, width) and len(np.unique(rows, axis=0)) == 30


# -- symmetric="auto" decides on every sample --------------------------------------------------------
def _mostly_asymmetric(n=40, r=6, n_symmetric=16, seed=14):
    M = np.random.default_rng(seed).normal(size=(n, r, r))
    M[:n_symmetric] = (M[:n_symmetric] + M[:n_symmetric].transpose(0, 2, 1)) / 2
    return M


def test_symmetric_auto_reads_every_sample_not_the_first_ones(monkeypatch):

    M = _mostly_asymmetric()
    monkeypatch.setattr(samplewise, "_CHUNK_BYTES", 8 * 36 * 5)  # 5 samples per chunk: the decision spans chunks
    pre = TensorPreprocessor("none").fit(M)
    assert not pre.symmetric_ and pre.n_features_ == 36
    np.testing.assert_array_equal(pre.transform(M), M.reshape(40, -1).astype(np.float32))
    sym = TensorPreprocessor("none").fit(M[:16])
    assert sym.symmetric_ and sym.n_features_ == 15


@pytest.mark.parametrize("factor", [1e-9, 1.0, 1e12])
def test_the_symmetry_decision_does_not_depend_on_scale(factor):
    M = _mostly_asymmetric(n_symmetric=0) * factor
    assert not TensorPreprocessor("none").fit(M).symmetric_
    C = (M + M.transpose(0, 2, 1)) / 2
    assert TensorPreprocessor("none").fit(C).symmetric_


def test_a_symmetric_model_refuses_asymmetric_samples_instead_of_dropping_half():
    C = _mostly_asymmetric(n_symmetric=40)
    pre = TensorPreprocessor("sample").fit(C)
    bad = C.copy()
    bad[7, 4, 1] += 1.0
    with pytest.raises(ValueError, match="Sample 7 of X is not a symmetric matrix.*symmetric=False"):
        pre.transform(bad)
    assert np.array_equal(pre.transform(C[:5]), pre.transform(C)[:5])
    with pytest.raises(ValueError, match="training sample 7 is not a symmetric matrix"):
        TensorPreprocessor("sample", symmetric=True).fit(bad)
