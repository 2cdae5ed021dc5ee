import itertools

import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from norank.metrics import KEYS, evaluate, knn_accuracy


def _labelled(n=240, n_classes=5, d_in=(3, 4), m=6, spread=1.0, seed=0, singleton=True):
    """Inputs X (n, *d_in), embeddings Z (a noisy view of X) and labels with overlapping classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    if singleton:
        y[0] = n_classes  # a one-sample class: no retrieval query, silhouette 0
    centres = rng.standard_normal((n_classes + 1, int(np.prod(d_in))))
    X = (centres[y] * spread + rng.standard_normal((n, int(np.prod(d_in))))).reshape((n, *d_in))
    Z = X.reshape(n, -1)[:, :m] + 0.5 * rng.standard_normal((n, m))
    return X, Z, y


def _pml(Z, y):
    calc = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), device=torch.device("cpu")
    )
    acc = calc.get_accuracy(Z, y)  # query == reference, default (faiss) knn_func, k = all
    return acc["precision_at_1"], acc["r_precision"], acc["mean_average_precision_at_r"]


def _separation_brute(Z, y):
    intra, inter = [], []
    for i, j in itertools.combinations(range(len(Z)), 2):
        (intra if y[i] == y[j] else inter).append(np.linalg.norm(Z[i] - Z[j]))
    return np.mean(inter) / np.mean(intra)


def test_every_key_matches_its_oracle():
    X, Z, y = _labelled()
    out = evaluate(Z, y, X=X, k=5, random_state=0)
    assert tuple(out) == KEYS

    flat = X.reshape(len(X), -1)
    clusters = KMeans(n_clusters=len(np.unique(y)), n_init=10, random_state=0).fit_predict(Z)
    p1, rp, mapr = _pml(Z, y)
    expected = {
        "silhouette": skm.silhouette_score(Z, y),
        "davies_bouldin": skm.davies_bouldin_score(Z, y),
        "calinski_harabasz": skm.calinski_harabasz_score(Z, y),
        "separation_ratio": _separation_brute(Z, y),
        "ari": skm.adjusted_rand_score(y, clusters),
        "nmi": skm.normalized_mutual_info_score(y, clusters),
        "trustworthiness": trustworthiness(flat, Z, n_neighbors=5),
        "continuity": trustworthiness(Z, flat, n_neighbors=5),
        "precision_at_1": p1,
        "r_precision": rp,
        "map_at_r": mapr,
    }
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert 0 < out["ari"] < 1 and 0 < out["precision_at_1"] < 1  # not a degenerate case


def test_without_inputs_and_many_small_classes():
    _, Z, y = _labelled(n=90, n_classes=30, seed=1)
    out = evaluate(Z, y, k=3)
    assert "trustworthiness" not in out and "continuity" not in out
    assert out["silhouette"] == pytest.approx(skm.silhouette_score(Z, y), rel=1e-9)
    assert out["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(Z, y), rel=1e-9)
    assert out["separation_ratio"] == pytest.approx(_separation_brute(Z, y), rel=1e-9)
    assert (out["precision_at_1"], out["r_precision"], out["map_at_r"]) == pytest.approx(_pml(Z, y), rel=1e-9)


def test_trustworthiness_for_larger_k_and_float32_inputs():
    X, Z, y = _labelled(n=150, d_in=(10,), seed=2, singleton=False)
    out = evaluate(Z.astype(np.float32), y, X=X.astype(np.float32), k=12)
    assert out["trustworthiness"] == pytest.approx(trustworthiness(X, Z, n_neighbors=12), abs=1e-6)
    assert out["continuity"] == pytest.approx(trustworthiness(Z, X, n_neighbors=12), abs=1e-6)
    assert out["silhouette"] == pytest.approx(skm.silhouette_score(Z, y), abs=1e-6)


def test_sampled_mode_estimates_the_exact_values():
    X, Z, y = _labelled(n=2500, n_classes=4, d_in=(5,), m=4, spread=2.0, seed=3, singleton=False)
    exact = evaluate(Z, y, X=X, random_state=0)
    sampled = evaluate(Z, y, X=X, random_state=0, sample_size=600)  # k-means on 600, 144 queries
    again = evaluate(Z, y, X=X, random_state=0, sample_size=600)
    other = evaluate(Z, y, X=X, random_state=1, sample_size=600)
    assert sampled == again
    assert sampled != other and sampled != exact  # it really sampled
    for key in ("davies_bouldin", "calinski_harabasz"):  # always exact
        assert sampled[key] == exact[key]
    # About three standard deviations of each estimate over seeds (measured on this data).
    tolerance = {
        "silhouette": 0.035,
        "separation_ratio": 0.07,
        "ari": 0.04,
        "nmi": 0.03,
        "trustworthiness": 0.015,
        "continuity": 0.008,
        "precision_at_1": 0.12,
        "r_precision": 0.035,
        "map_at_r": 0.045,
    }
    for key, tol in tolerance.items():
        assert sampled[key] == pytest.approx(exact[key], abs=tol), key


@pytest.mark.parametrize("writeable", [True, False])
def test_deterministic_and_inputs_not_modified(writeable):
    X, Z, y = _labelled(seed=4)
    copies = [a.copy() for a in (X, Z, y)]
    for a in (X, Z, y):
        a.flags.writeable = writeable
    first = evaluate(Z, y, X=X, random_state=7)
    assert evaluate(Z, y, X=X, random_state=7) == first
    assert evaluate(Z, y, X=X, random_state=7, sample_size=100) != first  # sampled path, too
    knn_accuracy(Z[:150], y[:150], Z[150:], y[150:], k=3)
    for a, c in zip((X, Z, y), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_string_labels_and_torch_embeddings():
    _, Z, y = _labelled(seed=5)
    names = np.array(["a", "b", "c", "d", "e", "f"])[y]
    assert evaluate(torch.from_numpy(Z), names) == evaluate(Z, y)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"Z": np.zeros(10)}, ValueError, "2-D"),
        ({"y": np.zeros(9)}, ValueError, "one label per row"),
        ({"y": np.zeros(40)}, ValueError, "at least two classes"),
        ({"y": np.arange(40)}, ValueError, "more samples than classes"),
        ({"Z": np.full((40, 3), np.nan)}, ValueError, "NaN"),
        ({"y": np.where(np.arange(40) < 20, 0.0, np.nan)}, ValueError, "NaN"),
        ({"X": np.zeros((39, 2))}, ValueError, "shape"),
        ({"X": np.zeros((40, 2)), "k": 20}, ValueError, "n / 2"),
        ({"k": 0}, ValueError, "k=0"),
        ({"k": 2.5}, TypeError, "int"),
        ({"sample_size": 3}, ValueError, "too small"),
        ({"sample_size": 100.0}, TypeError, "sample_size"),
        ({"random_state": np.random.default_rng(0)}, TypeError, "random_state"),
    ],
)
def test_validation(kwargs, error, match):
    rng = np.random.default_rng(6)
    args = {"Z": rng.standard_normal((40, 3)), "y": np.repeat([0, 1], 20)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        evaluate(**args)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_knn_accuracy_matches_sklearn(k):
    rng = np.random.default_rng(7)
    Z_train, Z_test = rng.standard_normal((120, 5)), rng.standard_normal((50, 5))
    y_train = np.array(["x", "y", "z"])[rng.integers(0, 3, 120)]
    y_test = np.array(["x", "y", "z"])[rng.integers(0, 3, 50)]
    Z_train[:, 0] += (y_train == "x") * 1.5
    Z_test[:, 0] += (y_test == "x") * 1.5
    expected = KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train).score(Z_test, y_test)
    assert knn_accuracy(Z_train, y_train, Z_test, y_test, k=k) == pytest.approx(expected)
    with pytest.raises(ValueError, match="dimensions"):
        knn_accuracy(Z_train, y_train, Z_test[:, :4], y_test)
    with pytest.raises(ValueError, match="y_test"):
        knn_accuracy(Z_train, y_train, Z_test, y_test[:10])
