import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import norank.neighbors as nb
from norank import faiss_search
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


def _stable_smallest(values, k):
    """Oracle: stable argsort of each row (equal values keep index order), the first k."""
    ind = np.argsort(values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, ind, 1), ind


@pytest.mark.parametrize("n", [2000, 2017])  # a whole number of groups, and a partial last group
@pytest.mark.parametrize("shift", ["none", "offset", "clamped"])
def test_smallest_distances_matches_stable_sort(n, shift):
    import torch

    # Small integers: ties everywhere (group minima, the k-th place); exact in float32.
    rng = np.random.default_rng(6)
    p = rng.integers(-3, 12, size=(40, n)).astype(np.float32)
    p[:5] = 7.0  # whole rows of one value
    p[5, ::97] = -3.0  # a few minima spread over groups
    offset = {"none": None, "offset": rng.integers(0, 5, (40, 1)), "clamped": rng.integers(-8, 2, (40, 1))}[shift]
    f = p if offset is None else np.maximum(p + offset.astype(np.float32), 0)
    for k in (1, 6, 14, 60):  # up to 14 the rows are wide enough to be screened by group minima; 60 uses topk
        assert ((k + 1) * nb.GROUP * 4 <= n) == (k <= 14)
        vals, idx = nb.smallest_distances(
            torch.from_numpy(p), k, None if offset is None else torch.from_numpy(offset.astype(np.float32))
        )
        ref_vals, ref_idx = _stable_smallest(f, k)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        np.testing.assert_array_equal(vals.numpy(), ref_vals)


def test_candidates_hold_the_smallest_values():
    import torch

    rng = np.random.default_rng(7)
    p = torch.from_numpy(rng.standard_normal((30, 3001)))
    p[:, 100:110] = -10.0  # the smallest values all in one group's neighbourhood
    for m in (1, 5, 11):
        idx = nb._candidates(p, m)
        assert idx.shape[1] < p.shape[1] and bool((idx.diff(dim=1) > 0).all())  # screened, ascending
        inside = p.gather(1, idx)
        outside = p.clone()
        outside.scatter_(1, idx, float("inf"))
        mth = inside.sort(dim=1).values[:, m - 1]
        assert bool((outside.min(1).values >= mth).all())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_search_matches_brute_force_with_ties(dtype):
    # Integer grid points: duplicates and equal distances at the k-th place, exact in both dtypes.
    rng = np.random.default_rng(8)
    r = rng.integers(0, 4, size=(3001, 3)).astype(dtype)
    q = rng.integers(0, 4, size=(60, 3)).astype(dtype)
    for k in (1, 10):
        ref_dist, ref_ind = _brute(q, r, k)
        dist, ind = kneighbors(q, r, k, backend="torch")
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-6)
    sub = r[:1500]
    dist, ind = kneighbors(sub, sub, 5, exclude_self=True, backend="torch", chunk_size=128)
    np.testing.assert_array_equal(ind, _brute(sub, sub, 5, exclude_self=True)[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parallel_search_is_exact_bounded_and_restores_threads(monkeypatch, dtype):
    import torch

    q, r = _data(n_ref=2500, n_query=70, d=6, dtype=dtype, seed=9)
    seen = []
    real = nb.squared_distances

    def spy(a, b, *args, **kwargs):
        seen.append((a.shape[0] * b.shape[0], torch.get_num_threads()))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(nb, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(nb, "CHUNK_ELEMENTS", 40_000)
    monkeypatch.setattr(nb, "squared_distances", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        dist, ind = kneighbors(q, r, 8, backend="torch")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    ref_dist, ref_ind = _brute(q, r, 8)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # Two workers, one block each: both together within the budget's bytes; one torch thread per worker.
    budget_elements = 40_000 * 8 // np.dtype(dtype).itemsize
    assert len(seen) > 2 and all(threads == 1 for _, threads in seen)
    assert 2 * max(size for size, _ in seen) <= budget_elements


def test_partial_distances_plus_row_norms_are_the_distances():
    import torch

    q, r = (torch.from_numpy(a) for a in _data(n_ref=50, n_query=7, seed=10))
    partial = nb.squared_distances(q, r, partial=True)
    full = nb.squared_distances(q, r)
    torch.testing.assert_close((partial + (q * q).sum(1, keepdim=True)).clamp_min(0), full)


@needs_faiss
@pytest.mark.parametrize("n_query", [3, 300])  # below and above faiss's BLAS threshold
def test_faiss_search_restores_its_settings(monkeypatch, n_query):
    import faiss

    q, r = _data(n_ref=2000, n_query=n_query, d=16, dtype=np.float32, seed=11)
    settings = {name: getattr(faiss.cvar, name) for name in faiss_search._FAISS_SETTINGS}
    dist, ind = kneighbors(q, r, 6, backend="faiss")
    assert {name: getattr(faiss.cvar, name) for name in faiss_search._FAISS_SETTINGS} == settings
    ref_dist, ref_ind = _brute(q, r, 6)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4)
    monkeypatch.delattr(faiss, "knn")  # older faiss: through an IndexFlatL2
    np.testing.assert_array_equal(kneighbors(q, r, 6, backend="faiss")[1], ref_ind)


@needs_faiss
def test_faiss_orders_equal_returned_distances_by_index():
    rng = np.random.default_rng(12)
    r = rng.integers(0, 3, size=(400, 2)).astype(np.float32)
    q = rng.integers(0, 3, size=(30, 2)).astype(np.float32)
    dist, ind = kneighbors(q, r, 5, backend="faiss")
    ref_dist, _ = _brute(q, r, 5)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-6)
    d = np.round(dist, 5)
    same = d[:, 1:] == d[:, :-1]
    assert same.any() and np.all(ind[:, 1:][same] > ind[:, :-1][same])
