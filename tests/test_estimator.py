"""NoRankEmbedder: properties of the embedding, persistence, determinism and every bad input."""

import json
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from norank import NoRankEmbedder
from norank.training import NonFiniteLossError

FAST = dict(epochs=3, hidden_layer_sizes=(32,), embedding_dim=8, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 6, 5)) * 3
    y = np.repeat(np.arange(4), 15)
    X = (centers[y] + rng.normal(size=(60, 6, 5))).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y = blobs
    return NoRankEmbedder(**FAST).fit(X, y)


def test_transform_gives_unit_norm_float32_rows(fitted, blobs):
    Z = fitted.transform(blobs[0])
    assert Z.dtype == np.float32 and Z.shape == (60, 8)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def test_transform_invariant_to_batching_and_row_order(fitted, blobs):
    X = blobs[0]
    Z = fitted.transform(X)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(fitted.transform(X[perm]), Z[perm], atol=1e-6)
    pieces = np.concatenate([fitted.transform(X[i : i + 7]) for i in range(0, len(X), 7)])
    np.testing.assert_allclose(pieces, Z, atol=1e-6)


def test_same_random_state_is_bitwise_deterministic(blobs):
    X, y = blobs
    a = NoRankEmbedder(**FAST).fit(X, y).transform(X)
    b = NoRankEmbedder(**FAST).fit(X, y).transform(X)
    assert np.array_equal(a, b)
    c = NoRankEmbedder(**{**FAST, "random_state": 1}).fit(X, y).transform(X)
    assert not np.array_equal(a, c)


def test_global_rng_state_is_neither_used_nor_changed(blobs):
    import torch

    X, y = blobs
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 - this test is about the legacy global state
    before_t, before_np = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    a = NoRankEmbedder(**FAST).fit(X, y).transform(X)
    assert torch.equal(torch.get_rng_state(), before_t)
    assert np.array_equal(np.random.get_state()[1], before_np)  # noqa: NPY002
    torch.manual_seed(999)
    assert np.array_equal(NoRankEmbedder(**FAST).fit(X, y).transform(X), a)


def test_save_load_round_trip_is_bitwise(fitted, blobs, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = NoRankEmbedder.load(tmp_path / "model")
    assert np.array_equal(loaded.transform(blobs[0]), fitted.transform(blobs[0]))
    assert loaded.get_params() == fitted.get_params()
    assert np.array_equal(loaded.classes_, fitted.classes_)
    assert loaded.history_ == fitted.history_


def test_save_load_keeps_the_principal_components(blobs, tmp_path):
    est = NoRankEmbedder(**{**FAST, "pca_components": 12}).fit(*blobs)
    est.save(tmp_path / "model")
    loaded = NoRankEmbedder.load(tmp_path / "model")
    assert loaded.preprocessor_.n_features_ == 12
    assert np.array_equal(loaded.transform(blobs[0]), est.transform(blobs[0]))


def test_memory_mapped_input_with_pca_trains_like_in_memory(blobs, tmp_path):
    X, y = blobs
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = {**FAST, "pca_components": 12}
    a = NoRankEmbedder(**params).fit(X, y).transform(X)
    b = NoRankEmbedder(**params).fit(mm, y).transform(mm)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_pickle_round_trip(fitted, blobs):
    clone = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(clone.transform(blobs[0]), fitted.transform(blobs[0]))


def test_history_names_every_term_per_epoch(blobs):
    weights = dict(diversity_weight=0.1, uniformity_weight=0.1, local_weight=0.1, global_weight=0.0)
    est = NoRankEmbedder(**FAST, **weights, schedule="robbins_monro").fit(*blobs)
    h = est.history_
    for key in ("loss", "triplet", "diversity", "uniformity", "local", "active_fraction", "embedding_spread", "lr"):
        assert len(h[key]) == est.n_epochs_ == 3
    assert "global" not in h  # a term with weight 0 is not computed, so not reported
    assert all(0.0 <= v <= 1.0 for v in h["active_fraction"])
    # The total is the loss plus each weighted term, epoch by epoch (means of per-step sums).
    total = np.add(h["triplet"], sum(0.1 * np.asarray(h[k]) for k in ("diversity", "uniformity", "local")))
    assert np.allclose(h["loss"], total, rtol=1e-5)
    # Robbins–Monro: the learning rate decreases step by step.
    assert h["lr"][0] > h["lr"][-1] > 0


def test_string_and_object_labels(blobs):
    X, y = blobs
    names = np.array(["ant", "bee", "cat", "dog"])[y]
    a = NoRankEmbedder(**FAST).fit(X, names)
    assert list(a.classes_) == ["ant", "bee", "cat", "dog"]
    b = NoRankEmbedder(**FAST).fit(X, names.astype(object))
    assert np.array_equal(a.transform(X), b.transform(X))
    assert np.array_equal(NoRankEmbedder(**FAST).fit(X, y).transform(X), a.transform(X))


def test_score_is_leave_one_out_precision_at_1(fitted, blobs):
    X, y = blobs
    Z = fitted.transform(X)
    d = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert fitted.score(X, y) == pytest.approx(np.mean(y[d.argmin(1)] == y))


def test_inputs_are_never_modified(blobs):
    X, y = blobs
    X64 = X.astype(np.float64)
    X_copy, y_copy = X64.copy(), y.copy()
    est = NoRankEmbedder(**{**FAST, "normalization": "feature"}).fit(X64, y)
    est.transform(X64)
    assert np.array_equal(X64, X_copy) and np.array_equal(y, y_copy)


def test_memory_mapped_input_trains_like_in_memory(blobs, tmp_path):
    X, y = blobs
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    a = NoRankEmbedder(**FAST).fit(X, y).transform(X)
    b = NoRankEmbedder(**FAST).fit(mm, y).transform(mm)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_symmetric_matrices_use_upper_triangle_and_fisher_z():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 7, 30))
    C = np.stack([np.corrcoef(a) for a in A]).astype(np.float32)
    y = np.repeat([0, 1], 20)
    est = NoRankEmbedder(**{**FAST, "fisher_z": True, "symmetric": True}).fit(C, y)
    assert est.preprocessor_.symmetric_ and est.preprocessor_.n_features_ == 21
    auto = NoRankEmbedder(**FAST).fit(C, y)
    assert auto.preprocessor_.symmetric_
    assert not NoRankEmbedder(**FAST).fit(A[:, :, :7], y).preprocessor_.symmetric_


