"""normalization="tangent": SPD matrices → tangent vectors at a training mean, standardised per feature.

Oracles: pyRiemann's TangentSpace followed by scikit-learn's StandardScaler (random SPD matrices and real
ABIDE connectomes), pyRiemann's gmean for the streamed means, and a loop over eigendecompositions for the
isometric coordinates (upper triangle, √2 off the diagonal).
"""

import warnings

import numpy as np
import pytest
from pyriemann.tangentspace import TangentSpace
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from norank import tangent
from norank.preprocessing import TensorPreprocessor


def spd_stack(n=40, r=5, seed=0, dtype=np.float64):
    """n well-conditioned SPD matrices (sample covariances of 4r observations), read-only."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, r, 4 * r)) * rng.uniform(0.5, 2.0, size=(n, r, 1))
    X = (A @ A.transpose(0, 2, 1) / (4 * r)).astype(dtype)
    X.setflags(write=False)  # any in-place write raises
    return X


def oracle(metric, X_fit, X_new):
    """pyRiemann tangent space + scikit-learn standardisation, fitted on X_fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return make_pipeline(TangentSpace(metric=metric), StandardScaler()).fit(X_fit).transform(X_new)


def spd_log(S):
    w, V = np.linalg.eigh(S)
    return (V * np.log(w)) @ V.T


@pytest.mark.parametrize("metric", tangent.METRICS)
def test_equals_pyriemann_tangent_space_and_standard_scaler(metric):
    X, X_new = spd_stack(40, seed=0), spd_stack(15, seed=1)
    pre = TensorPreprocessor("tangent", tangent_metric=metric).fit(X)
    rows = pre.transform(X_new)
    assert rows.dtype == np.float32 and rows.shape == (15, 15) and pre.n_features_ == 15
    np.testing.assert_allclose(rows, oracle(metric, X, X_new), atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        np.testing.assert_allclose(pre.tangent_reference_, TangentSpace(metric=metric).fit(X).reference_, rtol=1e-12)


def test_coordinates_are_the_isometric_upper_triangle_of_the_log_map():
    X = spd_stack(12, r=4, seed=2)
    ref = tangent.fit_reference(X, "riemann")
    w, V = np.linalg.eigh(ref)
    isqrt = (V / np.sqrt(w)) @ V.T
    T = tangent.tangent_vectors(X, ref, "riemann")
    iu = np.triu_indices(4)
    weights = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))
    for k in range(len(X)):
        L = spd_log(isqrt @ X[k] @ isqrt)
        np.testing.assert_allclose(T[k], weights * L[iu], atol=1e-10)
        # Euclidean norm of the vector = Frobenius norm of the tangent matrix = Riemannian distance to ref.
        np.testing.assert_allclose(np.linalg.norm(T[k]), np.linalg.norm(L), rtol=1e-10)
    # The Riemannian mean is the point where the tangent vectors average to zero.
    np.testing.assert_allclose(T.mean(0), 0.0, atol=1e-6)


def test_reference_and_statistics_come_from_the_training_matrices_only():
    X, X_new = spd_stack(30, seed=3), spd_stack(10, seed=4) * 5.0
    pre = TensorPreprocessor("tangent").fit(X)
    ref, mean, scale = pre.tangent_reference_.copy(), pre.mean_.copy(), pre.scale_.copy()
    pre.transform(X_new)
    assert np.array_equal(pre.tangent_reference_, ref) and np.array_equal(pre.mean_, mean)
    T = tangent.tangent_vectors(X, ref, tangent.DEFAULT_METRIC)
    np.testing.assert_allclose(mean, T.mean(0), atol=1e-6)
    np.testing.assert_allclose(scale, T.std(0), rtol=1e-5)
    np.testing.assert_allclose(pre.transform(X).mean(0), 0.0, atol=1e-5)


def test_zero_rows_of_constant_regions_get_the_mean_diagonal():
    C = np.array(spd_stack(6, r=5, seed=5))
    C[2, 3, :] = C[2, :, 3] = 0.0  # region 3 constant in matrix 2: singular
    C.setflags(write=False)
    fixed = tangent.regularize_spd(C)
    expected = np.array(C)
    expected[2, 3, 3] = np.mean(np.delete(np.diag(C[2]), 3))
    np.testing.assert_array_equal(fixed, expected)
    assert np.linalg.eigvalsh(fixed[2])[0] > 0 and C[2, 3, 3] == 0.0  # the input stays as it was
    # Correlation matrices: the diagonal becomes 1, what the Ledoit-Wolf path gives a constant region.
    R = np.stack([np.corrcoef(a) for a in np.random.default_rng(6).normal(size=(8, 6, 40))])
    R[0, 1, :] = R[0, :, 1] = 0.0
    assert tangent.regularize_spd(R)[0, 1, 1] == 1.0
    pre = TensorPreprocessor("tangent").fit(R)
    fixed = tangent.regularize_spd(R)
    np.testing.assert_allclose(pre.transform(R), oracle(tangent.DEFAULT_METRIC, fixed, fixed), atol=1e-4)


def test_positive_definite_matrices_are_left_as_they_are():
    X = spd_stack(5, seed=7)
    np.testing.assert_array_equal(tangent.regularize_spd(X), X)


