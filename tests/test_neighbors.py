import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import norank.neighbors as nb
from norank.neighbors import EmbeddingIndex, kneighbors

needs_faiss = pytest.mark.skipif(not nb.faiss_available(), reason="faiss not installed")


def _data(n_ref=300, n_query=40, d=8, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_query, d)).astype(dtype), rng.standard_normal((n_ref, d)).astype(dtype)


def _brute(q, r, k, exclude_self=False):
    """Stable argsort of exact float64 distances: equal distances ordered by lower index."""
    d = np.sqrt(((q[:, None, :].astype(np.float64) - r[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    ind = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, ind, 1), ind


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_matches_sklearn(dtype):
    q, r = _data(dtype=dtype)
    dist, ind = kneighbors(q, r, 7, backend="torch")
    ref_dist, ref_ind = NearestNeighbors(n_neighbors=7).fit(r).kneighbors(q)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4 if dtype == np.float32 else 1e-9)
    assert dist.dtype == dtype and ind.dtype == np.int64
    assert np.all(np.diff(dist, axis=1) >= 0)


@needs_faiss
def test_faiss_matches_torch_and_sklearn():
    q, r = _data(n_ref=500, n_query=60, d=16, seed=1)
    d_t, i_t = kneighbors(q, r, 10, backend="torch")
    d_f, i_f = kneighbors(q, r, 10, backend="faiss")
    ref_ind = NearestNeighbors(n_neighbors=10).fit(r).kneighbors(q, return_distance=False)
    np.testing.assert_array_equal(i_t, ref_ind)
    np.testing.assert_array_equal(i_f, ref_ind)
    np.testing.assert_allclose(d_f, d_t, rtol=1e-4)


@pytest.mark.parametrize("backend", ["torch", pytest.param("faiss", marks=needs_faiss)])
def test_exclude_self_is_leave_one_out(backend):
    _, r = _data(n_ref=200, seed=2)
    dist, ind = kneighbors(r, r, 5, exclude_self=True, backend=backend)
    ref_dist, ref_ind = NearestNeighbors(n_neighbors=5).fit(r).kneighbors()  # X=None: self excluded
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4)
    assert not np.any(ind == np.arange(len(r))[:, None])


def test_ties_broken_by_lower_index_across_chunks():
    # Integer grid points: many exactly equal distances, also at the k-th place.
    rng = np.random.default_rng(3)
    r = rng.integers(0, 3, size=(120, 2)).astype(np.float64)
    q = rng.integers(0, 3, size=(25, 2)).astype(np.float64)
    ref_dist, ref_ind = _brute(q, r, 9)
    for chunk in (None, 1, 4):
        dist, ind = kneighbors(q, r, 9, backend="torch", chunk_size=chunk)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_allclose(dist, ref_dist, atol=1e-12)
    dist, ind = kneighbors(r, r, 9, exclude_self=True, backend="torch", chunk_size=7)
    np.testing.assert_array_equal(ind, _brute(r, r, 9, exclude_self=True)[1])


def test_select_smallest_orders_equal_values_by_index():
    import torch

    d = torch.tensor([[2.0, 1.0, 1.0, 0.5, 1.0], [3.0, 3.0, 3.0, 3.0, 0.0]])
    vals, idx = nb.select_smallest(d, 3)
    assert idx.tolist() == [[3, 1, 2], [4, 0, 1]]
    assert vals.tolist() == [[0.5, 1.0, 1.0], [0.0, 3.0, 3.0]]


def test_memory_is_bounded_by_the_element_budget(monkeypatch):
    q, r = _data(n_ref=250, n_query=90)
    seen = []
    real = nb.squared_distances

    def spy(a, b, *args, **kwargs):
        seen.append((a.shape[0], b.shape[0]))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(nb, "CHUNK_ELEMENTS", 2000)
    monkeypatch.setattr(nb, "squared_distances", spy)
    _, ind = kneighbors(q, r, 3, backend="torch")
    assert len(seen) == 12 and max(rows * cols for rows, cols in seen) <= 2000
    np.testing.assert_array_equal(ind, _brute(q, r, 3)[1])


def test_auto_and_missing_faiss(monkeypatch):
    q, r = _data()
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    assert not nb.faiss_available()
    with pytest.raises(ValueError, match="pip install"):
        kneighbors(q, r, 3, backend="faiss")
    _, ind = kneighbors(q, r, 3, backend="auto")
    np.testing.assert_array_equal(ind, _brute(q, r, 3)[1])


@pytest.mark.parametrize("writeable", [True, False])
def test_inputs_not_modified(writeable):
    q, r = _data()
    q_copy, r_copy = q.copy(), r.copy()
    q.flags.writeable = writeable
    r.flags.writeable = writeable
    for backend in ["torch"] + (["faiss"] if nb.faiss_available() else []):
        kneighbors(q, r, 4, backend=backend)
        kneighbors(r, r, 4, exclude_self=True, backend=backend)
    np.testing.assert_array_equal(q, q_copy)
    np.testing.assert_array_equal(r, r_copy)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda q, r: kneighbors(q[0], r, 3), ValueError, "2-D"),
        (lambda q, r: kneighbors(q, r[:, :5], 3), ValueError, "features"),
        (lambda q, r: kneighbors(np.where(q > 1, np.nan, q), r, 3), ValueError, "NaN"),
        (lambda q, r: kneighbors(q, r, 0), ValueError, "k=0"),
        (lambda q, r: kneighbors(q, r, len(r) + 1), ValueError, "between 1 and"),
        (lambda q, r: kneighbors(r, r, len(r), exclude_self=True), ValueError, "minus one"),
        (lambda q, r: kneighbors(q, r, 2.0), TypeError, "int"),
        (lambda q, r: kneighbors(q, r, 3, backend="annoy"), ValueError, "backend"),
        (lambda q, r: kneighbors(q, r, 3, exclude_self=True), ValueError, "same array"),
        (lambda q, r: kneighbors(q, r, 3, chunk_size=0), ValueError, "chunk_size"),
        (lambda q, r: kneighbors(q.astype(str), r, 3), TypeError, "numeric"),
    ],
)
def test_validation(call, error, match):
    q, r = _data()
    with pytest.raises(error, match=match):
        call(q, r)


