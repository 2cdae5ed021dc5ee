"""Scores of labelled embeddings: cluster geometry, clustering agreement, neighbourhood preservation and
retrieval, all in one `evaluate` call.

Everything that needs pairwise distances runs as a chunked scan (query rows against all samples), so
memory stays at about ``chunk × n`` and never holds an ``n × n`` matrix. Definitions follow the usual
oracles: scikit-learn for silhouette, Davies–Bouldin, Calinski–Harabasz, ARI, NMI and trustworthiness,
pytorch-metric-learning's ``AccuracyCalculator`` for precision@1, R-precision and MAP@R.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from norank.neighbors import _as_matrix, chunk_rows, kneighbors, select_smallest, squared_distances
from norank.splits import stratified_subset
from norank.validation import as_numpy, check_dtype, label_codes, label_values

__all__ = ["evaluate", "knn_accuracy", "precision_at_1", "KEYS", "AUTO_SAMPLE_SIZE"]

KEYS = (
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "separation_ratio",
    "ari",
    "nmi",
    "trustworthiness",
    "continuity",
    "precision_at_1",
    "r_precision",
    "map_at_r",
)
# Up to this many samples every score is exact; above it the all-pairs scores are estimated.
AUTO_SAMPLE_SIZE = 10_000


def evaluate(
    Z: ArrayLike,
    y: ArrayLike,
    X: ArrayLike | None = None,
    k: int = 5,
    random_state: int | None = 0,
    *,
    sample_size: int | None = None,
) -> dict[str, float]:
    """Score embeddings `Z` of labelled samples; a dict with the keys of `KEYS`.

    Parameters
    ----------
    Z : array of shape (n, m)
        Embeddings.
    y : array of shape (n,)
        Class labels (at least two classes, fewer classes than samples).
    X : array of shape (n, d1, ..., dk) or None
        The inputs, flattened per sample; adds ``trustworthiness`` and ``continuity``.
    k : int
        Neighbours for trustworthiness / continuity (must be below n / 2).
    random_state : int or None
        Seeds k-means (10 initialisations, k = number of classes) and the samples drawn for large n.
    sample_size : int or None
        Exact computation when ``n <= sample_size`` (None: `AUTO_SAMPLE_SIZE` = 10 000). Above it,
        the all-pairs scores are estimated from seeded samples, stratified by class (at least two
        per class): k-means is fitted on `sample_size` points and its centroids label all n samples
        for ARI / NMI; silhouette, separation ratio, trustworthiness, continuity and the retrieval
        scores come from ``max(sample_size // 5, sample_size**2 // n)`` query points, each scored
        exactly against all n samples and weighted by its class's sampling rate, so the estimates
        are unbiased. The cost is then about ``sample_size**2`` distances instead of ``n**2`` (linear
        in n beyond n = 5 × sample_size). Davies–Bouldin and Calinski–Harabasz are always exact.

    Returns
    -------
    dict
        ``silhouette, davies_bouldin, calinski_harabasz`` (scikit-learn's definitions);
        ``separation_ratio``: mean Euclidean distance over pairs of different classes divided by the
        mean over pairs of the same class; ``ari, nmi``: k-means clusters against `y`;
        ``trustworthiness`` (sklearn's, input space `X`) and ``continuity`` (the same with `X` and
        `Z` swapped), only when `X` is given; ``precision_at_1, r_precision, map_at_r``:
        leave-one-out retrieval in `Z` as pytorch-metric-learning defines them (R = class size − 1,
        samples of one-sample classes are not queries).
    """
    Zt, codes, counts = _check_embeddings(Z, y)
    n, n_classes = len(codes), len(counts)
    Xt = None if X is None else _check_inputs(X, n)
    k = _check_neighbors(k, n, X is not None)
    size = _check_sample_size(sample_size, n_classes)
    rng = np.random.default_rng(_check_random_state(random_state))
    exact = n <= size
    scores: dict[str, float] = {}
    scores["davies_bouldin"], scores["calinski_harabasz"] = _centroid_scores(Zt, codes, counts)
    sample = np.arange(n) if exact else stratified_subset(codes, size, rng, min_per_class=2)
    scores["ari"], scores["nmi"] = _cluster_agreement(Zt.numpy(), codes, n_classes, sample, random_state)
    n_queries = max(size // 5, size * size // n)
    queries = np.arange(n) if exact else stratified_subset(codes, n_queries, rng, min_per_class=2)
    scores.update(_query_scores(Zt, codes, counts, queries, Xt, k))  # trustworthiness, continuity with X only
    return {key: scores[key] for key in KEYS if key in scores}  # in the order of KEYS


def knn_accuracy(Z_train: ArrayLike, y_train: ArrayLike, Z_test: ArrayLike, y_test: ArrayLike, k: int = 1) -> float:
    """Accuracy on (Z_test, y_test) of a k-NN majority vote over the training embeddings.

    Ties in the vote go to the smallest label, as in scikit-learn's ``KNeighborsClassifier``.
    """
    train = _matrix(Z_train, "Z_train").astype(np.float64)
    test = _matrix(Z_test, "Z_test").astype(np.float64)
    classes, train_codes, _ = label_codes(y_train, len(train), "y_train", x_name="Z_train")
    y_test = label_values(y_test, len(test), "y_test", x_name="Z_test")
    if test.shape[1] != train.shape[1]:
        raise ValueError(
            f"Z_test has {test.shape[1]} dimensions but Z_train has {train.shape[1]}; embed both with the same model."
        )
    _, ind = kneighbors(test, train, k, backend="torch")
    votes = np.zeros((len(test), len(classes)), dtype=np.int64)
    np.add.at(votes, (np.arange(len(test))[:, None], train_codes[ind]), 1)
    predicted = classes[votes.argmax(1)]
    return float(np.mean(predicted == y_test))


def precision_at_1(Z: ArrayLike, y: ArrayLike) -> float:
    """Leave-one-out precision@1: the share of samples whose nearest other sample shares their label.

    The one copy of this score (``evaluate``'s ``precision_at_1`` gives the same value, as
    pytorch-metric-learning defines it): a sample alone in its class is not a query, since nothing could
    be retrieved for it. Raises ValueError when no class has two samples.
    """
    Zm = _matrix(Z, "Z")
    _, codes, counts = label_codes(y, len(Zm), "y", x_name="Z")
    queries = counts[codes] > 1
    if not queries.any():
        raise ValueError(
            "no class has two samples: precision@1 needs a same-class neighbour to look for; "
            "pass at least two samples of some class."
        )
    _, ind = kneighbors(Zm, Zm, 1, exclude_self=True, backend="torch")
    return float(np.mean(codes[ind[queries, 0]] == codes[queries]))


# ---------------------------------------------------------------------------------------------
# Validation


def _matrix(a: ArrayLike, name: str) -> np.ndarray:
    """`_as_matrix`, but complex values are refused instead of losing their imaginary part."""
    a = np.asarray(as_numpy(a))
    if np.iscomplexobj(a):
        check_dtype(a.dtype, name)
    return _as_matrix(a, name)


def _check_embeddings(Z: ArrayLike, y: ArrayLike) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    Z = _matrix(Z, "Z").astype(np.float64, copy=False)
    _, codes, counts = label_codes(y, len(Z), "y", x_name="Z")
    if len(counts) < 2:
        raise ValueError("y holds a single class; evaluate needs at least two classes.")
    if len(Z) <= len(counts):
        raise ValueError(
            f"{len(Z)} samples for {len(counts)} classes: silhouette needs more samples "
            "than classes; pass more samples per class."
        )
    return torch.from_numpy(Z), codes.astype(np.int64), counts


def _check_inputs(X: ArrayLike, n: int) -> torch.Tensor:
    X = np.asarray(as_numpy(X))
    if X.ndim < 2 or len(X) != n:
        raise ValueError(f"X must have shape (n, d1, ..., dk) with n = {n} (as Z), got shape {X.shape}.")
    return torch.from_numpy(_matrix(X.reshape(n, -1), "X"))


def _check_neighbors(k: int, n: int, with_inputs: bool) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}.")
    if k < 1 or (with_inputs and k >= n / 2):
        raise ValueError(f"k={k} is out of range: trustworthiness needs 1 <= k < n / 2 = {n / 2}.")
    return int(min(k, n - 1))


def _check_random_state(random_state: int | None) -> int | None:
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))):
        raise TypeError(f"random_state must be an int or None, got {type(random_state).__name__}.")
    return random_state


def _check_sample_size(sample_size: int | None, n_classes: int) -> int:
    if sample_size is None:
        return AUTO_SAMPLE_SIZE
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)):
        raise TypeError(f"sample_size must be an int or None, got {type(sample_size).__name__}.")
    if sample_size <= 2 * n_classes:
        raise ValueError(
            f"sample_size={sample_size} is too small for {n_classes} classes: use more than "
            f"{2 * n_classes} (two per class), or None."
        )
    return int(sample_size)


# ---------------------------------------------------------------------------------------------
# Parts


def _centroid_scores(Zt: torch.Tensor, codes: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Davies–Bouldin and Calinski–Harabasz in O(n·m), as scikit-learn defines them."""
    n, n_classes = len(codes), len(counts)
    ct = torch.from_numpy(codes)
    cnt = torch.from_numpy(counts).to(Zt.dtype)
    centroids = torch.zeros(n_classes, Zt.shape[1], dtype=Zt.dtype).index_add_(0, ct, Zt) / cnt[:, None]
    resid = Zt - centroids[ct]
    intra = torch.zeros(n_classes, dtype=Zt.dtype).index_add_(0, ct, resid.norm(dim=1)) / cnt
    within = float((resid * resid).sum())
    between = float((cnt * ((centroids - Zt.mean(0)) ** 2).sum(1)).sum())
    ch = 1.0 if within == 0 else between * (n - n_classes) / (within * (n_classes - 1))

    worst, largest = torch.empty(n_classes, dtype=Zt.dtype), 0.0
    c_sq = (centroids * centroids).sum(1)
    step = chunk_rows(n_classes)
    for start in range(0, n_classes, step):
        stop = min(start + step, n_classes)
        cd = squared_distances(centroids[start:stop], centroids, c_sq).sqrt_()
        largest = max(largest, float(cd.max()))
        cd[torch.arange(stop - start), torch.arange(start, stop)] = float("inf")
        cd[cd == 0] = float("inf")
        worst[start:stop] = ((intra[start:stop, None] + intra[None, :]) / cd).max(1).values
    if np.allclose(intra.numpy(), 0) or np.isclose(largest, 0):
        return 0.0, ch
    return float(worst.mean()), ch


def _cluster_agreement(
    Z: np.ndarray, codes: np.ndarray, n_classes: int, sample: np.ndarray, random_state: int | None
) -> tuple[float, float]:
    """ARI and NMI of k-means clusters (fitted on `sample`, assigned to all) against the classes."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from threadpoolctl import threadpool_limits

    # One thread: k-means++ and Lloyd's steps are many short parallel regions, and on a busy machine
    # their thread barriers cost far more (measured up to 50x on 2 cores) than the parallelism gains.
    with threadpool_limits(1):
        km = KMeans(n_clusters=n_classes, n_init=10, random_state=random_state).fit(Z[sample])
        clusters = km.labels_ if len(sample) == len(Z) else km.predict(Z)
    return float(adjusted_rand_score(codes, clusters)), float(normalized_mutual_info_score(codes, clusters))


def _query_scores(
    Zt: torch.Tensor, codes: np.ndarray, counts: np.ndarray, queries: np.ndarray, Xt: torch.Tensor | None, k: int
) -> dict[str, float]:
    """The scores `evaluate` takes from the per-query scan: silhouette, separation ratio, trustworthiness and
    continuity (with `Xt`) and retrieval, each query weighted by its class's sampling rate (1 when exact)."""
    n, n_classes = len(codes), len(counts)
    q_codes = codes[queries]
    weights = counts[q_codes] / np.bincount(q_codes, minlength=n_classes)[q_codes]
    k_top = int(min(n - 1, max(counts.max() - 1, k)))
    rows = _scan(Zt, codes, counts, queries, k_top, Xt, k)
    out = {"silhouette": float(np.sum(weights * rows["silhouette"]) / n)}

    intra_pairs = float(np.sum(counts * (counts - 1.0)))
    inter_pairs = float(np.sum(counts * (n - counts.astype(float))))
    mean_intra = np.sum(weights * rows["intra"]) / intra_pairs
    mean_inter = np.sum(weights * rows["inter"]) / inter_pairs
    out["separation_ratio"] = float(mean_inter / mean_intra) if mean_intra > 0 else float("inf")

    if Xt is not None:
        scale = 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
        out["trustworthiness"] = float(1.0 - scale * np.sum(weights * rows["trust_penalty"]))
        out["continuity"] = float(1.0 - scale * np.sum(weights * rows["cont_penalty"]))

    has_r = counts[q_codes] > 1  # one-sample classes have no retrieval target
    for key in ("precision_at_1", "r_precision", "map_at_r"):
        out[key] = float(np.sum((weights * rows[key])[has_r]) / np.sum(weights[has_r]))
    return out


def _scan(
    Zt: torch.Tensor,
    codes: np.ndarray,
    counts: np.ndarray,
    queries: np.ndarray,
    k_top: int,
    Xt: torch.Tensor | None = None,
    k: int = 0,
) -> dict[str, np.ndarray]:
    """Per-query statistics of rows `queries` of `Zt` against all its rows, in chunks of rows.

    silhouette, intra / inter (summed distances to the same / other classes), the retrieval scores
    (leave-one-out, from the `k_top` nearest); with `Xt`, the trustworthiness and
    continuity penalties ``Σ max(0, rank − k)`` over the k neighbours of one space ranked in the other.
    """
    n, n_classes = len(codes), len(counts)
    ct, cnt = torch.from_numpy(codes), torch.from_numpy(counts).to(Zt.dtype)
    z_sq = (Zt * Zt).sum(1)
    x_sq = None if Xt is None else (Xt * Xt).sum(1)
    names = ["silhouette", "intra", "inter", "precision_at_1", "r_precision", "map_at_r"]
    names += ["trust_penalty", "cont_penalty"] if Xt is not None else []
    out = {name: np.empty(len(queries)) for name in names}
    ranks, step = torch.arange(1, k_top + 1, dtype=Zt.dtype), chunk_rows(n)
    block = torch.empty(min(step, len(queries)), n, dtype=Zt.dtype)
    root = torch.empty_like(block)
    x_block = None if Xt is None else torch.empty(len(block), n, dtype=Xt.dtype)
    for start in range(0, len(queries), step):
        stop = min(start + step, len(queries))
        q = torch.from_numpy(queries[start:stop])
        rows, own = torch.arange(stop - start), ct[q]
        d2 = squared_distances(Zt[q], Zt, z_sq, out=block[: stop - start])
        d2[rows, q] = 0.0
        d = torch.sqrt(d2, out=root[: stop - start])
        sums = torch.zeros(stop - start, n_classes, dtype=Zt.dtype).index_add_(1, ct, d)
        intra = sums[rows, own]
        a = intra / (cnt[own] - 1).clamp_min(1)
        means = sums / cnt
        means[rows, own] = float("inf")
        b = means.min(1).values
        sil = torch.nan_to_num((b - a) / torch.maximum(a, b))
        sil[cnt[own] == 1] = 0.0
        out["silhouette"][start:stop] = sil.numpy()
        out["intra"][start:stop] = intra.numpy()
        out["inter"][start:stop] = (sums.sum(1) - intra).numpy()
        d2[rows, q] = float("inf")
        nn = select_smallest(d2, k_top)[1]
        r = cnt[own] - 1
        same = ct[nn] == own[:, None]
        hits = same & (ranks[None, :] <= r[:, None])
        cum = torch.cumsum(hits, 1).to(Zt.dtype)
        out["precision_at_1"][start:stop] = same[:, 0].to(Zt.dtype).numpy()
        out["r_precision"][start:stop] = (hits.sum(1) / r).numpy()
        out["map_at_r"][start:stop] = ((cum * hits / ranks).sum(1) / r).numpy()
        if Xt is not None and x_block is not None:  # both or neither
            dx2 = squared_distances(Xt[q], Xt, x_sq, out=x_block[: stop - start])
            dx2[rows, q] = float("inf")
            nn_x = select_smallest(dx2, k)[1]
            out["trust_penalty"][start:stop] = _rank_penalty(dx2, nn[:, :k], nn_x, k)
            out["cont_penalty"][start:stop] = _rank_penalty(d2, nn_x, nn[:, :k], k)
    return out


def _rank_penalty(d: torch.Tensor, neighbors: torch.Tensor, nearest: torch.Tensor, k: int) -> np.ndarray:
    """Σ over each row's `neighbors` of max(0, rank − k), ranked by the distances `d` (1 = nearest).

    A neighbour among the row's k `nearest` by `d` ranks at most k and costs nothing, so only the
    others are ranked, by counting the distances below theirs (numpy: far faster than torch here).
    """
    dist, ind, near = d.numpy(), neighbors.numpy(), nearest.numpy()
    outside = ~(ind[:, :, None] == near[:, None, :]).any(2)
    penalty = np.zeros(len(dist))
    for i in np.flatnonzero(outside.any(1)):
        thresholds = dist[i, ind[i, outside[i]]]
        ranks = 1 + np.count_nonzero(dist[i][None, :] < thresholds[:, None], axis=1)
        penalty[i] = np.maximum(ranks - k, 0).sum()
    return penalty
