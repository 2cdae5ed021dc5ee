"""`encoder="auto"`: pick the MLP or the conv encoder by held-out 1-NN accuracy on part of the training set.

Neither encoder wins everywhere (docs/defaults.md, "Encoder"): the MLP keeps the pixel layout that aligned
faces carry, the conv encoder's global pooling gives the translation invariance lattices and textures
need. So for 2-D images the estimator trains both on 75 % of a stratified subsample of the training set
and scores each by 1-NN accuracy on the other 25 %, then trains the winner on all the data. The trials
first train a third of the epochs; when that leaves the two within sampling noise of each other, both are
trained again for every epoch and the choice rests on the mean of the two scores. Other inputs
(vectors, volumes, symmetric connectivity matrices) have no image layout, and images under 16 pixels a
side are too small for the conv stack: they get the MLP directly.
"""

from __future__ import annotations

import math

import numpy as np

from norank.encoders import CONV_CHANNELS
from norank.metrics import knn_accuracy
from norank.preprocessing import looks_symmetric
from norank.training import NonFiniteLossError, _non_finite_message

AUTO_CANDIDATES = ("mlp", "conv")
# The conv encoder's stride-2 blocks halve each side once per block; on smaller images its last blocks see
# a 1x1 map and add nothing an MLP lacks (8x8 digits, 5 splits: 1-NN 0.978 against 0.986 for the MLP).
MIN_CONV_SIDE = 2 ** len(CONV_CHANNELS)
SELECTION_VALIDATION = 0.25  # share of the selection subsample held out for scoring
SELECTION_MAX_SAMPLES = 4000  # bounds the extra cost on large training sets
# Short trials train a third of the epochs (the schedule still runs its whole course): enough to separate
# the encoders where one is clearly better (aligned faces, lattices), at a third of the cost.
SELECTION_EPOCH_SHARE = 1 / 3
# Short trials count as undecided when their scores differ by less than this many standard errors of the
# difference of two accuracies on the score part. On galaxy-hard (88 samples scored) they were undecided
# on every split and picked the weaker MLP on 2 of 5; with full-length trials added, on 1 of 5
# (docs/defaults.md, "Encoder").
UNDECIDED_STANDARD_ERRORS = 2.0


def candidate_encoders(X, symmetric, pca_components=None) -> tuple[str, ...]:
    """The encoders "auto" compares for input X: both for 2-D images of at least MIN_CONV_SIDE pixels a
    side kept as pixels, only the MLP otherwise (principal components have no pixel grid)."""
    is_image = X.ndim == 3 and min(X.shape[1:]) >= MIN_CONV_SIDE and pca_components is None
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


def clearly_apart(a: float, b: float, n_scored: int) -> bool:
    """Whether accuracies a and b, each measured on the same n_scored samples, differ by more than
    UNDECIDED_STANDARD_ERRORS standard errors of their difference (binomial, taken as independent)."""
    standard_error = math.sqrt((a * (1 - a) + b * (1 - b)) / n_scored)
    return abs(a - b) > UNDECIDED_STANDARD_ERRORS * standard_error


def _trial_scores(est, candidates, parts, epochs: int) -> dict:
    """1-NN accuracy on the score part of each candidate encoder trained `epochs` epochs on the fit part."""
    from sklearn.base import clone

    X_fit, y_fit, X_score, y_score = parts
    scores = {}
    for kind in candidates:
        trial = clone(est).set_params(encoder=kind, epochs=epochs, validation_fraction=0.0, checkpoint_dir=None,
                                      verbose=0)
        trial.fit(X_fit, y_fit)
        Z_fit, Z_score = trial.transform(X_fit), trial.transform(X_score)
        if not (np.isfinite(Z_fit).all() and np.isfinite(Z_score).all()):  # the trial diverged
            raise NonFiniteLossError(_non_finite_message({}, None))
        scores[kind] = knn_accuracy(Z_fit, y_fit, Z_score, y_score)
    return scores


def select_encoder(est, X, codes: np.ndarray) -> tuple[str, dict]:
    """The encoder "auto" resolves to for (X, codes), and each candidate's selection score (None when
    there was nothing to compare)."""
    from sklearn.utils import check_random_state

    candidates = candidate_encoders(X, est.symmetric, est.pca_components)
    if len(candidates) == 1:
        return candidates[0], {candidates[0]: None}
    seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    fit_idx, score_idx = selection_split(codes, np.random.default_rng(seed))
    if len(score_idx) == 0:  # every class is a singleton: nothing to score on
        return candidates[0], {k: None for k in candidates}
    parts = (X[fit_idx], codes[fit_idx], X[score_idx], codes[score_idx])

    short_epochs = max(1, math.ceil(est.epochs * SELECTION_EPOCH_SHARE))
    scores = _trial_scores(est, candidates, parts, short_epochs)
    rounds = 1
    # Perfect short scores leave nothing for longer trials to separate (the simple simulated sets).
    settled = clearly_apart(*scores.values(), n_scored=len(score_idx)) or min(scores.values()) == 1.0
    if short_epochs < est.epochs and not settled:
        full = _trial_scores(est, candidates, parts, est.epochs)
        scores = {k: (scores[k] + full[k]) / 2 for k in candidates}
        rounds = 2
    # Ties go to the first candidate, the cheaper MLP.
    best = max(candidates, key=lambda k: (scores[k], -candidates.index(k)))
    if est.verbose:
        from norank import distributed

        if distributed.is_main_process():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
            how = "short trials" if rounds == 1 else "mean of short and full-length trials"
            print(f"norank encoder='auto': 1-NN accuracy on the selection split ({how}): {shown}; training {best}")
    return best, scores
