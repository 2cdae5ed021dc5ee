"""Classification scores of a held-out run: accuracy, balanced accuracy and ROC-AUC.

An embedding is scored through a probe: a logistic regression (standardised inputs, C = 1) fitted on the
training embeddings and its labels, scored on the test embeddings; the same probe for every method, so
the scores compare embeddings. A method that predicts labels itself (`methods.PREDICTING`) is scored on
its own predictions and its own class scores (predict_proba, else decision_function).
ROC-AUC: binary, the score of the second class (sklearn's positive class); beyond two classes the
macro average of one-vs-rest AUCs over the classes present in the test part (sklearn's ``multi_class=
"ovr"``, average="macro" when every class is present); None when the test part holds one class only.
"""

from __future__ import annotations

import warnings

import numpy as np

KEYS = ("accuracy", "balanced_accuracy", "roc_auc")


def probe_scores(Z_train, y_train, Z_test, y_test, random_state: int = 0) -> dict:
    """KEYS of a logistic-regression probe fitted on (Z_train, y_train), scored on (Z_test, y_test)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=random_state))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a probe, not a tuned classifier
        probe.fit(np.asarray(Z_train, dtype=np.float64), y_train)
    Z_test = np.asarray(Z_test, dtype=np.float64)
    return scores(y_test, probe.predict(Z_test), probe.predict_proba(Z_test), probe.classes_)


def own_scores(model, X_test, y_test) -> dict:
    """KEYS of a model that predicts: its predict, and predict_proba (else decision_function) for AUC."""
    predicted = model.predict(X_test)
    if hasattr(model, "predict_proba"):
        class_scores = model.predict_proba(X_test)
    elif hasattr(model, "decision_function"):
        class_scores = model.decision_function(X_test)
    else:
        class_scores = None
    classes = getattr(model, "classes_", None)
    return scores(y_test, predicted, class_scores, np.unique(y_test) if classes is None else classes)


def scores(y_true, predicted, class_scores, classes) -> dict:
    """accuracy, balanced_accuracy and roc_auc from predictions and per-class scores (columns in `classes`
    order; binary: one column of the second class, or two columns)."""
    from sklearn.metrics import balanced_accuracy_score

    y_true = np.asarray(y_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # predicted classes absent from the test part
        balanced = float(balanced_accuracy_score(y_true, predicted))
    auc = None if class_scores is None else roc_auc(y_true, class_scores, classes)
    return {"accuracy": float(np.mean(np.asarray(predicted) == y_true)), "balanced_accuracy": balanced, "roc_auc": auc}


def roc_auc(y_true, class_scores, classes) -> float | None:
    """Binary AUC of the second class, or the macro one-vs-rest AUC over the classes in y_true."""
    from sklearn.metrics import roc_auc_score

    y_true, s, classes = np.asarray(y_true), np.asarray(class_scores, dtype=np.float64), np.asarray(classes)
    present = [i for i, c in enumerate(classes) if 0 < np.sum(y_true == c) < len(y_true)]
    if not present:
        return None
    if len(classes) == 2:
        positive = s if s.ndim == 1 else s[:, 1]
        return float(roc_auc_score(y_true == classes[1], positive))
    return float(np.mean([roc_auc_score(y_true == classes[i], s[:, i]) for i in present]))
