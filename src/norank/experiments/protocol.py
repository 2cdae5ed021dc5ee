"""The evaluation protocol (DESIGN §3): seeded splits and one fit-and-score run.

Held-out: a stratified 70/30 split per seed; the method, preprocessing included, sees only the training
part; metrics are computed on the test part (trustworthiness / continuity against the test inputs) plus a
1-NN classifier fitted on the training embeddings. In-sample (the paper's protocol): fit and score on the
same samples. Both protocols go through `score` so they cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

TEST_SIZE = 0.3
PROTOCOLS = ("heldout", "insample")


def _check_counts(y, need: int, what: str) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < need:
        small = classes[counts < need][:5].tolist()
        raise ValueError(
            f"{what} needs at least {need} samples per class, but classes {small} have fewer; "
            "drop those classes or pass more data."
        )


def stratified_split(y, seed: int, test_size: float = TEST_SIZE):
    """(train, test) sorted index arrays of a stratified split seeded by `seed`."""
    y = np.asarray(y)
    _check_counts(y, 2, "The stratified held-out split")
    sss = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(sss.split(np.zeros(len(y)), y))
    return np.sort(train), np.sort(test)


def site_splits(sites, n_sites: int = 3):
    """[(site, train, test)]: each of the `n_sites` largest sites held out in turn (leave-site-out)."""
    sites = np.asarray(sites).astype(str)
    names, counts = np.unique(sites, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:n_sites]
    return [(str(s), np.flatnonzero(sites != s), np.flatnonzero(sites == s)) for s in names[order]]


def stratified_subset(y, fraction: float, seed: int, min_per_class: int = 2):
    """Sorted positions of a stratified `fraction` of y, at least `min_per_class` of each class kept
    (triplets need a positive per anchor); fraction 1 returns every position."""
    y = np.asarray(y)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction} must lie in (0, 1].")
    if fraction == 1:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        n = min(len(members), max(min_per_class, int(round(fraction * len(members)))))
        keep.append(rng.choice(members, n, replace=False))
    return np.sort(np.concatenate(keep))


def flat(X) -> np.ndarray:
    """One float32 row per sample: the input space trustworthiness and continuity are measured in."""
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)


def effective_rank(Z) -> float:
    """exp(entropy) of the normalised singular values of the centred embedding: about 1 when the
    embedding collapses to a line, up to min(n, m) when every direction is used."""
    Z = np.asarray(Z, dtype=np.float64)
    s = np.linalg.svd(Z - Z.mean(0), compute_uv=False)
    if s.sum() <= 1e-12:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def per_class_recall(y_true, y_pred, names) -> dict:
    """Recall of each class present in y_true, keyed by class name."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {str(names[c]): float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)}


@dataclass
class Outcome:
    metrics: dict
    fit_seconds: float
    Z: np.ndarray  # embedding of the scored samples (test part, or all samples in-sample)
    diagnostics: dict = field(default_factory=dict)
    per_class_recall: dict | None = None
    history: dict | None = None


def score(model, X, y, train, test, protocol: str, supervised: bool, seed: int, target_names=None) -> Outcome:
    """Fit `model` and score its embedding under `protocol`.

    heldout: fit on X[train] (labels only when `supervised`), embed and score X[test].
    insample: fit on X[train] and score the same samples (`test` is ignored).
    """
    from norank.metrics import evaluate, knn_accuracy

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not supported; use one of {PROTOCOLS}.")
    X_tr, y_tr = X[train], y[train]
    start = time.perf_counter()
    if protocol == "insample":
        Z = model.fit_transform(X_tr, y_tr if supervised else None)
        seconds = time.perf_counter() - start
        metrics = evaluate(Z, y_tr, X=flat(X_tr), random_state=seed)
        recall = None
    else:
        model.fit(X_tr, y_tr if supervised else None)
        seconds = time.perf_counter() - start
        X_te, y_te = X[test], y[test]
        Z_tr, Z = model.transform(X_tr), model.transform(X_te)
        metrics = dict(evaluate(Z, y_te, X=flat(X_te), random_state=seed))
        metrics["knn_accuracy"] = knn_accuracy(Z_tr, y_tr, Z, y_te)
        from sklearn.neighbors import KNeighborsClassifier

        pred = KNeighborsClassifier(n_neighbors=1).fit(Z_tr, y_tr).predict(Z)
        names = target_names if target_names is not None else np.unique(y).astype(str)
        recall = per_class_recall(y_te, pred, names)
    history = getattr(model, "history_", None) or getattr(getattr(model, "embedder_", None), "history_", None)
    diagnostics = {"effective_rank": effective_rank(Z)}
    if getattr(model, "encoder_kind_", None):
        diagnostics["encoder"] = model.encoder_kind_  # what encoder="auto" chose
    if history and history.get("embedding_spread"):
        diagnostics["final_loss"] = float(history["loss"][-1])
        diagnostics["final_embedding_spread"] = float(history["embedding_spread"][-1])
        diagnostics["final_active_fraction"] = float(history["active_fraction"][-1])
        diagnostics["epochs"] = len(history["loss"])
    metrics = {k: _clean(v) for k, v in metrics.items()}
    return Outcome(metrics, seconds, np.asarray(Z, dtype=np.float32), diagnostics, recall, history)


def _clean(value):
    value = float(value)
    return value if np.isfinite(value) else None
