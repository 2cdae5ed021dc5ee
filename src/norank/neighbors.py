"""Exact Euclidean k-nearest neighbours on embeddings, memory bounded.

`kneighbors` scans the queries in chunks: each chunk's squared distances to every reference come from
one matrix product (``‖r‖² − 2 q·r``; the constant ``‖q‖²`` of a row is added only to the values kept),
so memory stays at the chunk blocks (128 MiB together by default) however many queries there are.
Big searches run one chunk per torch thread at a time. With faiss installed (the optional
``norank[faiss]`` extra) its exact L2 search (:mod:`norank.faiss_search`) can do the work instead.
`EmbeddingIndex` keeps reference embeddings (and labels) to search, saves them as a plain ``.npz`` and can
embed raw samples through a fitted model.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from norank.faiss_search import faiss_available, faiss_knn

__all__ = ["EmbeddingIndex", "faiss_available", "kneighbors"]

BACKENDS = ("auto", "torch", "faiss")
# Elements of one chunk's distance block (16M doubles = 128 MiB): chunk rows = budget // n_references.
# Bigger blocks mean fewer, larger tensor operations, which matters when the cores are shared.
CHUNK_ELEMENTS = 2**24
# Columns per group when `_candidates` screens a row by group minima.
GROUP = 32
# Multiply-adds below which a torch search stays in the calling thread (starting workers costs more).
PARALLEL_MIN_WORK = 2**24
_THREADS = threading.Lock()  # one multi-threaded search at a time changes torch's thread count


def _as_matrix(a, name, copy=False):
    """A 2-D finite float array (float32 kept, everything else float64), C-ordered and writeable.

    Shares the caller's buffer when nothing needs converting (the code here never writes to it);
    `copy=True` for arrays that are kept.
    """
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(
            f"{name} must be a numeric array, got dtype {a.dtype}; convert it with np.asarray(..., dtype=float)."
        )
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {a.shape}; reshape it with .reshape(len(a), -1)."
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); pass at least one sample with at least one feature.")
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    a = np.array(a, dtype=dtype, order="C", copy=True if copy or not a.flags.writeable else None)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return a


def _check_k(k, limit, what):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}.")
    if not 1 <= k <= limit:
        raise ValueError(f"k={k} is out of range: it must be between 1 and {limit} ({what}).")
    return int(k)


def chunk_rows(n_references, chunk_size=None):
    """Query rows per chunk: `chunk_size` when given, else as many as fit in `CHUNK_ELEMENTS`."""
    if chunk_size is None:
        return max(1, CHUNK_ELEMENTS // max(1, n_references))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}.")
    return int(chunk_size)


def squared_distances(q, r, r_sq=None, out=None, partial=False):
    """Squared Euclidean distances between rows of `q` and `r` (torch), clamped at 0.

    `out` (a preallocated block) spares the page faults of a fresh large tensor per chunk.
    `partial=True` returns ``‖r‖² − 2 q·r`` only: the per-row ``‖q‖²`` term and the clamp are left to
    callers that rank within rows (`smallest_distances` adds them to the values it keeps), which spares
    two passes over the block.
    """
    if r_sq is None:
        r_sq = (r * r).sum(1)
    d2 = torch.addmm(r_sq.unsqueeze(0), q, r.T, beta=1.0, alpha=-2.0, out=out)
    if partial:
        return d2
    d2 += (q * q).sum(1, keepdim=True)
    return d2.clamp_min_(0.0)


def select_smallest(d, k):
    """The k smallest entries of each row, ascending, equal values ordered by lower column index."""
    return smallest_distances(d, k)


def smallest_distances(p, k, offset=None):
    """The k smallest values of ``f(p) = max(p + offset, 0)`` per row (f(p) = p when `offset` is None).

    Ascending, equal values ordered by lower column index, exactly. `offset` (one value per row, the
    ``‖q‖²`` of partial distances) makes f monotone within a row, rounding included, so only the
    candidates from `_candidates` are shifted, clamped and sorted: every value outside them is at
    least their (k+1)-th smallest. Where f's (k+1)-th value equals its k-th, an outside value could
    still tie at the k-th place: those rows are redone with a stable sort of the whole row.
    """
    m = min(k + 1, p.shape[1])
    idx = _candidates(p, m)
    vals = _shift(p.gather(1, idx), offset)
    vals, order = torch.sort(vals, dim=1, stable=True)  # idx ascending: equal values stay in index order
    idx = idx.gather(1, order)
    if m > k:
        ambiguous = vals[:, k - 1] == vals[:, k]
        vals, idx = vals[:, :k], idx[:, :k]
        if bool(ambiguous.any()):
            rows = ambiguous.nonzero().squeeze(1)
            s_vals, s_idx = torch.sort(_shift(p[rows], None if offset is None else offset[rows]), dim=1, stable=True)
            vals, idx = vals.clone(), idx.clone()
            vals[rows], idx[rows] = s_vals[:, :k], s_idx[:, :k]
    return vals, idx


def _shift(values, offset):
    return values if offset is None else (values + offset).clamp_min_(0.0)


def _candidates(p, m):
    """Ascending column indices per row: a set whose m-th smallest value no value outside undercuts.

    Narrow rows: `topk`'s m smallest. Wide rows are screened by group minima instead (one cheap min
    pass instead of `topk` over the whole row): the m groups of `GROUP` columns with the smallest
    minima, plus the columns after the last whole group. Their m minima are at most t, the m-th
    smallest minimum, and every other group holds values of at least t.
    """
    rows, n = p.shape
    if m * GROUP * 4 > n:
        return torch.topk(p, m, dim=1, largest=False, sorted=False).indices.sort(dim=1).values
    full = n - n % GROUP
    minima = p[:, :full].reshape(rows, full // GROUP, GROUP).amin(2)
    groups = torch.topk(minima, m, dim=1, largest=False, sorted=False).indices.sort(dim=1).values
    idx = (groups.unsqueeze(2) * GROUP + torch.arange(GROUP)).view(rows, m * GROUP)
    if full < n:
        idx = torch.cat([idx, torch.arange(full, n).expand(rows, n - full)], 1)
    return idx


def _torch_knn(q, r, k, exclude_self, chunk_size):
    qt, rt = torch.from_numpy(q), torch.from_numpy(r)
    r_sq, q_sq = (rt * rt).sum(1), (qt * qt).sum(1, keepdim=True)
    workers, rows = _plan(len(q), len(r), q.shape[1], rt.element_size(), chunk_size)
    dist = np.empty((len(q), k), dtype=q.dtype)
    ind = np.empty((len(q), k), dtype=np.int64)
    starts, take = iter(range(0, len(q), rows)), threading.Lock()

    def scan():  # each worker takes the next chunk until none is left: the faster one does more
        block = torch.empty(min(rows, len(q)), len(r), dtype=rt.dtype)
        while True:
            with take:
                start = next(starts, None)
            if start is None:
                return
            stop = min(start + rows, len(q))
            p = squared_distances(qt[start:stop], rt, r_sq, out=block[: stop - start], partial=True)
            if exclude_self:
                diagonal = torch.arange(stop - start)
                p[diagonal, diagonal + start] = float("inf")
            vals, idx = smallest_distances(p, k, q_sq[start:stop])
            dist[start:stop] = vals.sqrt_().numpy()
            ind[start:stop] = idx.numpy()

    _run(scan, workers)
    return dist, ind


def _plan(n_queries, n_references, dim, itemsize, chunk_size):
    """Worker threads and query rows per chunk (each worker holds one chunk's block).

    One worker per torch thread when the search is big enough to pay for starting them. Unless
    `chunk_size` is given, the workers' blocks together hold at most ``CHUNK_ELEMENTS`` float64
    values' worth of bytes (128 MiB), and there are at least as many chunks as workers.
    """
    threads = torch.get_num_threads()
    workers = 1 if n_queries * n_references * dim < PARALLEL_MIN_WORK else max(1, min(threads, n_queries))
    if chunk_size is not None:
        rows = chunk_size
    else:
        budget = CHUNK_ELEMENTS * 8 // itemsize // workers
        rows = max(1, min(budget // n_references, -(-n_queries // workers)))
    return min(workers, -(-n_queries // rows)), rows


def _run(scan, workers):
    """Call `scan` in this thread, or in `workers` threads whose torch operations use one core each.

    Whole chunks per thread and no synchronisation between them scale better than splitting every
    operation across the cores, above all when other processes share the cores: a split operation
    waits for its slowest part. torch's thread count is set to 1 meanwhile (as scikit-learn limits
    BLAS threads around its own parallel loops) and restored afterwards.
    """
    if workers == 1:
        scan()
        return
    with _THREADS:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                for future in [pool.submit(scan) for _ in range(workers)]:
                    future.result()
        finally:
            torch.set_num_threads(previous)


def _resolve_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "faiss" if faiss_available() else "torch"
    if backend == "faiss" and not faiss_available():
        raise ValueError(
            "backend='faiss' needs the faiss package: pip install 'norank[faiss]' (or faiss-cpu), "
            "or use backend='torch'."
        )
    return backend


def kneighbors(queries, references, k, *, exclude_self=False, backend="auto", chunk_size=None):
    """Exact Euclidean k nearest references of each query.

    Parameters
    ----------
    queries : array of shape (n_queries, d)
    references : array of shape (n_references, d)
    k : int
        Neighbours per query.
    exclude_self : bool
        Leave-one-out search: `queries` must be `references` itself, and row i never returns i.
    backend : {"auto", "torch", "faiss"}
        "torch": chunked matrix products (float32 input computes in float32, anything else in
        float64; equal distances ordered by lower index, exactly), one chunk per torch thread at a
        time for big searches (torch's thread count is 1 meanwhile, then restored). "faiss": faiss's
        exact L2 search in float32, on faiss's OpenMP threads (equal distances among the returned
        ones ordered by lower index). "auto": faiss when installed, else torch.
    chunk_size : int or None
        Query rows per chunk (torch); each worker thread holds one chunk's block. None sizes chunks so
        that the blocks together take at most 128 MiB (``CHUNK_ELEMENTS`` float64 values).

    Returns
    -------
    distances : array (n_queries, k), ascending per row
    indices : int64 array (n_queries, k), row indices into `references`
    """
    q = _as_matrix(queries, "queries")
    r = _as_matrix(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} features but references have {r.shape[1]}; embed both with the same model."
        )
    if exclude_self and (q.shape != r.shape or not np.array_equal(q, r)):
        raise ValueError(
            "exclude_self=True is for leave-one-out search: pass the same array as queries and references."
        )
    what = "the number of references" + (" minus one" if exclude_self else "")
    k = _check_k(k, len(r) - int(bool(exclude_self)), what)
    backend = _resolve_backend(backend)
    chunk_rows(len(r), chunk_size)  # validates chunk_size
    if backend == "faiss":
        return faiss_knn(q, r, k, bool(exclude_self))
    if q.dtype != r.dtype:
        q, r = q.astype(np.float64), r.astype(np.float64)
    return _torch_knn(q, r, k, bool(exclude_self), None if chunk_size is None else int(chunk_size))


class EmbeddingIndex:
    """Reference embeddings to search by Euclidean distance, with optional labels.

    Parameters
    ----------
    embeddings : array of shape (n, m)
    labels : array of shape (n,) or None
        Numbers or strings (saved without pickle), e.g. to read off the labels of returned indices.
    backend : {"auto", "torch", "faiss"}
        As in `kneighbors`.

    Examples
    --------
    >>> index = EmbeddingIndex.from_model(model, X_train, y_train)   # doctest: +SKIP
    >>> dist, ind = index.search(model, X_new, k=5)                   # doctest: +SKIP
    >>> index.labels[ind]                                             # doctest: +SKIP
    """

    def __init__(self, embeddings, labels=None, backend="auto"):
        self.embeddings = _as_matrix(embeddings, "embeddings", copy=True)
        if labels is not None:
            labels = np.array(labels, copy=True)
            if labels.ndim != 1 or len(labels) != len(self.embeddings):
                raise ValueError(
                    f"labels must be 1-D with one entry per embedding ({len(self.embeddings)}), "
                    f"got shape {labels.shape}."
                )
            if labels.dtype == object:
                raise TypeError(
                    "labels must be numbers or strings (dtype object cannot be saved without "
                    "pickle); convert with np.asarray(labels, dtype=str)."
                )
        self.labels = labels
        _resolve_backend(backend)
        self.backend = backend

    def __len__(self):
        return len(self.embeddings)

    @classmethod
    def from_model(cls, model, X_ref, y_ref=None, backend="auto"):
        """Index `model.transform(X_ref)` (any object with a `transform` method)."""
        return cls(_transform(model, X_ref), y_ref, backend)

    def query(self, Z, k):
        """Distances and indices of the k nearest references to each row of embeddings `Z`."""
        Z = _as_matrix(Z, "Z")
        if Z.shape[1] != self.embeddings.shape[1]:
            raise ValueError(
                f"Z has {Z.shape[1]} dimensions but the index holds {self.embeddings.shape[1]}-"
                "dimensional embeddings; embed with the model that built the index."
            )
        return kneighbors(Z, self.embeddings, k, backend=self.backend)

    def search(self, model, X, k):
        """Query raw samples: embed `X` with `model.transform` first (`model=None`: `X` is embedded)."""
        return self.query(X if model is None else _transform(model, X), k)

    def save(self, path):
        """Write embeddings, labels and backend to an ``.npz`` file (numpy adds the suffix if missing)."""
        arrays = {"embeddings": self.embeddings, "backend": np.array(self.backend)}
        if self.labels is not None:
            arrays["labels"] = self.labels
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path):
        """Read an index written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            labels = data["labels"] if "labels" in data.files else None
            return cls(data["embeddings"], labels, str(data["backend"]))


def _transform(model, X):
    if not callable(getattr(model, "transform", None)):
        raise TypeError(
            f"model must have a transform method (e.g. a fitted NoRankEmbedder), got {type(model).__name__}."
        )
    return np.asarray(model.transform(X))
