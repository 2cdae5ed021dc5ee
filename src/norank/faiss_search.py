"""The optional faiss back end of :func:`norank.neighbors.kneighbors`: exact L2 search in float32.

Kept apart from the torch search so that faiss (the ``norank[faiss]`` extra) is imported only here, and
only when a search asks for it.
"""

import contextlib
import threading

import numpy as np

__all__ = ["faiss_available", "faiss_knn"]

# faiss BLAS blocks: queries × references (16M float32 products = 64 MiB).
FAISS_BLOCKS = (1024, 16384)
_FAISS_SETTINGS = (
    "distance_compute_blas_threshold",
    "distance_compute_blas_query_bs",
    "distance_compute_blas_database_bs",
)
_FAISS = threading.Lock()


def faiss_available():
    """True when the optional faiss package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def faiss_knn(q, r, k, exclude_self):
    """The k nearest rows of `r` to each row of `q` (checked float arrays), as `kneighbors` returns them."""
    import faiss

    xq, xb = np.ascontiguousarray(q, dtype=np.float32), np.ascontiguousarray(r, dtype=np.float32)
    with _faiss_blocks(faiss, q.shape[1]):
        if hasattr(faiss, "knn"):  # searches the array itself: no copy into an index
            d2, ind = faiss.knn(xq, xb, k + int(exclude_self))
        else:
            index = faiss.IndexFlatL2(xb.shape[1])
            index.add(xb)
            d2, ind = index.search(xq, k + int(exclude_self))
    if exclude_self:
        is_self = ind == np.arange(len(q))[:, None]
        is_self[~is_self.any(1), -1] = True  # self pushed out by exact duplicates: drop the last one
        d2 = d2[~is_self].reshape(len(q), k)
        ind = ind[~is_self].reshape(len(q), k)
    if (d2[:, 1:] == d2[:, :-1]).any():  # equal distances: order them by index
        order = np.lexsort((ind, d2), axis=1)
        d2, ind = np.take_along_axis(d2, order, 1), np.take_along_axis(ind, order, 1)
    return np.sqrt(np.maximum(d2, 0.0)), ind.astype(np.int64, copy=False)


@contextlib.contextmanager
def _faiss_blocks(faiss, dim):
    """faiss's exact search through BLAS in few large blocks, restored afterwards.

    faiss's defaults (4096 queries × 1024 references per block, BLAS only from 128000 / dim
    queries) synchronise its threads twice per block and leave a few hundred queries to a much
    slower loop. `FAISS_BLOCKS` (64 MiB of float32 products) cuts the hand-overs to a handful; BLAS
    pays from about 16 queries on. These are faiss's global settings: one search at a time sets them.
    """
    wanted = dict(zip(_FAISS_SETTINGS, (16 * dim, *FAISS_BLOCKS), strict=True))
    with _FAISS:
        saved = {name: getattr(faiss.cvar, name) for name in wanted if hasattr(faiss.cvar, name)}
        try:
            for name in saved:
                setattr(faiss.cvar, name, wanted[name])
            yield
        finally:
            for name, value in saved.items():
                setattr(faiss.cvar, name, value)
