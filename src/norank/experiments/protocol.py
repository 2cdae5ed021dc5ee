"""The evaluation protocol (DESIGN §3): which samples a run trains and scores on, and one fit-and-score.

Held-out: a stratified 70/30 split per seed (`norank.splits.holdout_split`); ABIDE also leaves out each
site with at least `MIN_SITE_SUBJECTS` subjects in turn. The method, preprocessing included, sees only
the training part; metrics are computed on the test part (trustworthiness / continuity against the test
inputs), plus a 1-NN classifier and a logistic-regression probe fitted on the training embeddings
(`classify`). In-sample (the paper's protocol): fit and score on the same samples. Both protocols go
through `score` so they cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from norank.experiments import classify

TEST_SIZE = 0.3
PROTOCOLS = ("heldout", "insample")
MIN_SITE_SUBJECTS = 40  # ABIDE: 8 sites
# Held-out records hold these beside evaluate()'s keys (norank.metrics.KEYS).
HELDOUT_KEYS = ("knn_accuracy", *classify.KEYS)


def site_splits(sites, min_subjects: int = MIN_SITE_SUBJECTS):
    """[(site, train, test)]: every site with at least `min_subjects` samples held out in turn, largest
    first (leave-site-out)."""
    sites = np.asarray(sites).astype(str)
    names, counts = np.unique(sites, return_counts=True)
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] >= min_subjects]
    return [(str(s), np.flatnonzero(sites != s), np.flatnonzero(sites == s)) for s in names[order]]


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


def score(
    model, X, y, train, test, protocol: str, supervised: bool, seed: int, target_names=None, predicts: bool = False
) -> Outcome:
    """Fit `model` and score its embedding under `protocol`.

    heldout: fit on X[train] (labels only when `supervised`), embed and score X[test]; classification
    scores from a probe on the embeddings, or from the model's own predictions when `predicts`.
    insample: fit on X[train] and score the same samples (`test` is ignored).
    """
    from norank.metrics import evaluate

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not supported; use one of {PROTOCOLS}.")
    X_tr, y_tr = X[train], y[train]
    start = time.perf_counter()
    recall = None
    if protocol == "insample":
        Z = model.fit_transform(X_tr, y_tr if supervised else None)
        seconds = time.perf_counter() - start
        metrics = evaluate(Z, y_tr, X=flat(X_tr), random_state=seed)
    else:
        model.fit(X_tr, y_tr if supervised else None)
        seconds = time.perf_counter() - start
        names = target_names if target_names is not None else np.unique(y).astype(str)
        Z, metrics, recall = _heldout_scores(model, X_tr, y_tr, X[test], y[test], seed, names, predicts)
    metrics = {k: _clean(v) for k, v in metrics.items()}
    history = getattr(model, "history_", None) or getattr(getattr(model, "embedder_", None), "history_", None)
    return Outcome(metrics, seconds, np.asarray(Z, dtype=np.float32), _diagnostics(model, Z, history), recall, history)


def _heldout_scores(model, X_tr, y_tr, X_te, y_te, seed, names, predicts):
    """(test embedding, metrics, per-class 1-NN recall) of a model fitted on the training part."""
    from sklearn.neighbors import KNeighborsClassifier

    from norank.metrics import evaluate, knn_accuracy

    Z_tr, Z = model.transform(X_tr), model.transform(X_te)
    metrics = dict(evaluate(Z, y_te, X=flat(X_te), random_state=seed))
    metrics["knn_accuracy"] = knn_accuracy(Z_tr, y_tr, Z, y_te)
    if predicts:
        metrics.update(classify.own_scores(model, X_te, y_te))
    else:
        metrics.update(classify.probe_scores(Z_tr, y_tr, Z, y_te, seed))
    pred = KNeighborsClassifier(n_neighbors=1).fit(Z_tr, y_tr).predict(Z)
    return Z, metrics, per_class_recall(y_te, pred, names)


def _diagnostics(model, Z, history) -> dict:
    diagnostics = {"effective_rank": effective_rank(Z)}
    if getattr(model, "encoder_kind_", None):
        diagnostics["encoder"] = model.encoder_kind_  # what encoder="auto" chose
    if history and history.get("loss"):
        for key in ("loss", "embedding_spread", "active_fraction"):  # what a loss records (SupCon: no triplets)
            if history.get(key):
                diagnostics[f"final_{key}"] = float(history[key][-1])
        diagnostics["epochs"] = len(history["loss"])
    return diagnostics


def _clean(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
