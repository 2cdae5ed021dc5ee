"""encoder="auto": which inputs get a choice, the up-front rule's scores against brute force, its picks on
layout-carried and layout-free classes, what it reads and what it costs, and the fit it leads to."""

import time

import numpy as np
import pytest
import torch

from norank import NoRankEmbedder, selection
from norank.encoders import ConvEncoder, MLPEncoder

FAST = {"epochs": 2, "batch_size": 40, "random_state": 0}


def squares(n_per_class, shape, sizes, positions, rng):
    """Noisy images, class c a bright square of side sizes[c] at positions[c] (None: a random place)."""
    X, y = [], []
    for c, (size, pos) in enumerate(zip(sizes, positions, strict=True)):
        for _ in range(n_per_class):
            image = 0.1 * rng.standard_normal(shape)
            r, col = pos if pos is not None else rng.integers(0, np.array(shape) - size + 1)
            image[r : r + size, col : col + size] += 1.0
            X.append(image)
            y.append(c)
    return np.array(X, np.float32), np.array(y)


def translated_set(rng, n_per_class=40, shape=(24, 24)):
    """Class = the square's size, anywhere in the image: the layout carries nothing."""
    return squares(n_per_class, shape, (3, 5, 7, 9), (None,) * 4, rng)


def aligned_set(rng, n_per_class=40):
    """Class = the square's place, same size and place on the tile grid for all: only the layout tells the
    classes apart."""
    return squares(n_per_class, (24, 24), (6,) * 4, ((2, 2), (2, 14), (14, 2), (14, 14)), rng)


def loo_1nn(V, y):
    """Brute-force leave-one-out 1-NN accuracy (first index on equal distances)."""
    hits = []
    for i in range(len(V)):
        d = ((V - V[i]) ** 2).sum(1)
        d[i] = np.inf
        hits.append(y[np.argmin(d)] == y[i])
    return float(np.mean(hits))


def rule(X, y, random_state=0):
    return selection.select_encoder(X, y, symmetric="auto", pca_components=None, random_state=random_state)


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


def test_inputs_without_a_choice_get_the_mlp_and_no_scores():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    for X in (rng.random((30, 64)), rng.random((30, 8, 8)), rng.random((30, 4, 16, 16))):
        assert rule(X, y) == ("mlp", {"mlp": None})
    assert rule(rng.random((5, 16, 16)), np.arange(5)) == ("mlp", {"mlp": None, "conv": None})  # singletons


def test_pooling_matches_a_loop_over_blocks():
    X = np.random.default_rng(1).random((3, 70, 40))  # 70 -> 3 blocks of 3 rows (23), 40 -> 20 blocks of 2
    got = selection.pooled_images(X)
    assert got.shape == (3, 23, 20)
    for k in range(3):
        block = np.array([[X[k, 3 * i : 3 * i + 3, 2 * j : 2 * j + 2].mean() for j in range(20)] for i in range(23)])
        np.testing.assert_allclose(got[k], (block - block.mean()) / block.std(), atol=1e-12)


def test_local_features_ignore_moves_by_whole_tiles_but_not_scale():
    images = selection.pooled_images(np.random.default_rng(2).random((6, 32, 32)))
    t = selection.TILE
    moved = np.stack([np.roll(im, (t * k, -2 * t * k), axis=(0, 1)) for k, im in enumerate(images)])
    np.testing.assert_allclose(selection.tile_power_spectrum(moved), selection.tile_power_spectrum(images), rtol=1e-10)
    np.testing.assert_allclose(selection.local_features(moved), selection.local_features(images), atol=1e-10)
    coarse = np.kron(images[:, :16, :16], np.ones((1, 2, 2)))  # the same texture twice as large
    assert np.abs(selection.tile_power_spectrum(coarse) - selection.tile_power_spectrum(images)).mean() > 1.0


def test_tile_spectrum_matches_a_loop_over_tiles():
    images = np.random.default_rng(12).random((2, 9, 13))  # 2 x 3 whole tiles; the rest is left out
    got = selection.tile_power_spectrum(images)
    t = selection.TILE
    for k in range(2):
        tiles = [images[k, i : i + t, j : j + t] for i in range(0, 8, t) for j in range(0, 12, t)]
        power = np.mean([np.abs(np.fft.fft2(tile - tile.mean())) ** 2 for tile in tiles], axis=0)
        np.testing.assert_allclose(got[k], np.log(power.ravel()[1:] + 1e-12), rtol=1e-10)


def test_scores_match_brute_force_leave_one_out():
    X, y = translated_set(np.random.default_rng(3), n_per_class=15)
    scores = selection.rule_scores(X, y)
    pooled = selection.pooled_images(X)
    assert scores["pixel_1nn"] == pytest.approx(loo_1nn(pooled.reshape(len(X), -1), y))
    assert scores["local_1nn"] == pytest.approx(loo_1nn(selection.local_features(pooled), y))
    assert scores["n_samples"] == len(y)
    p, q = scores["pixel_1nn"], scores["local_1nn"]
    assert scores["standard_error"] == pytest.approx(np.sqrt((p * (1 - p) + q * (1 - q)) / len(y)))


def test_rule_picks_conv_when_the_layout_carries_nothing():
    X, y = translated_set(np.random.default_rng(4))
    kind, scores = rule(X, y)
    assert kind == "conv" and scores["conv"] > scores["mlp"] + 0.2
    detail = selection.rule_scores(X, y)
    assert (detail["pixel_1nn"], detail["local_1nn"]) == (scores["mlp"], scores["conv"])


