"""Row reads from inputs that stay on disk: the pread path must return exactly what indexing returns."""

import numpy as np
import pytest

from norank.lazy import PageReleaser, take_rows


@pytest.fixture
def stack(tmp_path):
    A = np.random.default_rng(0).normal(size=(600, 5, 7)).astype(np.float32)
    np.save(tmp_path / "a.npy", A)
    return A, np.load(tmp_path / "a.npy", mmap_mode="r")


@pytest.mark.parametrize("view", [slice(None), slice(100, None), slice(None, None, 3), slice(5, 500, 2)])
def test_scattered_rows_of_memmap_views_match_indexing(stack, view):
    A, mm = stack
    V = mm[view]
    releaser = PageReleaser(V)
    assert releaser.file is not None  # read from the file, not through the map
    idx = np.random.default_rng(1).integers(0, len(V), 250)  # repeats and any order
    got = take_rows(V, idx, releaser)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, A[view][idx])


def test_offset_float64_memmap_is_read_in_float64(tmp_path):
    B = np.random.default_rng(2).normal(size=(300, 9))
    path = tmp_path / "b.bin"
    w = np.memmap(path, dtype=np.float64, mode="w+", shape=B.shape, offset=12345)
    w[:] = B
    w.flush()
    m = np.memmap(path, dtype=np.float64, mode="r", shape=B.shape, offset=12345)[7:]
    idx = np.arange(0, 290, 4)
    rows = take_rows(m, idx, PageReleaser(m))
    assert rows.dtype == np.float64  # wide inputs are rounded only after the preprocessor centres them
    np.testing.assert_array_equal(rows, B[7:][idx])


def test_non_finite_rows_on_disk_are_refused(tmp_path):
    A = np.ones((50, 4), np.float32)
    A[17, 2] = np.nan
    np.save(tmp_path / "n.npy", A)
    mm = np.load(tmp_path / "n.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="NaN"):
        take_rows(mm, np.array([3, 17]), PageReleaser(mm))


def test_float64_memmap_with_a_large_offset_trains_like_the_array(tmp_path):
    """Rows read from a memory map keep float64 until the preprocessor has centred them."""
    from norank import NoRankEmbedder

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    X = rng.normal(size=(4, 30))[y] * 3 + rng.normal(size=(80, 30)) + 1e8
    np.save(tmp_path / "x.npy", X)
    params = dict(epochs=3, hidden_layer_sizes=(16,), embedding_dim=4, encoder="mlp", random_state=0, batch_size=32)
    in_memory = NoRankEmbedder(**params).fit(X, y).transform(X)
    mapped = NoRankEmbedder(**params).fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y).transform(X)
    np.testing.assert_allclose(mapped, in_memory, atol=1e-5)
