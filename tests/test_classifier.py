"""NoRankClassifier: scikit-learn's classifier checks, the head against scikit-learn's LogisticRegression,
labels in the caller's dtype, accuracy as score, and save/load through the model files."""

import inspect
import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from norank import NoRankClassifier, NoRankEmbedder
from norank.classifier import HEAD_C, HEAD_MAX_ITER
from norank.params import PARAMETERS

TINY = dict(hidden_layer_sizes=(8,), embedding_dim=4, epochs=1, batch_size=12, encoder="mlp")


# The checks draw 2-feature data, and per-sample z-scores need at least 3 values per sample, so the checked
# instance standardises per feature; a short training keeps the ~60 checks fast.
@parametrize_with_checks(
    [NoRankClassifier(epochs=2, hidden_layer_sizes=(16,), embedding_dim=8, normalization="feature", random_state=0)]
)
def test_sklearn_classifier_checks(estimator, check):
    check(estimator)


def test_every_embedder_keyword_with_the_same_default():
    assert inspect.signature(NoRankClassifier.__init__) == inspect.signature(NoRankEmbedder.__init__)
    assert NoRankClassifier().get_params() == NoRankEmbedder().get_params()
    assert set(NoRankClassifier().get_params()) == set(PARAMETERS)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 3, 4)) * 2
    y = np.repeat(np.arange(3), 12)
    return (centers[y] + rng.normal(size=(36, 3, 4))).astype(np.float32), y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_head_is_scikit_learns_logistic_regression_on_the_embedding(blobs, n_classes):
    X, y = blobs
    keep = y < n_classes
    X, y = X[keep], y[keep]
    clf = NoRankClassifier(**TINY, random_state=0).fit(X, y)
    Z = clf._embed(X)
    np.testing.assert_allclose(Z, clf.transform(X), atol=1e-6)  # the float64 embedding is the embedding
    oracle = LogisticRegression(C=HEAD_C, max_iter=HEAD_MAX_ITER).fit(Z, y)
    np.testing.assert_allclose(clf.coef_, oracle.coef_, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X), oracle.predict_proba(Z), atol=1e-12)
    np.testing.assert_allclose(clf.decision_function(X), oracle.decision_function(Z), atol=1e-9)
    assert np.array_equal(clf.predict(X), oracle.predict(Z))
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)


LABELS = {
    "str": np.array(["cat", "dog", "eel"]),
    "uint64": np.array([2**63, 2**63 + 5, 2**64 - 1], np.uint64),
    "int8": np.array([-3, 0, 4], np.int8),
    "bool": np.array([False, True]),
    "float": np.array([-1.0, 2.0, 7.0]),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_labels_come_back_in_the_callers_dtype_and_survive_save_load(blobs, tmp_path, kind):
    X, codes = blobs
    labels = LABELS[kind]
    y = labels[codes % len(labels)]
    clf = NoRankClassifier(**TINY, random_state=0).fit(X, y)
    predicted = clf.predict(X)
    assert clf.classes_.dtype == labels.dtype and predicted.dtype == labels.dtype
    assert set(predicted) <= set(labels)
    loaded = NoRankClassifier.load(clf.save(tmp_path / "m"))
    assert loaded.classes_.dtype == labels.dtype and np.array_equal(loaded.classes_, clf.classes_)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))  # bitwise
    assert np.array_equal(loaded.predict(X), predicted)


def test_continuous_targets_are_refused(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="Unknown label type"):
        NoRankClassifier(**TINY).fit(X, y + 0.5 * np.arange(len(y)))


def test_embedder_and_classifier_folders_are_not_interchangeable(blobs, tmp_path):
    X, y = blobs
    NoRankClassifier(**TINY, random_state=0).fit(X, y).save(tmp_path / "clf")
    NoRankEmbedder(**TINY, random_state=0).fit(X, y).save(tmp_path / "emb")
    with pytest.raises(ValueError, match="holds a NoRankClassifier.*NoRankClassifier.load"):
        NoRankEmbedder.load(tmp_path / "clf")
    with pytest.raises(ValueError, match="holds a NoRankEmbedder.*NoRankEmbedder.load"):
        NoRankClassifier.load(tmp_path / "emb")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c["head"].update(kind="knn"), "head must be"),
        (lambda c: c["head"].update(extra=1), "head must be"),
        (lambda c: c.update(head=[]), "head must be"),
        (lambda c: c["fitted"]["classes_"]["values"].pop(), "implies F64"),  # 2 classes: one row of weights
    ],
)
def test_load_refuses_a_tampered_head(blobs, tmp_path, edit, match):
    X, y = blobs
    folder = NoRankClassifier(**TINY, random_state=0).fit(X, y).save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        NoRankClassifier.load(folder)


def test_held_out_digits_accuracy_matches_nearest_neighbours_in_the_same_embedding():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:700], order[700:1000]
    clf = NoRankClassifier(epochs=5, random_state=0).fit(X[train], y[train])
    accuracy = clf.score(X[test], y[test])
    knn = KNeighborsClassifier(1).fit(clf.transform(X[train]), y[train]).score(clf.transform(X[test]), y[test])
    assert accuracy > 0.95 and accuracy >= knn - 0.02, (accuracy, knn)
    proba = clf.predict_proba(X[test])
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(X[test]))


def test_cli_predict_writes_the_labels_of_a_saved_classifier(blobs, tmp_path):
    import os
    import subprocess
    import sys

    X, codes = blobs
    y = LABELS["str"][codes]
    clf = NoRankClassifier(**TINY, random_state=0).fit(X, y)
    clf.save(tmp_path / "model")
    np.save(tmp_path / "X.npy", X)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "norank",
            "predict",
            str(tmp_path / "model"),
            str(tmp_path / "X.npy"),
            "--out",
            str(tmp_path / "labels.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 36 predicted labels (3 classes)" in done.stdout
    labels = np.load(tmp_path / "labels.npy", allow_pickle=False)
    assert labels.dtype == clf.classes_.dtype and np.array_equal(labels, clf.predict(X))


def test_cli_predict_refuses_an_embedder_folder_in_one_line(blobs, tmp_path, capsys):
    from norank.cli import main

    X, y = blobs
    NoRankEmbedder(**TINY, random_state=0).fit(X, y).save(tmp_path / "embedder")
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tmp_path / "embedder"), str(tmp_path / "X.npy"), "--out", str(tmp_path / "y.npy")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "holds a NoRankEmbedder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "y.npy").exists()