@pytest.mark.parametrize(
    "option",
    [
        {"mining": "hard"},
        {"mining": "batch_hard"},
        {"mining": "all"},
        {"distance": "euclidean"},
        {"projection_head": True},
        {"optimizer": "adam", "learning_rate": 1e-3},
        {"schedule": "cosine"},
        {"schedule": "constant"},
        {"loss": "proxy_anchor"},
        {"local_weight": 0.5, "global_weight": 0.5},
        {"dropout": 0.2, "layer_norm": True},
        {"encoder": "conv"},
        {"encoder": "transformer"},
        {"class_sampling": "sqrt"},
        {"validation_fraction": 0.2, "n_iter_no_change": 1},
        {"pca_components": 10},
        {"pca_components": 10, "encoder": "transformer"},
    ],
)
def test_every_option_trains(blobs, option):
    X, y = blobs
    est = NoRankEmbedder(**{**FAST, **option}).fit(X, y)
    Z = est.transform(X)
    assert np.isfinite(Z).all() and Z.shape == (60, 8)
    if "validation_fraction" in option:
        assert 1 <= len(est.history_["val_knn_accuracy"]) <= 3


def test_digits_heldout_quality():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    est = NoRankEmbedder(random_state=0).fit(Xtr, ytr)
    acc = KNeighborsClassifier(1).fit(est.transform(Xtr), ytr).score(est.transform(Xte), yte)
    assert acc >= 0.97


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, error, match",
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), ValueError, "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), ValueError, "infinity"),
        (lambda X: X[:, 0, 0], ValueError, "2-D or higher"),
        (lambda X: X[:0], ValueError, "0 sample"),
        (lambda X: X.astype(str), TypeError, "numeric"),
        (lambda X: np.array([{"a": 1}] * len(X), dtype=object).reshape(-1, 1), TypeError, "numeric"),
    ],
)
def test_bad_X_is_refused(blobs, bad, error, match):
    X, y = blobs
    with pytest.raises(error, match=match):
        NoRankEmbedder(**FAST).fit(bad(X), y[: len(bad(X))] if len(bad(X)) else y[:0])


def test_y_of_another_length(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="y has 59 labels but X has 60 samples"):
        NoRankEmbedder(**FAST).fit(X, y[:-1])


def test_y_missing_or_one_class(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="requires y"):
        NoRankEmbedder(**FAST).fit(X, None)
    with pytest.raises(ValueError, match="at least 2 classes"):
        NoRankEmbedder(**FAST).fit(X, np.zeros(len(X)))


def test_single_sample_classes_warn_and_are_never_anchors(blobs):
    X, y = blobs
    y = y.copy()
    y[0] = 99
    with pytest.warns(UserWarning, match="single sample"):
        NoRankEmbedder(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="single sample"):
        NoRankEmbedder(**FAST).fit(X[:5], np.arange(5))


def test_transform_with_another_shape(fitted, blobs):
    with pytest.raises(ValueError, match=r"shape \(5, 6\).*\(6, 5\)"):
        fitted.transform(blobs[0].transpose(0, 2, 1))


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        NoRankEmbedder().transform(np.zeros((3, 4)))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_non_finite_loss_stops_with_the_likely_cause(blobs, optimizer):
    X, y = blobs
    est = NoRankEmbedder(**{**FAST, "learning_rate": 1e38, "schedule": "constant", "optimizer": optimizer})
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        est.fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mining": "random"}, "mining='random'"),
        ({"epochs": 0}, "epochs"),
        ({"margin": -1}, "margin"),
        ({"samples_per_class": 1}, "samples_per_class"),
        ({"schedule_kappa": 0.3}, "Robbins"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"device": "tpu"}, "device"),
        ({"pca_components": 0}, "pca_components"),
        ({"pca_components": 61}, "exceeds what 60 training samples"),
        ({"pca_components": 5, "encoder": "conv"}, "pixel grid"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        NoRankEmbedder(**{**FAST, **params}).fit(*blobs)


def test_load_refuses_corrupt_or_foreign_directories(fitted, tmp_path):
    with pytest.raises(ValueError, match="not a norank model directory"):
        NoRankEmbedder.load(tmp_path)
    fitted.save(tmp_path / "m")
    config = tmp_path / "m" / "config.json"
    original = config.read_text()
    config.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        NoRankEmbedder.load(tmp_path / "m")
    config.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="does not describe a norank model"):
        NoRankEmbedder.load(tmp_path / "m")
    config.write_text(original)
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x80\x04garbage pickle-like bytes")
    with pytest.raises(ValueError, match="not a valid norank model"):
        NoRankEmbedder.load(tmp_path / "m")
