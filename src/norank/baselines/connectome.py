"""Connectome classifiers: tangent space + standardisation + an l2 linear model (Dadi et al. 2019).

The field's standard pipeline for connectivity matrices (Dadi et al. 2019, NeuroImage: the best of the
pipelines they benchmarked across several cohorts, ABIDE among them): each SPD matrix is mapped to the tangent
space at the mean of the training matrices (`norank.tangent`: pyRiemann's reference mean and logarithmic
map, the same regularisation as `normalization="tangent"`), every coordinate is standardised with training
statistics, and an l2-penalised logistic regression (`tangent_logistic`) or linear SVM (`tangent_svc`)
predicts the class.

They predict directly (`predict`, `decision_function`, and `predict_proba` for the logistic model), so the
experiments score their own predictions; `transform` returns the standardised tangent vectors, the
features the linear model reads.

The penalty C is chosen on the training part only, by an inner stratified K-fold over `C_grid` in which
every inner fold refits the reference mean and the scaler on its own training part (what scikit-learn's
GridSearchCV does with the whole pipeline), scored by ROC-AUC for two classes (the measure Dadi et al.
report, and smoother than accuracy on folds of ~120 subjects) and by accuracy beyond two; ties go to the
first C of the grid (with the default grid, the smaller C: the stronger penalty). With fewer than 2
training samples in some class no inner split exists and `FALLBACK_C` is used.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from norank.baselines._base import Baseline, check_int, seed_of
from norank.tangent import DEFAULT_METRIC, check_metric, fit_reference, tangent_vectors

# On ABIDE (6216 standardised tangent coordinates, ~490 subjects per inner fold) the inner CV picks 1e-4 to 1
# (mostly 1e-3); C = 10 never won on tuning seed 100 and is the slowest for LinearSVC, so the grid stops at 1.
C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# Used only when no inner split exists: the C the inner CV chose most often for tangent_logistic on ABIDE
# (riemann and logeuclid, tuning seeds 100-104: 7 of 10 fits; docs/defaults.md).
FALLBACK_C = 1e-3


def tangent_features(X_fit, metric: str, *others):
    """(reference, scaler, standardised tangent vectors of X_fit, then of each array in `others`), with the
    reference mean and the scaler fitted on X_fit only."""
    reference = fit_reference(X_fit, metric)
    F = tangent_vectors(X_fit, reference, metric)
    scaler = StandardScaler().fit(F)
    return (
        reference,
        scaler,
        scaler.transform(F),
        *(scaler.transform(tangent_vectors(other, reference, metric)) for other in others),
    )


class _TangentLinear(Baseline):
    """Tangent space → StandardScaler → a linear classifier with penalty C (given, or chosen by inner CV)."""

    supervised = True

    def __init__(self, metric=DEFAULT_METRIC, C=None, C_grid=C_GRID, cv=5, random_state=0):
        self.metric = metric
        self.C = C
        self.C_grid = C_grid
        self.cv = cv
        self.random_state = random_state

    def _classifier(self, C):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_params(self) -> None:
        check_metric(self.metric, "metric")
        check_int(self.cv, "cv", minimum=2)
        values = [self.C] if self.C is not None else list(np.ravel(self.C_grid))
        if not values or not all(isinstance(c, (int, float, np.number)) and np.isfinite(c) and c > 0 for c in values):
            raise ValueError(
                f"C={self.C!r} / C_grid={self.C_grid!r}: C must be a positive number, or None with a non-empty "
                "C_grid of positive numbers to choose it by inner cross-validation."
            )

    def _fit(self, X, y):
        self._check_params()
        if self.C is not None:
            self.C_, self.cv_scores_ = float(self.C), {}
        else:
            self.C_, self.cv_scores_ = self._select_C(X, y)
        self.reference_, self.scaler_, F = tangent_features(X, self.metric)
        self.classifier_ = self._classifier(self.C_).fit(F, y)
        self.n_components_ = F.shape[1]

    def _select_C(self, X, y):
        """(C with the best mean inner score, {C: mean score}); each fold refits reference and scaler."""
        n_splits = min(int(self.cv), int(np.bincount(y).min()))
        if n_splits < 2:
            return FALLBACK_C, {}
        grid = [float(c) for c in np.ravel(self.C_grid)]
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed_of(self.random_state)).split(X, y)
        scores: dict[float, list[float]] = {c: [] for c in grid}
        for tr, va in folds:
            _, _, A, B = tangent_features(X[tr], self.metric, X[va])
            for c in grid:
                model = self._classifier(c).fit(A, y[tr])
                if len(self.classes_) == 2:
                    scores[c].append(roc_auc_score(y[va], model.decision_function(B)))
                else:
                    scores[c].append(accuracy_score(y[va], model.predict(B)))
        means = {c: float(np.mean(s)) for c, s in scores.items()}
        best = max(grid, key=lambda c: (means[c], -grid.index(c)))  # ties: first in the grid
        return best, means

    def _transform(self, X):
        return self.scaler_.transform(tangent_vectors(X, self.reference_, self.metric))

    def _features(self, X) -> np.ndarray:
        """Standardised float64 tangent vectors of X, after the checks `transform` makes."""
        return self._transform(self._check_fitted_input(X))

    def predict(self, X) -> np.ndarray:
        """The predicted class label of each sample (labels as given to fit)."""
        features = self._features(X)  # checks fitted first: NotFittedError, not an AttributeError
        return self.classes_[self.classifier_.predict(features)]

    def decision_function(self, X) -> np.ndarray:
        """Signed distances to the decision boundary: (n,) for two classes, (n, n_classes) beyond."""
        features = self._features(X)
        return self.classifier_.decision_function(features)


class TangentLogisticBaseline(_TangentLinear):
    """Tangent space + standardisation + l2 logistic regression (lbfgs), C chosen by inner CV.

    Parameters
    ----------
    metric : {"riemann", "logeuclid", "euclid"}, default=norank.tangent.DEFAULT_METRIC
        Reference mean and logarithmic map.
    C : float or None, default=None
        Inverse penalty; None chooses it from `C_grid` by inner stratified cross-validation.
    C_grid : tuple of float, default=(1e-5, 1e-4, 1e-3, 0.01, 0.1, 1)
    cv : int, default=5
        Inner folds (fewer when a class has fewer training samples).
    random_state : int, default=0
        Seeds the inner fold split.
    """

    name = "tangent_logistic"

    def _classifier(self, C):
        return LogisticRegression(C=C, max_iter=5000)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of `classes_`."""
        features = self._features(X)
        return self.classifier_.predict_proba(features)


class TangentSVCBaseline(_TangentLinear):
    """Tangent space + standardisation + l2 linear SVM (squared hinge, liblinear), C chosen by inner CV.

    Parameters are those of `TangentLogisticBaseline`; `random_state` also seeds liblinear's coordinate order.
    """

    name = "tangent_svc"

    def _classifier(self, C):
        return LinearSVC(C=C, max_iter=20000, random_state=seed_of(self.random_state))
