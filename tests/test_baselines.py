"""Baselines: the registry, the shared adapter contract, and each family against an oracle.

Oracles: scikit-learn pipelines and cross_val_predict for PCA/LDA/NCA, tensorly's own reconstructions
and brute-force Khatri–Rao / Kronecker products for CP/Tucker, a loop over the t-product definition
(circular convolution of tubes) for the t-SVD, and the norank estimator itself for the transformer.
"""

import numpy as np
import pytest
import torch
from shared import BASELINE_NAMES
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from norank.baselines import BASELINES, SUPERVISED, UNSUPERVISED, make_baseline
from norank.baselines.tensor import CPBaseline, TSVDBaseline, TuckerBaseline, gram_svd, t_svd

NAMES = BASELINE_NAMES
# Short training for the neural adapters; every other adapter runs with its defaults.
FAST = {
    "vae": dict(epochs=5),
    "dec": dict(epochs=5, refine_epochs=5),
    "transformer": dict(epochs=2, batch_size=16),
}


def tiny_stack(n=40, seed=0):
    """n samples of shape (6, 5) in 4 classes, separated in mean."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, 6, 5)) * 2
    y = np.repeat(np.arange(4), n // 4)
    return centers[y] + rng.normal(size=(n, 6, 5)), y


def expected_width(name, model):
    """Documented embedding sizes on the (6, 5) stack with 40 training samples."""
    fixed = {
        "raw": 30,
        "pca": 30,
        "tsne": 2,
        "umap": 10,
        "umap_supervised": 10,
        "tsvd": 6 * 5,
        "lda": 3,
        "vae": 10,
        "dec": 10,
        "transformer": 64,
    }
    if name.startswith(("cp_r", "tucker_r")):
        return int(name.split("_r")[1])
    if name == "nca":
        return model.n_pca_
    return fixed[name]


@pytest.fixture(scope="module")
def data():
    X, y = tiny_stack(40, seed=0)
    X_new, _ = tiny_stack(12, seed=1)
    for a in (X, y, X_new):
        a.setflags(write=False)  # any in-place write by an adapter raises
    return X, y, X_new


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return {name: make_baseline(name, random_state=0, **FAST.get(name, {})).fit(X, y) for name in NAMES}


# -- registry ------------------------------------------------------------------------------------------


def test_registry_names_and_groups():
    spd = ["tangent_logistic", "tangent_svc"]  # SPD matrices only: tested in test_connectome_baselines.py
    assert list(BASELINES) == NAMES + spd
    assert sorted(SUPERVISED) == ["lda", "nca", "tangent_logistic", "tangent_svc", "transformer", "umap_supervised"]
    assert sorted(UNSUPERVISED + SUPERVISED) == sorted(NAMES + spd) and not set(UNSUPERVISED) & set(SUPERVISED)
    for name in NAMES + spd:
        model = make_baseline(name)
        assert model.name == name and model.supervised == (name in SUPERVISED)


def test_adapters_are_sklearn_estimators():
    from sklearn.base import clone

    for name in NAMES:
        model = make_baseline(name, random_state=3)
        copy = clone(model)
        assert copy.get_params() == model.get_params() and copy.random_state == 3


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Unknown baseline 'svd'.*tucker_r20"):
        make_baseline("svd")


def test_unknown_override_names_the_settings():
    with pytest.raises(TypeError, match="does not take n_epochs.*n_components"):
        make_baseline("pca", n_epochs=3)
    assert make_baseline("pca", n_components=7).n_components == 7
    assert make_baseline("cp_r5", rank=3).rank == 3


# -- the shared contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fit_transform_new_samples(name, fitted, data):
    X, y, X_new = data
    model = fitted[name]
    Z = model.transform(X_new)
    assert Z.dtype == np.float32 and Z.shape == (12, expected_width(name, model))
    assert np.isfinite(Z).all() and Z.std() > 0
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(6, 5\)"):
        model.transform(X_new[:, :5, :])


@pytest.mark.parametrize("name", [n for n in NAMES if n != "transformer"])  # transformer: see its oracle test
def test_same_random_state_same_embedding(name, fitted, data):
    X, y, X_new = data
    again = make_baseline(name, random_state=0, **FAST.get(name, {})).fit(X, y)
    np.testing.assert_array_equal(again.transform(X_new), fitted[name].transform(X_new))


def test_inputs_are_left_unchanged(fitted, data):
    # The fixture fitted every adapter on read-only arrays (an in-place write would have raised there).
    X, y, X_new = data
    X0, y0, X_new0 = tiny_stack(40, seed=0)[0], tiny_stack(40, seed=0)[1], tiny_stack(12, seed=1)[0]
    for name in NAMES:
        fitted[name].transform(X_new)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(X_new, X_new0)
    assert not (X.flags.writeable or y.flags.writeable or X_new.flags.writeable)


@pytest.mark.parametrize("name", SUPERVISED)
def test_supervised_baselines_refuse_missing_labels(name, data):
    with pytest.raises(ValueError, match=f"'{name}' baseline is supervised and needs y_train"):
        make_baseline(name, **FAST.get(name, {})).fit(data[0])


@pytest.mark.parametrize("name", ["raw", "pca", "cp_r5", "tsvd"])
def test_unsupervised_baselines_ignore_labels(name, data):
    X, y, X_new = data
    a = make_baseline(name).fit(X).transform(X_new)
    b = make_baseline(name).fit(X, y[::-1]).transform(X_new)
    np.testing.assert_array_equal(a, b)


def test_bad_input_gets_one_clear_error(data):
    X, y, _ = data
    model = make_baseline("pca")
    bad = np.array(X)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.fit(bad)
    with pytest.raises(ValueError, match="2-D or higher"):
        model.fit(np.zeros(5))
    with pytest.raises(ValueError, match="40 samples"):
        make_baseline("lda").fit(X, y[:-1])
    with pytest.raises(ValueError, match="or y_train=None"):
        make_baseline("pca").fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_baseline("lda").fit(X, np.zeros(40))
    with pytest.raises(TypeError, match="random_state must be an int"):
        make_baseline("pca", random_state=np.random.RandomState(0)).fit(X)


def test_torch_baselines_leave_global_random_state_alone(data):
    X, y, _ = data
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002 - the global state
    make_baseline("vae", epochs=1).fit(X)
    make_baseline("dec", epochs=1, refine_epochs=1).fit(X, y)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002 - the global state


# -- linear baselines against scikit-learn -------------------------------------------------------------


def test_raw_is_the_flattened_input_and_upper_triangle_for_symmetric(data):
    X, y, X_new = data
    np.testing.assert_array_equal(
        make_baseline("raw").fit(X).transform(X_new), X_new.reshape(12, -1).astype(np.float32)
    )
    S = X[:, :5, :] @ X[:, :5, :].transpose(0, 2, 1)  # symmetric (40, 5, 5)
    iu = np.triu_indices(5, k=1)
    np.testing.assert_array_equal(make_baseline("raw").fit(S).transform(S), S[:, iu[0], iu[1]].astype(np.float32))


def test_pca_equals_scaled_sklearn_pca(data):
    X, _, X_new = data
    model = make_baseline("pca", n_components=7).fit(X)
    oracle = make_pipeline(StandardScaler(), PCA(7, svd_solver="full")).fit(X.reshape(40, -1))
    np.testing.assert_allclose(model.transform(X_new), oracle.transform(X_new.reshape(12, -1)), rtol=1e-4, atol=1e-4)
    assert make_baseline("pca").fit(X[:20]).n_components_ == 20  # capped by the training samples


@pytest.mark.parametrize("name", ["lda", "nca"])
def test_supervised_pca_pipeline_and_its_size_selection(name, fitted, data):
    X, y, X_new = data
    model = fitted[name]
    F = X.reshape(40, -1)

    def head():
        if name == "lda":
            return LinearDiscriminantAnalysis()
        return NeighborhoodComponentsAnalysis(max_iter=50, random_state=0)

    # Every candidate front end is scored as its own plain pipeline would be, on the same folds.
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    whiten = [False, True] if name == "nca" else [False]  # LDA is invariant to whitening
    assert sorted(model.cv_scores_) == [(c, w) for c in (20, 22) for w in whiten]  # capped at 26 − 4
    for (c, w), score in model.cv_scores_.items():
        pipe = make_pipeline(StandardScaler(), PCA(c, whiten=w, svd_solver="full"), head(), KNeighborsClassifier(1))
        assert score == pytest.approx(np.mean(cross_val_predict(pipe, F, y, cv=folds) == y))
    best = max(model.cv_scores_.values())
    assert (model.n_pca_, model.whiten_) == min(o for o, s in model.cv_scores_.items() if s == best)
    front = PCA(model.n_pca_, whiten=model.whiten_, svd_solver="full")
    oracle = make_pipeline(StandardScaler(), front, head()).fit(F, y)
    np.testing.assert_allclose(model.transform(X_new), oracle.transform(X_new.reshape(12, -1)), rtol=1e-4, atol=1e-4)


def test_pca_front_stops_at_the_numerical_rank():
    """Digits have pixels that are (almost) always 0: PCA components past the standardised rank are
    rounding noise, and LDA scaled one held-out sample to norm 4e14 through them before the cap."""
    from sklearn.datasets import load_digits

    from norank.baselines.linear import standardised_rank
    from norank.splits import holdout_split

    X, y = load_digits(return_X_y=True)
    train, test = holdout_split(y, 0.3, 2)
    model = make_baseline("lda", random_state=2).fit(X[train], y[train])  # NCA shares the PCA front
    rank = standardised_rank(X[train])
    assert rank < X.shape[1] and model.n_pca_ <= rank
    assert all(c <= rank for c, _ in model.cv_scores_)
    norms = np.linalg.norm(model.transform(X[test]), axis=1)
    assert norms.max() < 20 * np.median(norms)


# -- t-SNE and UMAP ------------------------------------------------------------------------------------


def test_tsne_places_new_samples_by_weighted_neighbours(fitted, data):
    X, _, X_new = data
    model = fitted["tsne"]
    np.testing.assert_allclose(model.transform(X), model.embedding_, atol=1e-6)  # each its own neighbour
    P, P_new = model.front_.transform(X.reshape(40, -1)), model.front_.transform(X_new.reshape(12, -1))
    dist = np.linalg.norm(P_new[:, None, :] - P[None, :, :], axis=2)
    expected = []
    for row in dist:
        nearest = np.argsort(row)[:10]
        w = 1.0 / row[nearest]
        expected.append((w[:, None] * model.embedding_[nearest]).sum(0) / w.sum())
    np.testing.assert_allclose(model.transform(X_new), np.array(expected), rtol=1e-4, atol=1e-5)


def test_umap_fit_transform_is_the_fitted_embedding(fitted, data):
    X, y, _ = data
    model = make_baseline("umap_supervised")
    np.testing.assert_array_equal(model.fit_transform(X, y), fitted["umap_supervised"].embedding_)


def test_umap_leaves_torch_thread_count_as_it_was():
    # A fresh process: numba starts its OpenMP pool (which resets the shared thread count) only once.
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, torch\n"
        "from norank.baselines import make_baseline\n"
        "X = np.random.default_rng(0).normal(size=(60, 20)).astype(np.float32)\n"
        "model = make_baseline('umap', n_pca=10).fit(X)\n"
        "after_fit = torch.get_num_threads()\n"
        "model.transform(X[:5])\n"
        "print(after_fit, torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "1"]


# -- CP and Tucker -------------------------------------------------------------------------------------


def cp_stack(n, factors, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, factors[0].shape[1]))
    return np.einsum("ir,jr,kr->ijk", A, *factors)


def test_cp_projection_is_the_least_squares_sample_factor():
    import tensorly as tl

    rng = np.random.default_rng(3)
    B, C = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    X, X_new = cp_stack(30, [B, C], 0), cp_stack(8, [B, C], 1)
    model = CPBaseline(rank=3, n_iter_max=500, tol=1e-12).fit(X)
    # The model is tensorly's own: its reconstruction equals tl.cp_to_tensor of the fitted factors.
    full = tl.cp_to_tensor((np.ones(3), [model.sample_factor_, *model.factors_]))
    np.testing.assert_allclose(model.sample_factor_ @ model.loadings_, full.reshape(30, -1), atol=1e-10)
    # Least squares against the brute-force Khatri–Rao product KR[(j, k), r] = B[j, r] C[k, r].
    Bf, Cf = model.factors_
    KR = np.array([[Bf[j, r] * Cf[k, r] for r in range(3)] for j in range(6) for k in range(5)])
    lstsq = np.linalg.lstsq(KR, X_new.reshape(8, -1).T, rcond=None)[0].T
    np.testing.assert_allclose(model.transform(X_new), lstsq, rtol=1e-4, atol=1e-5)
    # Exact rank-3 data: projecting the training samples recovers the fitted factor, new ones reconstruct.
    np.testing.assert_allclose(model.transform(X), model.sample_factor_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.transform(X_new).astype(float) @ model.loadings_, X_new.reshape(8, -1), atol=1e-4)


def test_tucker_projection_is_the_least_squares_sample_factor():
    import tensorly as tl

    rng = np.random.default_rng(4)
    core = rng.normal(size=(3, 3, 3))
    B, C = np.linalg.qr(rng.normal(size=(6, 3)))[0], np.linalg.qr(rng.normal(size=(5, 3)))[0]

    def stack(n, seed):
        return tl.tucker_to_tensor((core, [np.random.default_rng(seed).normal(size=(n, 3)), B, C]))

    X, X_new = stack(30, 0), stack(8, 1)
    model = TuckerBaseline(rank=3, n_iter_max=200, tol=1e-12).fit(X)
    full = tl.tucker_to_tensor((model.core_, [model.sample_factor_, *model.factors_]))
    np.testing.assert_allclose(model.sample_factor_ @ model.loadings_, full.reshape(30, -1), atol=1e-10)
    # Oracle loadings: G_(1) · (B ⊗ C)ᵀ with numpy's Kronecker product.
    Bf, Cf = model.factors_
    np.testing.assert_allclose(model.loadings_, model.core_.reshape(3, -1) @ np.kron(Bf, Cf).T, atol=1e-10)
    lstsq = np.linalg.lstsq(model.loadings_.T, X_new.reshape(8, -1).T, rcond=None)[0].T
    np.testing.assert_allclose(model.transform(X_new), lstsq, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.transform(X), model.sample_factor_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.transform(X_new).astype(float) @ model.loadings_, X_new.reshape(8, -1), atol=1e-4)


@pytest.mark.parametrize("cls", [CPBaseline, TuckerBaseline])
def test_reconstruction_error_decreases_with_rank(cls, data):
    import tensorly as tl

    X = data[0]
    errors = []
    for r in (1, 2, 4, 8):
        model = cls(rank=r).fit(X)
        if cls is CPBaseline:  # tensorly's own reconstruction of the fitted model
            full = tl.cp_to_tensor((np.ones(r), [model.sample_factor_, *model.factors_]))
        else:
            full = tl.tucker_to_tensor((model.core_, [model.sample_factor_, *model.factors_]))
        errors.append(np.linalg.norm(X - full) / np.linalg.norm(X))
        # Re-embedding by least squares can only fit the training samples better.
        assert model.reconstruction_error(X) <= errors[-1] + 1e-7
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.9 * errors[0]


def test_cp_and_tucker_on_a_matrix_are_rank_r_factorisations(data):
    X = data[0].reshape(40, -1)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    best = np.linalg.norm(s[4:]) / np.linalg.norm(s)  # Eckart–Young: the best rank-4 error
    for cls in (CPBaseline, TuckerBaseline):
        model = cls(rank=4, n_iter_max=500, tol=1e-12).fit(X)
        assert model.transform(X[:3]).shape == (3, 4)
        assert model.reconstruction_error(X) == pytest.approx(best, rel=1e-3)


def test_gram_svd_matches_numpy_svd():
    rng = np.random.default_rng(5)
    for shape in ((4, 30), (30, 4)):
        M = rng.normal(size=shape)
        U, S, Vt = gram_svd(M, n_eigenvecs=3)
        s = np.linalg.svd(M, compute_uv=False)
        np.testing.assert_allclose(S, s[:3], rtol=1e-10)
        np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-10)
        np.testing.assert_allclose(U * S @ Vt, np.linalg.svd(M)[0][:, :3] * s[:3] @ np.linalg.svd(M)[2][:3], atol=1e-10)


# -- t-SVD ---------------------------------------------------------------------------------------------


def t_product_loop(A, B):
    """The t-product from its definition: C(:, :, k) = Σ_j A(:, :, j) · B(:, :, (k − j) mod n3)."""
    n3 = A.shape[2]
    C = np.zeros((A.shape[0], B.shape[1], n3))
    for k in range(n3):
        for j in range(n3):
            C[:, :, k] += A[:, :, j] @ B[:, :, (k - j) % n3]
    return C


def t_transpose(A):
    """Transpose each frontal slice and reverse the order of slices 2..n3."""
    At = A.transpose(1, 0, 2)
    return np.concatenate([At[:, :, :1], At[:, :, :0:-1]], axis=2)


@pytest.mark.parametrize("shape", [(7, 4, 5), (4, 6, 6), (5, 3, 1)])
def test_t_svd_reconstructs_exactly_at_full_rank(shape):
    A = np.random.default_rng(6).normal(size=shape)
    U, S, V = t_svd(A)
    np.testing.assert_allclose(t_product_loop(t_product_loop(U, S), t_transpose(V)), A, atol=1e-10)
    identity = np.zeros((V.shape[1], V.shape[1], shape[2]))
    identity[:, :, 0] = np.eye(V.shape[1])
    np.testing.assert_allclose(t_product_loop(t_transpose(V), V), identity, atol=1e-10)  # orthogonal V


def test_tsvd_embedding_is_the_t_product_with_leading_slices(data):
    X, _, X_new = data
    model = TSVDBaseline(rank=3).fit(X)
    _, _, V = t_svd(X)
    np.testing.assert_allclose(model.V_, V[:, :3, :], atol=1e-12)
    Z = model.transform(X_new)
    assert Z.shape == (12, 3 * 5)
    np.testing.assert_allclose(Z, t_product_loop(X_new, V[:, :3, :]).reshape(12, -1), rtol=1e-5, atol=1e-5)


def test_tsvd_of_a_matrix_is_the_svd_projection(data):
    X = data[0].reshape(40, -1)
    Z = TSVDBaseline(rank=4).fit(X).transform(X)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    np.testing.assert_allclose(np.abs(Z), np.abs(U[:, :4] * s[:4]), rtol=1e-4, atol=1e-4)


# -- VAE, DEC, transformer -----------------------------------------------------------------------------


def test_vae_learns(fitted):
    curve = fitted["vae"].loss_curve_
    assert len(curve) == 5 and curve[-1] < curve[0]


def test_dec_cluster_count_comes_from_n_clusters_or_the_label_count(fitted, data):
    X, y, _ = data
    assert fitted["dec"].n_clusters_ == 4 and fitted["dec"].cluster_centers_.shape == (4, 10)
    assert set(fitted["dec"].labels_) <= set(range(4))
    three = make_baseline("dec", n_clusters=3, epochs=1, refine_epochs=1).fit(X)
    assert three.n_clusters_ == 3 and three.cluster_centers_.shape == (3, 10)
    with pytest.raises(ValueError, match="pass n_clusters=k, or y_train"):
        make_baseline("dec", epochs=1).fit(X)
    # Only the count is used: relabelled classes give the same model.
    relabelled = make_baseline("dec", **FAST["dec"]).fit(X, (y + 1) % 4)
    np.testing.assert_array_equal(relabelled.transform(X), fitted["dec"].transform(X))


def test_transformer_is_the_estimator_with_a_transformer_encoder(fitted, data):
    from norank import NoRankEmbedder

    X, y, X_new = data
    oracle = NoRankEmbedder(encoder="transformer", random_state=0, **FAST["transformer"]).fit(X, y)
    np.testing.assert_array_equal(fitted["transformer"].transform(X_new), oracle.transform(X_new))
    with pytest.raises(ValueError, match="may not set"):
        make_baseline("transformer", encoder="mlp").fit(X, y)


def test_transformer_without_params_trains_with_its_own_settings(data, monkeypatch):
    from norank.baselines import transformer as T

    X, y, X_new = data
    monkeypatch.setattr(T, "SETTINGS", dict(FAST["transformer"]))
    own = T.TransformerBaseline(random_state=0).fit(X, y)
    assert own.embedder_.epochs == FAST["transformer"]["epochs"]
    explicit = T.TransformerBaseline(dict(FAST["transformer"]), random_state=0).fit(X, y)
    np.testing.assert_array_equal(own.transform(X_new), explicit.transform(X_new))