def test_rule_picks_the_mlp_when_only_the_layout_tells_classes_apart():
    kind, scores = rule(*aligned_set(np.random.default_rng(5)))
    assert kind == "mlp"
    assert scores["mlp"] == 1.0 and scores["conv"] < 0.6


@pytest.mark.parametrize(
    "pixel, free, se, conv",
    [  # free: the local features' score
        (0.46, 0.71, 0.036, True),  # galaxy-hard: far ahead
        (0.87, 0.84, 0.029, False),  # faces: behind
        (0.986, 1.0, 0.006, False),  # trivially separable: 2.3 standard errors, but under MIN_GAIN
        (0.50, 0.56, 0.04, False),  # over MIN_GAIN, but 1.5 standard errors
        (0.50, 0.59, 0.04, True),
    ],
)
def test_conv_needs_a_gain_both_large_and_clear(pixel, free, se, conv):
    assert selection.prefers_conv({"pixel_1nn": pixel, "local_1nn": free, "standard_error": se}) is conv


def test_rule_trains_nothing_and_takes_well_under_a_second(monkeypatch):
    X, y = translated_set(np.random.default_rng(6), n_per_class=125, shape=(48, 48))  # 500 images, pooled
    rule(X, y)  # warm up torch's first call
    monkeypatch.setattr(torch.optim.Optimizer, "__init__", lambda *a, **k: pytest.fail("an optimiser was built"))
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda *a, **k: pytest.fail("a module was built"))
    start = time.process_time()
    kind, _ = rule(X, y)
    assert time.process_time() - start < 0.25 and kind == "conv"


class RecordingRows:
    """A lazy array-like that records the rows read from it."""

    def __init__(self, A):
        self.A, self.shape, self.ndim, self.dtype, self.read = A, A.shape, A.ndim, A.dtype, []

    def __len__(self):
        return len(self.A)

    def __getitem__(self, item):
        rows = np.arange(len(self.A))[item]
        self.read.extend(np.atleast_1d(rows).tolist())
        return self.A[item]


def test_rule_reads_only_its_subsample_of_lazy_and_memmapped_inputs(tmp_path):
    # 1600 images, of which the rule reads 1000; not square, so no symmetry check reads the first rows
    X, y = translated_set(np.random.default_rng(7), n_per_class=400, shape=(24, 20))
    lazy = RecordingRows(X)
    kind, scores = rule(lazy, y, random_state=11)
    expected = selection.rule_subsample(y, 11)
    assert sorted(lazy.read) == expected.tolist() and len(expected) == selection.RULE_MAX_SAMPLES
    np.save(tmp_path / "x.npy", X)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert rule(memmap, y, random_state=11) == rule(X, y, random_state=11) == (kind, scores)


def test_subsample_is_capped_and_keeps_pairs_of_classmates():
    codes = np.repeat(np.arange(4), [2000, 1000, 30, 1])
    keep = selection.rule_subsample(codes, 0)
    counts = np.bincount(codes[keep], minlength=4)
    assert abs(len(keep) - selection.RULE_MAX_SAMPLES) <= 2 * 4 and counts[2] >= 2 and counts[3] == 1
    assert abs(counts[0] / counts[1] - 2) < 0.05  # class-proportional
    many = np.random.default_rng(0).permutation(np.repeat(np.arange(3000), 3))  # 2 per class: 6000 samples
    keep = selection.rule_subsample(many, 0)
    counts = np.bincount(many[keep], minlength=3000)
    assert len(keep) == selection.RULE_MAX_SAMPLES and set(counts) == {0, 2}  # pairs of 500 classes
    assert np.all(np.diff(keep) > 0)


def test_rule_is_deterministic_for_a_fixed_random_state():
    X, y = translated_set(np.random.default_rng(8), n_per_class=260)  # 1040 images: a subsample
    assert rule(X, y, random_state=3) == rule(X, y, random_state=3)
    assert rule(X, y, random_state=np.random.RandomState(3)) == rule(X, y, random_state=np.random.RandomState(3))
    assert not np.array_equal(selection.rule_subsample(y, 3), selection.rule_subsample(y, 4))
    with pytest.raises(TypeError, match="random_state"):
        rule(X, y, random_state="three")


def test_auto_fits_the_rules_pick_exactly_as_a_direct_fit():
    X, y = translated_set(np.random.default_rng(9), n_per_class=12)
    auto = NoRankEmbedder(encoder="auto", **FAST).fit(X, y)
    expected = selection.select_encoder(
        X, np.unique(y, return_inverse=True)[1], symmetric="auto", pca_components=None, random_state=0
    )
    assert (auto.encoder_kind_, auto.encoder_selection_) == expected and expected[0] == "conv"
    assert isinstance(auto.encoder_, ConvEncoder) and auto.encoder == "auto"
    direct = NoRankEmbedder(encoder="conv", **FAST).fit(X, y)
    np.testing.assert_array_equal(auto.transform(X), direct.transform(X))


def test_saved_auto_model_keeps_the_choice_and_its_scores(tmp_path):
    X, y = aligned_set(np.random.default_rng(10), n_per_class=10)
    est = NoRankEmbedder(encoder="auto", **FAST).fit(X, y)
    assert est.encoder_kind_ == "mlp" and isinstance(est.encoder_, MLPEncoder)
    loaded = NoRankEmbedder.load(est.save(tmp_path / "m"))
    assert loaded.encoder_kind_ == "mlp" and loaded.encoder_selection_ == est.encoder_selection_
    np.testing.assert_allclose(loaded.transform(X), est.transform(X), atol=1e-6)
