"""Exact Euclidean k-nearest neighbours on embeddings, memory bounded.

`kneighbors` scans the queries in chunks: each chunk's squared distances to every reference come from
one matrix product (``‖q‖² + ‖r‖² − 2 q·r``), so memory stays at ``chunk × n_references`` however
many queries there are. With faiss installed (the optional ``norank[faiss]`` extra) an exact
``IndexFlatL2`` can do the search instead. `EmbeddingIndex` keeps reference embeddings (and labels) to
search, saves them as a plain ``.npz`` and can embed raw samples through a fitted model.
"""

import numpy as np
import torch

__all__ = ["kneighbors", "EmbeddingIndex", "faiss_available"]

BACKENDS = ("auto", "torch", "faiss")
# Elements of one chunk's distance block (16M doubles = 128 MiB): chunk rows = budget // n_references.
# Bigger blocks mean fewer, larger tensor operations, which matters when the cores are shared.
CHUNK_ELEMENTS = 2**24


def faiss_available():
    """True when the optional faiss package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_matrix(a, name, copy=False):
    """A 2-D finite float array (float32 kept, everything else float64), C-ordered and writeable.

    Shares the caller's buffer when nothing needs converting (the code here never writes to it);
    `copy=True` for arrays that are kept.
    """
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}; convert it with np.asarray(..., dtype=float).")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {a.shape}; reshape it with .reshape(len(a), -1).")
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


def squared_distances(q, r, r_sq=None, out=None):
    """Squared Euclidean distances between rows of `q` and `r` (torch), clamped at 0.

    `out` (a preallocated block) spares the page faults of a fresh large tensor per chunk.
    """
    if r_sq is None:
        r_sq = (r * r).sum(1)
    d2 = torch.addmm(r_sq.unsqueeze(0), q, r.T, beta=1.0, alpha=-2.0, out=out)
    d2 += (q * q).sum(1, keepdim=True)
    return d2.clamp_min_(0.0)


def select_smallest(d, k):
    """The k smallest entries of each row, ascending, equal values ordered by lower column index.

    `torch.topk` gives the right values but an arbitrary order among equal ones, and any of several
    equal values may fill the k-th place; rows where the (k+1)-th value equals the k-th are redone
    with a stable sort.
    """
    extra = int(k < d.shape[1])
    vals, idx = torch.topk(d, k + extra, dim=1, largest=False, sorted=True)
    if bool((vals[:, 1:] == vals[:, :-1]).any()):  # equal values: order them by index
        order = torch.argsort(idx, dim=1)
        vals, idx = vals.gather(1, order), idx.gather(1, order)
        order = torch.sort(vals, dim=1, stable=True).indices
        vals, idx = vals.gather(1, order), idx.gather(1, order)
    if extra:
        ambiguous = vals[:, k - 1] == vals[:, k]
        vals, idx = vals[:, :k], idx[:, :k]
        if bool(ambiguous.any()):
            rows = ambiguous.nonzero().squeeze(1)
            s_vals, s_idx = torch.sort(d[rows], dim=1, stable=True)
            vals, idx = vals.clone(), idx.clone()
            vals[rows], idx[rows] = s_vals[:, :k], s_idx[:, :k]
    return vals, idx


def _torch_knn(q, r, k, exclude_self, chunk):
    qt, rt = torch.from_numpy(q), torch.from_numpy(r)
    r_sq = (rt * rt).sum(1)
    block = torch.empty(min(chunk, len(q)), len(r), dtype=rt.dtype)
    dist = np.empty((len(q), k), dtype=q.dtype)
    ind = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), chunk):
        stop = min(start + chunk, len(q))
        d2 = squared_distances(qt[start:stop], rt, r_sq, out=block[: stop - start])
        if exclude_self:
            rows = torch.arange(stop - start)
            d2[rows, rows + start] = float("inf")
        vals, idx = select_smallest(d2, k)
        dist[start:stop] = vals.sqrt_().numpy()
        ind[start:stop] = idx.numpy()
    return dist, ind


def _faiss_knn(q, r, k, exclude_self):
    import faiss

    index = faiss.IndexFlatL2(r.shape[1])
    index.add(np.ascontiguousarray(r, dtype=np.float32))
    d2, ind = index.search(np.ascontiguousarray(q, dtype=np.float32), k + int(exclude_self))
    if exclude_self:
        is_self = ind == np.arange(len(q))[:, None]
        is_self[~is_self.any(1), -1] = True  # self pushed out by exact duplicates: drop the last one
        d2 = d2[~is_self].reshape(len(q), k)
        ind = ind[~is_self].reshape(len(q), k)
    order = np.lexsort((ind, d2), axis=1)
    d2, ind = np.take_along_axis(d2, order, 1), np.take_along_axis(ind, order, 1)
    return np.sqrt(np.maximum(d2, 0.0)), ind.astype(np.int64)


def _resolve_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "faiss" if faiss_available() else "torch"
    if backend == "faiss" and not faiss_available():
        raise ValueError("backend='faiss' needs the faiss package: pip install 'norank[faiss]' (or faiss-cpu), or use backend='torch'.")
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
        float64; equal distances ordered by lower index, exactly). "faiss": an exact ``IndexFlatL2``
        in float32 (equal distances among the returned ones ordered by lower index). "auto": faiss
        when installed, else torch.
    chunk_size : int or None
        Query rows per chunk (torch); None sizes chunks so one block holds about 16M distances.

    Returns
    -------
    distances : array (n_queries, k), ascending per row
    indices : int64 array (n_queries, k), row indices into `references`
    """
    q = _as_matrix(queries, "queries")
    r = _as_matrix(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features but references have {r.shape[1]}; embed both with the same model.")
    if exclude_self and (q.shape != r.shape or not np.array_equal(q, r)):
        raise ValueError("exclude_self=True is for leave-one-out search: pass the same array as queries and references.")
    k = _check_k(k, len(r) - int(bool(exclude_self)), "the number of references" + (" minus one" if exclude_self else ""))
    backend = _resolve_backend(backend)
    chunk = chunk_rows(len(r), chunk_size)
    if backend == "faiss":
        return _faiss_knn(q, r, k, bool(exclude_self))
    if q.dtype != r.dtype:
        q, r = q.astype(np.float64), r.astype(np.float64)
    return _torch_knn(q, r, k, bool(exclude_self), chunk)


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
                raise ValueError(f"labels must be 1-D with one entry per embedding ({len(self.embeddings)}), got shape {labels.shape}.")
            if labels.dtype == object:
                raise TypeError("labels must be numbers or strings (dtype object cannot be saved without "
                                "pickle); convert with np.asarray(labels, dtype=str).")
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
            raise ValueError(f"Z has {Z.shape[1]} dimensions but the index holds {self.embeddings.shape[1]}-"
                             "dimensional embeddings; embed with the model that built the index.")
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
        raise TypeError(f"model must have a transform method (e.g. a fitted NoRankEmbedder), got {type(model).__name__}.")
    return np.asarray(model.transform(X))
