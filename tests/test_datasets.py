"""norank.datasets: real loaders against the offline copies, connectivity against nilearn,
simulated recipes against their formulas and k-means, and load_file round trips."""

import dataclasses
import os
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest

from norank.datasets import (
    NAMES,
    Dataset,
    connectivity_from_timeseries,
    load,
    load_abide_timeseries_sample,
    load_file,
    make_crystal,
    make_galaxy,
    triu_to_matrices,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def data_dir(monkeypatch):
    """The offline copies: $NORANK_DATA_DIR (CI sets it), else the repository's sibling shared/data."""
    path = Path(os.environ.get("NORANK_DATA_DIR") or SHARED)
    assert (path / "olivetti_faces.npz").is_file(), f"offline data not found in {path}; set NORANK_DATA_DIR"
    monkeypatch.setenv("NORANK_DATA_DIR", str(path))
    return path


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No local copies anywhere: data_dir and $NORANK_DATA_DIR point at an empty folder."""
    monkeypatch.setenv("NORANK_DATA_DIR", str(tmp_path))
    return tmp_path


# ------------------------------------------------------------------------------------ load(name)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: olivetti, lfw, abide, digits, galaxy, crystal"):
        load("mnist")
    with pytest.raises(TypeError, match="name must be a str"):
        load(3)


def test_olivetti_matches_sklearn_scaling(data_dir):
    ds = load("olivetti")  # through $NORANK_DATA_DIR
    raw = np.load(data_dir / "olivetti_faces.npz")
    assert ds.X.shape == (400, 64, 64) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, raw["images"].astype(np.float32) / np.float32(242))
    # sklearn's first pixels of face 0, as documented with the copy.
    np.testing.assert_allclose(ds.X[0].ravel()[:5], [0.30991736, 0.3677686, 0.41735536, 0.44214877, 0.5289256])
    assert ds.y.dtype == np.int64 and np.array_equal(np.bincount(ds.y), np.full(40, 10))
    assert len(ds.target_names) == 40 and ds.meta == {}


def test_lfw_shape_and_class_counts(data_dir):
    ds = load("lfw", data_dir=data_dir)
    assert ds.X.shape == (1288, 50, 37) and ds.X.dtype == np.float32
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    assert np.bincount(ds.y).tolist() == [77, 236, 121, 530, 109, 71, 144]
    assert ds.target_names[3] == "George W Bush" and len(ds.target_names) == 7


def test_abide_matrices_labels_and_meta(data_dir):
    ds = load("abide", data_dir=data_dir)
    raw = np.load(data_dir / "abide_pcp_cpac_filtnoglobal_ho_corr.npz")
    assert ds.X.shape == (871, 111, 111) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, ds.X.transpose(0, 2, 1))
    np.testing.assert_array_equal(ds.X[:, np.arange(111), np.arange(111)], 1.0)
    iu = np.triu_indices(111, k=1)
    np.testing.assert_array_equal(ds.X[:, iu[0], iu[1]], raw["corr_triu"])
    assert np.bincount(ds.y).tolist() == [468, 403] and ds.target_names[1] == "ASD"
    np.testing.assert_array_equal(ds.y, raw["dx_group"] == 1)
    assert set(ds.meta) >= {"site", "sex", "age", "sub_id"}
    assert all(len(v) == 871 for v in ds.meta.values())
    assert len(np.unique(ds.meta["site"])) == 20 and (ds.meta["site"] == "NYU").sum() == 172
    # A constant ROI correlates with nothing.
    s, r = np.argwhere(raw["constant_roi"])[0]
    off = np.delete(ds.X[s, r], r)
    assert np.all(off == 0)


def test_digits_is_sklearn_bundled():
    from sklearn.datasets import load_digits

    ds = load("digits")
    ref = load_digits()
    assert ds.X.shape == (1797, 8, 8) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, ref.images)
    np.testing.assert_array_equal(ds.y, ref.target)


def test_explicit_data_dir_wins_over_env(data_dir, tmp_path):
    np.savez(tmp_path / "olivetti_faces.npz", images=np.full((400, 64, 64), 121, np.uint8), target=np.arange(400) // 10)
    ds = load("olivetti", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.X, np.float32(0.5))


def test_local_copy_layout_is_checked(offline):
    np.savez(offline / "olivetti_faces.npz", faces=np.zeros((400, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"lacks the keys \['images', 'target'\] \(keys present: \['faces'\]\)"):
        load("olivetti")
    # A small ABIDE-style file without n_rois: R is inferred from the triangle length.
    triu = np.random.default_rng(0).uniform(-1, 1, (3, 6)).astype(np.float32)
    per_subject = dict(site=np.array(["A", "B", "A"]), sex=np.ones(3), age=np.ones(3), sub_id=np.arange(3))
    np.savez(
        offline / "abide_pcp_cpac_filtnoglobal_ho_corr.npz",
        corr_triu=triu,
        label=np.array([0, 1, 1]),
        file_id=np.array(["a", "b", "c"]),
        **per_subject,
    )
    ds = load("abide")
    assert ds.X.shape == (3, 4, 4)
    np.testing.assert_array_equal(ds.X[:, 0, 1:], triu[:, :3])
    np.testing.assert_array_equal(ds.X[:, 1:, 0], triu[:, :3])


@pytest.mark.parametrize(
    "name, module, fetcher, file_name",
    [
        ("olivetti", "sklearn.datasets", "fetch_olivetti_faces", "olivetti_faces.npz"),
        ("lfw", "sklearn.datasets", "fetch_lfw_people", "lfw_people_min70.npz"),
        ("abide", "nilearn.datasets", "fetch_abide_pcp", "abide_pcp_cpac_filtnoglobal_ho_corr.npz"),
    ],
)
def test_offline_fetch_error_names_the_fix(offline, monkeypatch, name, module, fetcher, file_name):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(f"{module}.{fetcher}", no_network)
    with pytest.warns(UserWarning, match=f"downloading with {module}.{fetcher}"):
        with pytest.raises(FileNotFoundError) as info:
            load(name, data_dir=offline)
    message = str(info.value)
    assert "NORANK_DATA_DIR" in message and "data_dir" in message and file_name in message
    assert "network is unreachable" in message


def test_online_olivetti_path_says_so_and_converts(offline, monkeypatch):
    from sklearn.utils import Bunch

    calls = []
    faces = np.random.default_rng(0).random((400, 64, 64))

    def fake(**kwargs):
        calls.append(kwargs)
        return Bunch(images=faces, target=np.arange(400) // 10)

    monkeypatch.setattr("sklearn.datasets.fetch_olivetti_faces", fake)
    with pytest.warns(UserWarning, match="olivetti_faces.npz not found"):
        ds = load("olivetti")
    assert calls == [{"shuffle": False}]
    assert ds.X.dtype == np.float32 and np.allclose(ds.X, faces)


def test_online_abide_path_uses_the_documented_pipeline(offline, monkeypatch):
    from sklearn.utils import Bunch

    rng = np.random.default_rng(0)
    series = [rng.standard_normal((t, 111)) for t in (80, 120, 95)]
    pheno = {
        "DX_GROUP": np.array([1, 2, 1]),
        "SITE_ID": np.array(["NYU", "UM_1", "NYU"]),
        "SEX": np.array([1, 2, 1]),
        "AGE_AT_SCAN": np.array([10.5, 22.0, 31.25]),
        "SUB_ID": np.array([50001, 50002, 50003]),
        "FILE_ID": np.array(["NYU_0050001", "UM_1_0050002", "NYU_0050003"]),
    }
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return Bunch(rois_ho=series, phenotypic=pheno)

    monkeypatch.setattr("nilearn.datasets.fetch_abide_pcp", fake)
    with pytest.warns(UserWarning, match="fetch_abide_pcp"):
        ds = load("abide")
    assert calls == [
        dict(
            pipeline="cpac",
            band_pass_filtering=True,
            global_signal_regression=False,
            derivatives=["rois_ho"],
            quality_checked=True,
        )
    ]
    np.testing.assert_array_equal(ds.X, connectivity_from_timeseries(series))
    assert ds.y.tolist() == [1, 0, 1] and ds.meta["site"].tolist() == ["NYU", "UM_1", "NYU"]
    assert ds.meta["age"].dtype == np.float32 and ds.meta["sub_id"].tolist() == [50001, 50002, 50003]


def test_dataset_is_frozen_and_checks_lengths():
    ds = load("crystal")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.X = None
    with pytest.raises(ValueError, match="y has 3 entries but X has 2"):
        Dataset("x", np.zeros((2, 3)), np.zeros(3, np.int64), np.array(["a"]))


# --------------------------------------------------------------------------------- connectivity


def test_connectivity_reproduces_abide_file_and_nilearn(data_dir):
    from nilearn.connectome import ConnectivityMeasure

    sample = load_abide_timeseries_sample(data_dir)
    series = list(sample.meta["timeseries"])
    before = [s.copy() for s in series]
    C = connectivity_from_timeseries(series)
    assert C.shape == (20, 111, 111) and C.dtype == np.float32
    for s, b in zip(series, before, strict=True):  # the caller's series are untouched
        np.testing.assert_array_equal(s, b)

    triu = np.load(data_dir / "abide_pcp_cpac_filtnoglobal_ho_corr.npz")["corr_triu"]
    np.testing.assert_allclose(C, triu_to_matrices(triu[sample.meta["index_in_corr_file"]], 111), atol=1e-6)
    oracle = ConnectivityMeasure(kind="correlation").fit_transform(series)
    np.testing.assert_allclose(C, oracle, atol=2e-6)
    np.testing.assert_array_equal(sample.X, C)
    dx_group = np.load(data_dir / "abide_pcp_cpac_filtnoglobal_ho_timeseries_sample.npz")["dx_group"]
    np.testing.assert_array_equal(sample.y, dx_group == 1)


def test_connectivity_constant_roi_and_stacked_input():
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(1)
    stack = rng.standard_normal((2, 40, 5))
    stack[1, :, 2] = 0.0  # a dead ROI
    C = connectivity_from_timeseries(stack)
    assert np.all(C[1, 2, [0, 1, 3, 4]] == 0) and C[1, 2, 2] == 1
    # Oracle: z-score, Ledoit-Wolf, rescale, by sklearn's estimator directly.
    z = (stack[0] - stack[0].mean(0)) / stack[0].std(0, ddof=1)
    cov = LedoitWolf().fit(z).covariance_
    ref = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(C[0], ref, atol=1e-6)


def test_connectivity_errors():
    with pytest.raises(ValueError, match="one 2-D array"):
        connectivity_from_timeseries(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="series 1 has 4 ROIs but series 0 has 3"):
        connectivity_from_timeseries([np.ones((10, 3)), np.ones((10, 4))])
    with pytest.raises(ValueError, match="at least 2"):
        connectivity_from_timeseries([np.ones((1, 3))])
    with pytest.raises(ValueError, match="empty"):
        connectivity_from_timeseries([])


# ------------------------------------------------------------------------------------ simulated


def _kmeans_ari(ds):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # a small problem: extra threads only contend with parallel test workers
        labels = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(ds.X.reshape(len(ds.X), -1))
    return adjusted_rand_score(ds.y, labels)


def _cheap_features(X):
    """Translation- and rotation-invariant: radial FFT power spectrum and upper intensity quantiles."""
    F = np.abs(np.fft.fftshift(np.fft.fft2(X - X.mean(axis=(1, 2), keepdims=True)), axes=(1, 2)))
    ii, jj = np.indices(X.shape[1:])
    ring = np.minimum(np.hypot(ii - 32, jj - 32).astype(int), 23).ravel()
    F = F.reshape(len(X), -1)
    power = np.stack([F[:, ring == k].mean(axis=1) for k in range(24)], axis=1)
    quant = np.quantile(X.reshape(len(X), -1), np.linspace(0.5, 1.0, 11), axis=1).T
    return np.hstack([np.log1p(power), quant])


@pytest.mark.parametrize("make, n", [(make_galaxy, 125), (make_crystal, 100)])
@pytest.mark.parametrize("hard", [False, True])
def test_simulated_shapes_range_and_seeding(make, n, hard):
    ds = make(hard=hard)
    assert ds.X.shape == (4 * n, 64, 64) and ds.X.dtype == np.float32
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert ds.y.dtype == np.int64 and np.bincount(ds.y).tolist() == [n] * 4 and len(ds.target_names) == 4
    np.testing.assert_array_equal(make(hard=hard, random_state=42).X, ds.X)
    small = [make(n_per_class=3, hard=hard, random_state=seed).X for seed in (0, 1)]
    assert not np.array_equal(*small)
    assert ds.name == make.__name__.removeprefix("make_") + ("-hard" if hard else "")


def test_load_routes_simulated_names_and_seed():
    np.testing.assert_array_equal(load("galaxy-hard").X, make_galaxy(hard=True).X)
    np.testing.assert_array_equal(load("crystal", random_state=5).X, make_crystal(random_state=5).X)


def test_galaxy_easy_follows_the_paper_formulas():
    ds = make_galaxy()
    g = np.linspace(-1, 1, 64)
    x, y = np.meshgrid(g, g)
    r, theta = np.hypot(x, y), np.arctan2(y, x)
    templates = [
        np.exp(-4 * r**2),
        np.exp(-3 * r**2) * (1 + 0.5 * np.sin(6 * theta + 10 * r)),
        np.exp(-6 * r**2) * np.where(r > 0.6, 0.2, 1.0),
    ]
    for c, t in enumerate(templates):
        imgs = ds.X[ds.y == c]
        inside = (t > 0.2) & (t < 0.8)  # clipping cannot bias these pixels
        assert np.abs(np.median(imgs, axis=0) - t)[inside].max() < 0.03
        assert abs((imgs - t)[:, inside].std() - 0.05) < 0.005  # the N(0, 0.05) noise
    irregular = ds.X[ds.y == 3]
    assert abs(irregular.mean() - 0.5) < 0.01 and abs(irregular.std() - np.sqrt(1 / 12)) < 0.01


def test_crystal_easy_follows_the_paper_patterns():
    ds = make_crystal()
    i, j = np.indices((64, 64))
    patterns = [
        (i % 8 < 2) | (j % 8 < 2),
        (i % 10 < 2) & (j % 10 < 2),
        np.broadcast_to(i % 6 == 0, (64, 64)),
        np.broadcast_to(j % 12 < 2, (64, 64)),
    ]
    for c, p in enumerate(patterns):
        assert np.array_equal(np.median(ds.X[ds.y == c], axis=0) > 0.5, p)


@pytest.mark.parametrize("make", [make_galaxy, make_crystal])
def test_easy_sets_are_separable_by_raw_pixel_kmeans(make):
    assert _kmeans_ari(make()) == pytest.approx(1.0)


@pytest.mark.parametrize("make", [make_galaxy, make_crystal])
def test_hard_sets_defeat_kmeans_but_stay_learnable(make):
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    ds = make(hard=True)
    assert _kmeans_ari(ds) < 0.3
    F = _cheap_features(ds.X)
    F_tr, F_te, y_tr, y_te = train_test_split(F, ds.y, test_size=0.3, stratify=ds.y, random_state=0)
    accuracy = make_pipeline(StandardScaler(), SVC()).fit(F_tr, y_tr).score(F_te, y_te)
    assert accuracy > 0.6  # chance is 0.25


@pytest.mark.parametrize("make, classes", [(make_galaxy, [0, 1, 2]), (make_crystal, [0, 1, 2, 3])])
def test_hard_sets_vary_per_sample(make, classes):
    easy, hard = make(n_per_class=30), make(n_per_class=30, hard=True)
    for c in classes:  # the easy irregular galaxy is pure U(0, 1) noise, so it is left out
        spread_easy = easy.X[easy.y == c].std(axis=0).mean()
        spread_hard = hard.X[hard.y == c].std(axis=0).mean()
        assert spread_hard > 1.5 * spread_easy  # samples differ far beyond the added noise


def _orientation_concentration(angles):
    """|mean exp(2i angle)|: 1 when all axes point one way, near 0 when orientations are uniform."""
    return np.abs(np.exp(2j * angles).mean())


def test_hard_sets_randomise_orientation():
    gal = make_galaxy(n_per_class=60, hard=True)
    ii, jj = np.indices((64, 64))
    w = gal.X[gal.y == 0]  # ellipticals: axis from the intensity second moments
    w = w / w.sum(axis=(1, 2), keepdims=True)
    ci, cj = (w * ii).sum(axis=(1, 2), keepdims=True), (w * jj).sum(axis=(1, 2), keepdims=True)
    mii, mjj = (w * (ii - ci) ** 2).sum(axis=(1, 2)), (w * (jj - cj) ** 2).sum(axis=(1, 2))
    mij = (w * (ii - ci) * (jj - cj)).sum(axis=(1, 2))
    assert _orientation_concentration(0.5 * np.arctan2(2 * mij, mii - mjj)) < 0.4

    cry = make_crystal(n_per_class=60, hard=True)
    stripes = cry.X[cry.y == 2]  # tetragonal: one line family, its FFT peak is normal to the lines
    F = np.abs(np.fft.fft2(stripes - stripes.mean(axis=(1, 2), keepdims=True)))
    F[:, 0, 0] = 0
    k = np.fft.fftfreq(64)
    peak_i, peak_j = np.unravel_index(F.reshape(len(F), -1).argmax(axis=1), (64, 64))
    assert _orientation_concentration(np.arctan2(k[peak_j], k[peak_i])) < 0.4
    easy = make_crystal(n_per_class=10)
    Fe = np.abs(np.fft.fft2(easy.X[easy.y == 2] - 0.5))
    Fe[:, 0, 0] = 0
    pe_i, pe_j = np.unravel_index(Fe.reshape(len(Fe), -1).argmax(axis=1), (64, 64))
    assert _orientation_concentration(np.arctan2(k[pe_j], k[pe_i])) > 0.99  # the easy lines never turn


def test_simulated_argument_errors():
    with pytest.raises(ValueError, match="n_per_class must be a positive int"):
        make_galaxy(n_per_class=0)
    with pytest.raises(TypeError, match="random_state must be"):
        make_crystal(random_state="seed")
    np.testing.assert_array_equal(
        make_crystal(n_per_class=2, hard=True, random_state=np.random.default_rng(3)).X,
        make_crystal(n_per_class=2, hard=True, random_state=3).X,
    )


# ------------------------------------------------------------------------------------ load_file


@pytest.fixture
def stack():
    rng = np.random.default_rng(0)
    X = rng.random((12, 4, 3)).astype(np.float32)
    names = np.array(["cat", "dog", "eel"])
    return X, names[np.arange(12) % 3]


def _check(ds, X, labels):
    np.testing.assert_array_equal(ds.X, X)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.target_names[ds.y], labels)
    assert ds.y.min() == 0 and ds.y.max() == len(ds.target_names) - 1


def test_load_file_npy_and_mmap(tmp_path, stack):
    X, _ = stack
    np.save(tmp_path / "x.npy", X)
    ds = load_file(tmp_path / "x.npy")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y is None and len(ds.target_names) == 0 and ds.name == "x"
    mm = load_file(str(tmp_path / "x.npy"), mmap=True).X
    assert isinstance(mm, np.memmap) and not mm.flags.writeable
    np.testing.assert_array_equal(mm, X)
    with pytest.raises(ValueError, match="X only"):
        load_file(tmp_path / "x.npy", y_key="y")


def test_load_file_npz_keys(tmp_path, stack):
    X, labels = stack
    np.savez(tmp_path / "a.npz", X=X, y=labels)
    _check(load_file(tmp_path / "a.npz"), X, labels)
    codes = np.searchsorted(["cat", "dog", "eel"], labels)
    np.savez(tmp_path / "b.npz", images=X, target=codes, target_names=np.array(["cat", "dog", "eel"]))
    _check(load_file(tmp_path / "b.npz"), X, labels)
    np.savez(tmp_path / "c.npz", feats=X, lab=codes + 10)
    ds = load_file(tmp_path / "c.npz", x_key="feats", y_key="lab")
    assert ds.target_names.tolist() == ["10", "11", "12"] and np.array_equal(ds.y, codes)
    with pytest.raises(ValueError, match=r"keys present: \['feats', 'lab'\]"):
        load_file(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"no y key 'label'.*keys present"):
        load_file(tmp_path / "c.npz", x_key="feats", y_key="label")
    np.savez(tmp_path / "d.npz", X=X)
    assert load_file(tmp_path / "d.npz").y is None


def test_load_file_mat(tmp_path, stack):
    import scipy.io

    X, labels = stack
    codes = np.searchsorted(["cat", "dog", "eel"], labels) + 1  # MATLAB-style 1-based column
    scipy.io.savemat(tmp_path / "m.mat", {"X": X.astype(np.float64), "y": codes[:, None]})
    ds = load_file(tmp_path / "m.mat")
    np.testing.assert_allclose(ds.X, X)
    assert ds.target_names.tolist() == ["1", "2", "3"] and np.array_equal(ds.y, codes - 1)
    cell = np.empty((12, 1), dtype=object)
    cell[:, 0] = list(labels)
    scipy.io.savemat(tmp_path / "s.mat", {"data": X, "labels": cell})
    _check(load_file(tmp_path / "s.mat", x_key="data", y_key="labels"), X, labels)


def test_load_file_hdf5(tmp_path, stack):
    import h5py

    X, labels = stack
    for name in ("h.h5", "h.hdf5"):
        with h5py.File(tmp_path / name, "w") as f:
            f["group/X"] = X
            f["y"] = labels.astype("S")
        with pytest.raises(ValueError, match=r"keys present: \['group/X', 'y'\]"):
            load_file(tmp_path / name)
        _check(load_file(tmp_path / name, x_key="group/X"), X, labels)


def test_load_file_csv(tmp_path, stack):
    X2 = stack[0].reshape(12, -1)[:, :3]
    labels = stack[1]
    with open(tmp_path / "h.csv", "w") as fh:
        fh.write("a,species,b,c\n")
        for row, lab in zip(X2, labels, strict=True):
            fh.write(f"{row[0]:.9g},{lab},{row[1]:.9g},{row[2]:.9g}\n")
    _check(load_file(tmp_path / "h.csv", y_key="species"), X2, labels)
    _check(load_file(tmp_path / "h.csv", y_key=1), X2, labels)
    with pytest.raises(TypeError, match="column 'species'.*not numeric.*y_key='species'"):
        load_file(tmp_path / "h.csv")
    with pytest.raises(ValueError, match=r"no label column 'kind'.*\['a', 'species', 'b', 'c'\]"):
        load_file(tmp_path / "h.csv", y_key="kind")
    np.savetxt(tmp_path / "n.csv", np.column_stack([X2, np.arange(12) % 2]), delimiter=",")
    ds = load_file(tmp_path / "n.csv", y_key=-1)
    np.testing.assert_allclose(ds.X, X2)
    np.testing.assert_array_equal(ds.y, np.arange(12) % 2)
    assert load_file(tmp_path / "n.csv").X.shape == (12, 4)


def test_load_file_csv_empty_first_cell_is_a_missing_value_not_a_header(tmp_path):
    (tmp_path / "e.csv").write_text(",1.5,2,0\n3,4,5,1\n6,7,8,0\n")
    ds = load_file(tmp_path / "e.csv", y_key=-1)
    assert ds.X.shape == (3, 3)  # no sample lost to a guessed header
    np.testing.assert_array_equal(ds.X, np.genfromtxt(tmp_path / "e.csv", delimiter=",")[:, :3].astype(np.float32))
    assert np.array_equal(ds.y, [0, 1, 0])
    # pandas writes an index column with an empty header cell: the other header cells still mark a header.
    (tmp_path / "p.csv").write_text(",a,b\n0,1.5,2\n1,3,4\n")
    np.testing.assert_array_equal(load_file(tmp_path / "p.csv").X, [[0, 1.5, 2], [1, 3, 4]])


def test_load_file_csv_label_column_index_as_text(tmp_path):
    np.savetxt(tmp_path / "n.csv", np.column_stack([np.arange(12.0).reshape(6, 2), np.arange(6) % 2]), delimiter=",")
    by_int = load_file(tmp_path / "n.csv", y_key=2)
    for text in ("2", "-1", " -1"):
        ds = load_file(tmp_path / "n.csv", y_key=text)  # what the CLI's --y-key passes for a file without header
        np.testing.assert_array_equal(ds.X, by_int.X)
        np.testing.assert_array_equal(ds.y, by_int.y)
    with pytest.raises(ValueError, match=r"y_key='3' is out of range for n.csv, which has 3 columns"):
        load_file(tmp_path / "n.csv", y_key="3")
    with pytest.raises(ValueError, match=r"no label column 'label'; columns: no header; use a column index 0..2"):
        load_file(tmp_path / "n.csv", y_key="label")


def test_load_file_csv_empty_label_is_refused(tmp_path):
    (tmp_path / "l.csv").write_text("x1,x2,label\n1,2,a\n3,4,\n5,6,b\n")
    with pytest.raises(ValueError, match=r"data row 2 of l.csv has an empty label \(column 2\)"):
        load_file(tmp_path / "l.csv", y_key="label")


def test_load_file_errors(tmp_path, stack):
    X, labels = stack
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_file(tmp_path / "missing.npz")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(ValueError, match=r"unsupported file type '.parquet'.*\.npy"):
        load_file(tmp_path / "x.parquet")
    np.savez(tmp_path / "s.npz", X=labels.reshape(12, 1))
    with pytest.raises(TypeError, match="not numeric"):
        load_file(tmp_path / "s.npz")
    np.savez(tmp_path / "n.npz", X=X, y=np.arange(5))
    with pytest.raises(ValueError, match="y has 5 labels but X has 12"):
        load_file(tmp_path / "n.npz")
    with pytest.raises(ValueError, match="mmap=True needs a .npy"):
        load_file(tmp_path / "n.npz", mmap=True)
    with pytest.raises(TypeError, match="path must be"):
        load_file(42)


def test_no_warning_when_local_copy_exists(data_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load("lfw").X.shape[0] == 1288
    assert set(NAMES) == {"olivetti", "lfw", "abide", "digits", "galaxy", "crystal", "galaxy-hard", "crystal-hard"}
