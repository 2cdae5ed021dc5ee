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
    images = X[keep].reshape(-1, 8, 8).astype(np.float32)
    return np.kron(images, np.ones((1, 2, 2), np.float32)), y[keep]  # 16x16: large enough to offer conv


def test_only_unsymmetric_2d_images_get_a_choice():
    rng = np.random.default_rng(0)
    images = rng.random((6, 16, 20))
    A = rng.random((6, 16, 16))
    connectivity = A + A.transpose(0, 2, 1)
    assert selection.candidate_encoders(images, "auto") == ("mlp", "conv")
    assert selection.candidate_encoders(rng.random((6, 12)), "auto") == ("mlp",)
    assert selection.candidate_encoders(rng.random((6, 2, 3, 4)), "auto") == ("mlp",)
    assert selection.candidate_encoders(connectivity, "auto") == ("mlp",)
    assert selection.candidate_encoders(connectivity, False) == ("mlp", "conv")
    assert selection.candidate_encoders(images, True) == ("mlp",)
    assert selection.candidate_encoders(images, "auto", pca_components=10) == ("mlp",)  # no pixel grid left
    assert selection.candidate_encoders(rng.random((6, 8, 8)), "auto") == ("mlp",)  # too small for the conv stack


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
    X = np.random.default_rng(0).random((5, 16, 16))
    kind, scores = selection.select_encoder(NoRankEmbedder(**FAST), X, np.arange(5))
    assert kind == "mlp" and scores == {"mlp": None, "conv": None}


def test_clearly_apart_weighs_the_gap_against_sampling_noise():
    assert selection.clearly_apart(0.95, 0.725, n_scored=70)  # faces: the MLP far ahead
    assert not selection.clearly_apart(0.557, 0.443, n_scored=88)  # 1.5 standard errors
    assert selection.clearly_apart(0.557, 0.443, n_scored=880)  # the same gap on ten times the samples
    assert not selection.clearly_apart(1.0, 1.0, n_scored=50)  # a tie is never decided


@pytest.mark.parametrize("short, full, rounds, chosen", [
    ({"mlp": 0.95, "conv": 0.70}, None, 1, "mlp"),  # apart after the short trials: no full-length trials
    ({"mlp": 0.56, "conv": 0.50}, {"mlp": 0.50, "conv": 0.62}, 2, "conv"),  # mean 0.53 against 0.56
    ({"mlp": 0.50, "conv": 0.52}, {"mlp": 0.55, "conv": 0.53}, 2, "mlp"),  # a tie in the mean goes to the MLP
    ({"mlp": 1.0, "conv": 1.0}, None, 1, "mlp"),  # both perfect: nothing left to separate
])
def test_close_short_trials_are_settled_by_full_length_trials(digit_images, monkeypatch, short, full, rounds, chosen):
    X, y = digit_images
    calls = []

    def scripted(est, candidates, parts, epochs):
        calls.append(epochs)
        return dict(short if len(calls) == 1 else full)

    monkeypatch.setattr(selection, "_trial_scores", scripted)
    est = NoRankEmbedder(encoder="auto", epochs=30, random_state=0)
    kind, scores = selection.select_encoder(est, X, y)
    assert calls == [10, 30][:rounds] and kind == chosen
    expected = short if full is None else {k: (short[k] + full[k]) / 2 for k in short}
    assert scores == pytest.approx(expected)
