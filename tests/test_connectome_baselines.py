"""tangent_logistic and tangent_svc against a direct pyRiemann + scikit-learn pipeline.

Oracle: GridSearchCV over Pipeline(TangentSpace, StandardScaler, LogisticRegression / LinearSVC) with the
same C grid, the same inner folds and the same score: same chosen C, same predictions, same scores.
"""

import warnings

import numpy as np
import pytest
from pyriemann.tangentspace import TangentSpace
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from norank.baselines import BASELINES, SPD_ONLY, SUPERVISED, make_baseline
from norank.baselines.connectome import (
    C_GRID,
    FALLBACK_C,
    TangentLogisticBaseline,
    TangentSVCBaseline,
)


def connectomes(n=48, r=5, n_classes=2, seed=0):
    """Sample covariances whose first two regions covary more in higher classes; labels as strings."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    A = rng.normal(size=(n, r, 6 * r))
    A[:, 1] += (0.6 * y)[:, None] * A[:, 0]
    X = A @ A.transpose(0, 2, 1) / (6 * r)
    X.setflags(write=False)
    return X, np.array(["class_a", "class_b", "class_c"])[y]


def oracle(name, metric, X, y, seed, scoring):
    head = (
        LogisticRegression(max_iter=5000)
        if name == "tangent_logistic"
        else LinearSVC(max_iter=20000, random_state=seed)
    )
    pipe = Pipeline([("ts", TangentSpace(metric=metric)), ("scale", StandardScaler()), ("clf", head)])
    search = GridSearchCV(
        pipe, {"clf__C": list(C_GRID)}, scoring=scoring, cv=StratifiedKFold(5, shuffle=True, random_state=seed)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return search.fit(X, y)


@pytest.mark.parametrize(
    "name,metric", [("tangent_logistic", "riemann"), ("tangent_logistic", "logeuclid"), ("tangent_svc", "riemann")]
)
def test_equals_grid_searched_pyriemann_sklearn_pipeline(name, metric):
    X, y = connectomes(48, seed=0)
    X_new, y_new = connectomes(20, seed=1)
    model = make_baseline(name, random_state=3, metric=metric).fit(X, y)
    search = oracle(name, metric, X, y, 3, "roc_auc")
    assert model.C_ == search.best_params_["clf__C"]
    np.testing.assert_allclose([model.cv_scores_[c] for c in C_GRID], search.cv_results_["mean_test_score"], atol=1e-9)
    np.testing.assert_array_equal(model.predict(X_new), search.predict(X_new))
    np.testing.assert_allclose(model.decision_function(X_new), search.decision_function(X_new), rtol=1e-6, atol=1e-8)
    if name == "tangent_logistic":
        np.testing.assert_allclose(model.predict_proba(X_new), search.predict_proba(X_new), rtol=1e-6, atol=1e-8)
    else:
        assert not hasattr(model, "predict_proba")
    assert (model.predict(X_new) == y_new).mean() > 0.6  # the signal is found, not just copied


def test_multiclass_chooses_c_by_accuracy():
    X, y = connectomes(60, n_classes=3, seed=2)
    X_new, _ = connectomes(12, n_classes=3, seed=3)
    model = TangentLogisticBaseline(metric="logeuclid", random_state=0).fit(X, y)
    search = oracle("tangent_logistic", "logeuclid", X, y, 0, "accuracy")
    assert model.C_ == search.best_params_["clf__C"]
    np.testing.assert_array_equal(model.predict(X_new), search.predict(X_new))
    assert model.decision_function(X_new).shape == (12, 3) and list(model.classes_) == ["class_a", "class_b", "class_c"]


def test_fixed_c_is_the_plain_pipeline_and_transform_gives_its_features():
    X, y = connectomes(40, seed=4)
    X_new, _ = connectomes(10, seed=5)
    model = TangentSVCBaseline(metric="logeuclid", C=0.1, random_state=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        front = Pipeline([("ts", TangentSpace(metric="logeuclid")), ("scale", StandardScaler())]).fit(X)
    pipe = Pipeline([*front.steps, ("clf", LinearSVC(C=0.1, max_iter=20000, random_state=1))]).fit(X, y)
    assert model.C_ == 0.1 and model.cv_scores_ == {}
    np.testing.assert_array_equal(model.predict(X_new), pipe.predict(X_new))
    Z = model.transform(X_new)
    assert Z.dtype == np.float32 and Z.shape == (10, 15)
    np.testing.assert_allclose(Z, front.transform(X_new), atol=1e-5)


def test_registry_groups_and_settings():
    for name, cls in [("tangent_logistic", TangentLogisticBaseline), ("tangent_svc", TangentSVCBaseline)]:
        assert BASELINES[name] is cls and name in SUPERVISED and name in SPD_ONLY
        model = make_baseline(name, random_state=4, C=1.0)
        assert model.name == name and model.supervised and clone(model).get_params() == model.get_params()
    with pytest.raises(TypeError, match="does not take n_components"):
        make_baseline("tangent_logistic", n_components=3)


def test_bad_input_and_settings_get_one_clear_error():
    X, y = connectomes(20, seed=6)
    with pytest.raises(ValueError, match="needs y_train"):
        make_baseline("tangent_logistic").fit(X)
    with pytest.raises(ValueError, match=r"symmetric positive-definite matrices \(n, R, R\)"):
        make_baseline("tangent_svc").fit(np.ones((20, 5, 4)), y)
    with pytest.raises(ValueError, match="Matrix 0 is not symmetric"):
        make_baseline("tangent_svc").fit(np.triu(X), y)  # images and other square tensors are refused
    with pytest.raises(ValueError, match="C must be a positive number"):
        make_baseline("tangent_logistic", C=0.0).fit(X, y)
    with pytest.raises(ValueError, match="non-empty C_grid"):
        make_baseline("tangent_logistic", C_grid=()).fit(X, y)
    with pytest.raises(ValueError, match="^metric='euclidean' is not supported"):
        make_baseline("tangent_logistic", metric="euclidean").fit(X, y)
    model = make_baseline("tangent_logistic", C=1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(5, 5\)"):
        model.predict(X[:, :4, :4])


def test_one_sample_class_falls_back_to_a_fixed_c():
    X, y = connectomes(12, seed=7)
    y = np.array(y)
    y[0] = "rare"
    model = make_baseline("tangent_logistic", metric="logeuclid").fit(X, y)
    assert model.cv_scores_ == {} and model.C_ == FALLBACK_C
    assert set(model.predict(X)) <= set(y)


@pytest.mark.parametrize("method", ["predict", "decision_function", "transform"])
def test_unfitted_baseline_raises_not_fitted(method):
    from sklearn.exceptions import NotFittedError

    from norank.baselines import make_baseline

    eye = np.tile(np.eye(4), (6, 1, 1))
    with pytest.raises(NotFittedError):
        getattr(make_baseline("tangent_logistic"), method)(eye)