def test_non_spd_input_gets_one_clear_error():
    X = np.array(spd_stack(6, r=4, seed=8))
    with pytest.raises(ValueError, match=r"\(n, R, R\); got samples of shape \(4, 5\).*normalization='feature'"):
        TensorPreprocessor("tangent").fit(np.zeros((6, 4, 5)))
    with pytest.raises(ValueError, match=r"samples of shape \(16,\)"):
        TensorPreprocessor("tangent").fit(X.reshape(6, 16))
    asym = X.copy()
    asym[3, 0, 1] += 1.0
    with pytest.raises(ValueError, match="Matrix 3 is not symmetric"):
        TensorPreprocessor("tangent").fit(asym)
    indefinite = X.copy()
    indefinite[4] -= 10 * np.eye(4)
    with pytest.raises(ValueError, match="Matrix 4 is not positive definite.*Ledoit-Wolf"):
        TensorPreprocessor("tangent").fit(indefinite)
    rank_deficient = X.copy()
    v = np.arange(1.0, 5.0)
    rank_deficient[1] = np.outer(v, v)  # one observation: rank 1
    with pytest.raises(ValueError, match="Matrix 1 is not positive definite"):
        TensorPreprocessor("tangent").fit(rank_deficient)
    nan = X.copy()
    nan[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match="Matrix 2 contains NaN"):
        tangent.regularize_spd(nan)
    with pytest.raises(ValueError, match="Matrix 0 is all zeros"):
        tangent.regularize_spd(np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="tangent_metric='wasserstein' is not supported"):
        TensorPreprocessor("tangent", tangent_metric="wasserstein").fit(X)
    with pytest.raises(ValueError, match="leave fisher_z=False"):
        TensorPreprocessor("tangent", fisher_z=True, symmetric=True).fit(X)
    pre = TensorPreprocessor("tangent").fit(X)
    with pytest.raises(ValueError, match=r"(Matrix|Sample) 0 .*not (a )?symmetric"):
        pre.transform(np.triu(X))  # new matrices are checked too


def test_chunked_mapping_and_streamed_means_equal_the_whole_stack(monkeypatch):
    X = spd_stack(23, r=4, seed=9)
    whole = {m: tangent.fit_reference(X, m) for m in tangent.METRICS}
    vectors = {m: tangent.tangent_vectors(X, whole[m], m) for m in tangent.METRICS}
    monkeypatch.setattr(tangent, "CHUNK_BYTES", 5 * 8 * 16)  # 5 matrices per chunk
    assert tangent.chunk_rows(4) == 5
    for m in tangent.METRICS:
        streamed = tangent.fit_reference(X, m, memory_bytes=0)  # forces the streaming path
        np.testing.assert_allclose(streamed, whole[m], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(tangent.tangent_vectors(X, whole[m], m), vectors[m], rtol=1e-12, atol=1e-12)


def test_state_round_trip_keeps_reference_metric_and_statistics():
    X, X_new = spd_stack(20, seed=10, dtype=np.float32), spd_stack(6, seed=11, dtype=np.float32)
    pre = TensorPreprocessor("tangent", tangent_metric="logeuclid").fit(X)
    config, arrays = pre.get_state()
    assert config["tangent_metric"] == "logeuclid" and arrays["tangent_reference_"].dtype == np.float64
    again = TensorPreprocessor.from_state(config, arrays)
    np.testing.assert_array_equal(again.transform(X_new), pre.transform(X_new))
    arrays["tangent_reference_"] = arrays["tangent_reference_"][:3, :3]
    with pytest.raises(ValueError, match="tangent-space reference does not match"):
        TensorPreprocessor.from_state(config, arrays)


def test_embedder_with_tangent_normalization_saves_and_loads(tmp_path):
    from norank import NoRankEmbedder

    X, X_new = spd_stack(32, r=4, seed=12, dtype=np.float32), spd_stack(5, r=4, seed=13, dtype=np.float32)
    y = np.repeat([0, 1], 16)
    est = NoRankEmbedder(normalization="tangent", epochs=2, batch_size=16, random_state=0).fit(X, y)
    assert est.preprocessor_.n_features_ == 10
    np.testing.assert_allclose(est.preprocessor_.tangent_reference_, tangent.fit_reference(X), rtol=1e-12)
    est.save(tmp_path / "model")
    loaded = NoRankEmbedder.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.preprocessor_.tangent_reference_, est.preprocessor_.tangent_reference_)
    np.testing.assert_array_equal(loaded.transform(X_new), est.transform(X_new))


def test_real_abide_connectomes_equal_the_pyriemann_pipeline():
    from norank.datasets import load

    try:
        ds = load("abide")
    except (FileNotFoundError, OSError) as exc:  # no local copy and no network
        pytest.skip(f"ABIDE is not available here: {exc}")
    constant = np.flatnonzero((np.abs(ds.X - np.eye(111)).sum(axis=2) == 0).any(axis=1))  # constant regions
    assert len(constant) > 100  # ABIDE's constant regions: zero correlations, unit diagonal
    pick = np.concatenate([constant[:4], np.setdiff1d(np.arange(40), constant)[:26]])
    X = ds.X[pick]
    for metric in ("riemann", "logeuclid"):
        pre = TensorPreprocessor("tangent", tangent_metric=metric).fit(X[:24])
        expected = oracle(metric, X[:24].astype(np.float64), X[24:].astype(np.float64))
        np.testing.assert_allclose(pre.transform(X[24:]), expected, atol=1e-3)
