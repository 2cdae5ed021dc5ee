"""`encoder="auto"`: pick the MLP or the conv encoder by held-out 1-NN accuracy on part of the training set.

Neither encoder wins everywhere (docs/defaults.md, "Encoder"): the MLP keeps the pixel layout that aligned
faces carry, the conv encoder's global pooling gives the translation invariance lattices and textures
need. So for 2-D images the estimator trains both, for a third of the epochs, on 75 % of a stratified
subsample of the training set, scores each by 1-NN accuracy on the other 25 %, and then trains the
winner on all the data. Other inputs (vectors, volumes, symmetric connectivity matrices) have no image
layout and get the MLP directly.
"""

from __future__ import annotations

import math

import numpy as np

from norank.metrics import knn_accuracy
from norank.preprocessing import looks_symmetric
from norank.training import NonFiniteLossError, _non_finite_message

AUTO_CANDIDATES = ("mlp", "conv")
SELECTION_VALIDATION = 0.25  # share of the selection subsample held out for scoring
SELECTION_MAX_SAMPLES = 4000  # bounds the extra cost on large training sets
# Trials train a third of the epochs (the schedule still runs its whole course). Over seeds 0-2 of five
# image sets this made the same choice as full-length trials in 14 of 15 cases, at a third of the cost;
# the one change (galaxy-hard, seed 2) picked conv, the encoder with the better held-out mean there.
SELECTION_EPOCH_SHARE = 1 / 3


def candidate_encoders(X, symmetric) -> tuple[str, ...]:
    """The encoders "auto" compares for input X: both for 2-D images, only the MLP otherwise."""
    is_image = X.ndim == 3
    if is_image and (symmetric is True or (symmetric == "auto" and looks_symmetric(X))):
        is_image = False
    return AUTO_CANDIDATES if is_image else ("mlp",)


def selection_split(codes: np.ndarray, rng: np.random.Generator):
    """(fit, score) indices: a stratified subsample of at most SELECTION_MAX_SAMPLES, split 75/25.

    Every class with two or more samples keeps at least one in each part; singletons stay in the fit part
    (as negatives)."""
    keep = min(1.0, SELECTION_MAX_SAMPLES / len(codes))
    fit, score = [], []
    for c in np.unique(codes):
        members = rng.permutation(np.flatnonzero(codes == c))
        members = members[: max(2, int(round(keep * len(members))))]
        n_score = min(max(1, int(round(SELECTION_VALIDATION * len(members)))), len(members) - 1)
        score.append(members[:n_score])
        fit.append(members[n_score:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(score))


def select_encoder(est, X, codes: np.ndarray) -> tuple[str, dict]:
    """The encoder "auto" resolves to for (X, codes), and each candidate's selection score (None when
    there was nothing to compare)."""
    from sklearn.base import clone
    from sklearn.utils import check_random_state

    candidates = candidate_encoders(X, est.symmetric)
    if len(candidates) == 1:
        return candidates[0], {candidates[0]: None}
    seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    fit_idx, score_idx = selection_split(codes, np.random.default_rng(seed))
    if len(score_idx) == 0:  # every class is a singleton: nothing to score on
        return candidates[0], {k: None for k in candidates}
    X_fit, X_score = X[fit_idx], X[score_idx]
    scores = {}
    for kind in candidates:
        trial = clone(est).set_params(encoder=kind, epochs=max(1, math.ceil(est.epochs * SELECTION_EPOCH_SHARE)),
                                      validation_fraction=0.0, checkpoint_dir=None, verbose=0)
        trial.fit(X_fit, codes[fit_idx])
        Z_fit, Z_score = trial.transform(X_fit), trial.transform(X_score)
        if not (np.isfinite(Z_fit).all() and np.isfinite(Z_score).all()):  # the trial diverged
            raise NonFiniteLossError(_non_finite_message({}, None))
        scores[kind] = knn_accuracy(Z_fit, codes[fit_idx], Z_score, codes[score_idx])
    # Ties go to the first candidate, the cheaper MLP.
    best = max(candidates, key=lambda k: (scores[k], -candidates.index(k)))
    if est.verbose:
        from norank import distributed

        if distributed.is_main_process():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
            print(f"norank encoder='auto': 1-NN accuracy on the selection split: {shown}; training {best}")
    return best, scores
