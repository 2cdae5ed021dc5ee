"""encoder="auto": which inputs get a choice, the selection split, the score, and the fit it leads to."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

from norank import NoRankEmbedder
from norank import selection
from norank.encoders import ConvEncoder, MLPEncoder

FAST = dict(epochs=2, batch_size=40, random_state=0)


@pytest.fixture(scope="module")
def digit_images():
    X, y = load_digits(return_X_y=True)
    keep = np.random.default_rng(0).permutation(len(y))[:300]
    return X[keep].reshape(-1, 8, 8).astype(np.float32), y[keep]


def test_only_unsymmetric_2d_images_get_a_choice():
    rng = np.random.default_rng(0)
    images = rng.random((6, 5, 7))
    A = rng.random((6, 4, 4))
    connectivity = A + A.transpose(0, 2, 1)
    assert selection.candidate_encoders(images, "auto") == ("mlp", "conv")
    assert selection.candidate_encoders(rng.random((6, 12)), "auto") == ("mlp",)
    assert selection.candidate_encoders(rng.random((6, 2, 3, 4)), "auto") == ("mlp",)
    assert selection.candidate_encoders(connectivity, "auto") == ("mlp",)
    assert selection.candidate_encoders(connectivity, False) == ("mlp", "conv")
    assert selection.candidate_encoders(images, True) == ("mlp",)


def test_selection_split_is_stratified_disjoint_and_capped(monkeypatch):
    codes = np.repeat(np.arange(5), [40, 30, 20, 2, 1])
    fit, score = selection.selection_split(codes, np.random.default_rng(0))
    assert not set(fit) & set(score)
    for c in range(4):
        assert np.sum(codes[fit] == c) >= 1 and np.sum(codes[score] == c) >= 1
    assert np.sum(codes[fit] == 4) == 1 and np.sum(codes[score] == 4) == 0  # a singleton is only fitted
    assert abs(np.sum(codes[score] == 0) - 10) <= 1  # about a quarter of a large class
    monkeypatch.setattr(selection, "SELECTION_MAX_SAMPLES", 30)
    fit, score = selection.selection_split(codes, np.random.default_rng(0))
    assert len(fit) + len(score) <= 30 + 2 * 5  # the cap, give or take the two-per-class floor
    assert set(np.unique(codes[fit])) == set(range(5))


def test_selection_score_matches_sklearn():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(80, 6))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    y = rng.integers(0, 3, 80)
    expected = KNeighborsClassifier(1).fit(Z[:50], y[:50]).score(Z[50:], y[50:])
    assert selection.knn_accuracy(Z[:50], y[:50], Z[50:], y[50:]) == pytest.approx(expected)


def test_auto_fits_the_better_scored_encoder_exactly_as_a_direct_fit(digit_images):
    X, y = digit_images
    auto = NoRankEmbedder(encoder="auto", **FAST).fit(X, y)
    scores = auto.encoder_selection_
    assert set(scores) == {"mlp", "conv"} and all(0 <= s <= 1 for s in scores.values())
    best = "conv" if scores["conv"] > scores["mlp"] else "mlp"
    assert auto.encoder_kind_ == best and auto.encoder == "auto"
    assert isinstance(auto.encoder_, ConvEncoder if best == "conv" else MLPEncoder)
    direct = NoRankEmbedder(encoder=best, **FAST).fit(X, y)
    np.testing.assert_array_equal(auto.transform(X), direct.transform(X))


def test_auto_on_vectors_is_the_mlp_without_trial_fits(digit_images, monkeypatch):
    X, y = digit_images
    monkeypatch.setattr(selection, "knn_accuracy", lambda *a: pytest.fail("no trial fit expected"))
    est = NoRankEmbedder(encoder="auto", **FAST).fit(X.reshape(len(X), -1), y)
    assert est.encoder_kind_ == "mlp" and est.encoder_selection_ == {"mlp": None}


def test_saved_auto_model_rebuilds_the_chosen_encoder(digit_images, tmp_path):
    X, y = digit_images
    est = NoRankEmbedder(encoder="auto", **FAST).fit(X, y)
    loaded = NoRankEmbedder.load(est.save(tmp_path / "m"))
    assert loaded.encoder_kind_ == est.encoder_kind_ and loaded.encoder_selection_ == est.encoder_selection_
    np.testing.assert_allclose(loaded.transform(X), est.transform(X), atol=1e-6)


def test_all_singleton_classes_leave_nothing_to_score():
    X = np.random.default_rng(0).random((5, 4, 4))
    kind, scores = selection.select_encoder(NoRankEmbedder(**FAST), X, np.arange(5))
    assert kind == "mlp" and scores == {"mlp": None, "conv": None}