def test_embedding_index_query_search_and_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    X_ref, X_new = rng.standard_normal((150, 12)), rng.standard_normal((20, 12))
    y_ref = np.array(["cat", "dog", "owl"])[rng.integers(0, 3, 150)]
    model = PCA(n_components=5, random_state=0).fit(X_ref)  # anything with transform
    index = EmbeddingIndex.from_model(model, X_ref, y_ref, backend="torch")
    assert len(index) == 150

    dist, ind = index.search(model, X_new, k=4)
    ref_dist, ref_ind = kneighbors(model.transform(X_new), model.transform(X_ref), 4, backend="torch")
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist)
    np.testing.assert_array_equal(index.search(None, model.transform(X_new), 4)[1], ref_ind)
    np.testing.assert_array_equal(index.query(model.transform(X_new), 4)[1], ref_ind)

    index.save(tmp_path / "index")
    loaded = EmbeddingIndex.load(tmp_path / "index.npz")
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    np.testing.assert_array_equal(loaded.labels, y_ref)
    assert loaded.backend == "torch"
    np.testing.assert_array_equal(loaded.query(model.transform(X_new), 4)[1], ref_ind)

    unlabelled = EmbeddingIndex(model.transform(X_ref))
    unlabelled.save(tmp_path / "plain.npz")
    assert EmbeddingIndex.load(tmp_path / "plain.npz").labels is None


def test_embedding_index_errors_and_copies():
    Z = np.random.default_rng(5).standard_normal((30, 4))
    Z_copy = Z.copy()
    index = EmbeddingIndex(Z)
    Z[:] = 0  # the index keeps its own copy
    np.testing.assert_array_equal(index.embeddings, Z_copy)
    with pytest.raises(TypeError, match="transform"):
        EmbeddingIndex.from_model(object(), Z)
    with pytest.raises(ValueError, match="one entry per embedding"):
        EmbeddingIndex(Z, labels=np.arange(3))
    with pytest.raises(TypeError, match="pickle"):
        EmbeddingIndex(Z, labels=np.array([{"a": 1}] * 30, dtype=object))
    with pytest.raises(ValueError, match="dimensions"):
        index.query(np.zeros((2, 5)), 1)
    with pytest.raises(ValueError, match="backend"):
        EmbeddingIndex(Z, backend="gpu")
