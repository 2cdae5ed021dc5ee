"""`encoder="auto"`: choose the MLP or the conv encoder from the training images, before any training.

Neither encoder wins everywhere (docs/defaults.md, "Encoder"): the MLP reads the pixel layout that aligned
faces and digits carry; the conv encoder describes an image by local patterns averaged over the whole
image (small filters, then global pooling), which is what lattices and textures need and what throws the
layout away. So the rule asks which of the two descriptions carries the labels, on a stratified
subsample of the training images (about RULE_MAX_SAMPLES, average-pooled to at most RULE_MAX_SIDE
pixels a side, each z-scored):

- **pixels**: leave-one-out 1-NN accuracy of the pixel vectors (what the MLP reads);
- **local**: the same score on a bag of local features (what the conv encoder's pooling keeps): the power
  spectrum of TILE x TILE tiles averaged over every tile of the image, and the quantiles of the image's
  intensities. Neither depends on where in the image anything is.

The conv encoder is chosen when the local score beats the pixel score clearly: by at least MIN_GAIN and
by more than CLEAR_STANDARD_ERRORS standard errors of the difference. Otherwise, ties included, the MLP
(the cheaper fit). No encoder is trained: the rule costs two exact 1-NN searches over the subsample.
Other inputs (vectors, volumes, symmetric connectivity matrices, principal components) have no pixel grid,
and images under MIN_CONV_SIDE pixels a side are too small for the conv stack: they get the MLP directly.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from norank.encoders import CONV_CHANNELS
from norank.lazy import PageReleaser, take_rows
from norank.metrics import precision_at_1
from norank.preprocessing import looks_symmetric
from norank.splits import stratified_subset

AUTO_CANDIDATES = ("mlp", "conv")
# The conv encoder's stride-2 blocks halve each side once per block; on smaller images its last blocks see
# a 1x1 map and add nothing an MLP lacks (8x8 digits, 5 splits: 1-NN 0.978 against 0.986 for the MLP).
MIN_CONV_SIDE = 2 ** len(CONV_CHANNELS)
RULE_MAX_SAMPLES = 1000  # the subsample the rule reads (two 1-NN searches over it: milliseconds)
RULE_MAX_SIDE = 32  # images are average-pooled to at most this many pixels a side
TILE = 4  # local spectra of 4x4 tiles of the pooled image: about the first two conv layers' field of view
N_QUANTILES = 17  # intensity quantiles at 2 %, 8 %, ..., 98 %
# Thresholds, set on tuning seeds 100-104 (docs/defaults.md, "Encoder"): the trivially separable sets
# (both encoders at 1.0 held out) gave local gains of 0 to 0.014, which the floor sends to the MLP.
MIN_GAIN = 0.05
CLEAR_STANDARD_ERRORS = 2.0


def candidate_encoders(X, symmetric, pca_components=None) -> tuple[str, ...]:
    """The encoders "auto" chooses between for input X: both for 2-D images of at least MIN_CONV_SIDE
    pixels a side kept as pixels, only the MLP otherwise (principal components have no pixel grid)."""
    is_image = X.ndim == 3 and min(X.shape[1:]) >= MIN_CONV_SIDE and pca_components is None
    if is_image and (symmetric is True or (symmetric == "auto" and looks_symmetric(X))):
        is_image = False
    return AUTO_CANDIDATES if is_image else ("mlp",)


def rule_subsample(codes: np.ndarray, random_state) -> np.ndarray:
    """Sorted positions of the stratified subsample the rule reads: every sample when there are at most
    RULE_MAX_SAMPLES, else a class-proportional draw of about that many keeping two per class where a
    class has them; with more classes than pairs of classmates fit, two samples of each of
    RULE_MAX_SAMPLES // 2 classes chosen at random (a 1-NN score needs classmates)."""
    if len(codes) <= RULE_MAX_SAMPLES:
        return np.arange(len(codes))
    rng = _generator(random_state)
    _, counts = np.unique(codes, return_counts=True)
    if 2 * np.sum(counts >= 2) <= RULE_MAX_SAMPLES:
        return stratified_subset(codes, RULE_MAX_SAMPLES, rng, min_per_class=2)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = rng.permutation(np.flatnonzero(counts >= 2))[: RULE_MAX_SAMPLES // 2]
    pairs = [order[starts[c] + rng.choice(counts[c], 2, replace=False)] for c in chosen]
    return np.sort(np.concatenate(pairs))


def pooled_images(images: np.ndarray) -> np.ndarray:
    """(n, h, w) images average-pooled over whole blocks to at most RULE_MAX_SIDE pixels a side, then each
    z-scored (the per-sample normalisation the encoders see); float64."""
    n, h, w = images.shape
    fh, fw = math.ceil(h / RULE_MAX_SIDE), math.ceil(w / RULE_MAX_SIDE)
    hp, wp = h // fh, w // fw
    x = np.asarray(images[:, : hp * fh, : wp * fw], dtype=np.float64)
    x = x.reshape(n, hp, fh, wp, fw).mean(axis=(2, 4)).reshape(n, -1)
    x = x - x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x / np.where(std > 0, std, 1.0)).reshape(n, hp, wp)


def tile_power_spectrum(images: np.ndarray) -> np.ndarray:
    """(n, TILE**2 - 1) log power spectrum of the TILE x TILE tiles of each image, averaged over all whole,
    non-overlapping tiles: local texture, whatever its place (moving an image by whole tiles leaves it
    unchanged). The tiles step by their size, as the conv encoder's strided blocks do; on tuning seeds that
    matched its outcomes where overlapping tiles did not (docs/defaults.md). The zero frequency, the only
    one a tile's mean reaches, is left out."""
    n, h, w = images.shape
    th, tw = h // TILE, w // TILE
    tiles = images[:, : th * TILE, : tw * TILE].reshape(n, th, TILE, tw, TILE).transpose(0, 1, 3, 2, 4)
    tiles = tiles.reshape(-1, TILE * TILE)
    k = np.arange(TILE)
    dft = np.kron(*[np.exp(-2j * np.pi * np.outer(k, k) / TILE)] * 2)  # the 2-D DFT of a flattened tile
    power = (tiles @ dft.real.T[:, 1:]) ** 2 + (tiles @ dft.imag.T[:, 1:]) ** 2
    return np.log(power.reshape(n, th * tw, -1).mean(axis=1) + 1e-12)


def local_features(images: np.ndarray) -> np.ndarray:
    """Tile power spectrum and intensity quantiles of z-scored images, each column standardised over the
    sample so both parts weigh alike in a Euclidean 1-NN."""
    n = len(images)
    quantiles = np.quantile(images.reshape(n, -1), np.linspace(0.02, 0.98, N_QUANTILES), axis=1).T
    F = np.hstack([tile_power_spectrum(images), quantiles])
    F = F - F.mean(axis=0)
    std = F.std(axis=0)
    return F / np.where(std > 0, std, 1.0)


def rule_scores(images: np.ndarray, codes: np.ndarray) -> dict:
    """Leave-one-out 1-NN accuracy of pixels and of local features, the standard error of their difference
    (binomial, taken as independent: conservative for two scores of the same samples) and the number of
    scored samples (those with a classmate). Raises ValueError when no class has two samples."""
    pooled = pooled_images(images)
    pixel = precision_at_1(pooled.reshape(len(pooled), -1).astype(np.float32), codes)
    local = precision_at_1(local_features(pooled), codes)
    _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    n = int(np.sum(counts[inverse] > 1))
    standard_error = math.sqrt((pixel * (1 - pixel) + local * (1 - local)) / n)
    return {"pixel_1nn": pixel, "local_1nn": local, "standard_error": standard_error, "n_samples": float(n)}


def prefers_conv(scores: dict) -> bool:
    """Whether the local score beats the pixel score clearly (MIN_GAIN and CLEAR_STANDARD_ERRORS)."""
    gain = scores["local_1nn"] - scores["pixel_1nn"]
    return gain >= MIN_GAIN and gain > CLEAR_STANDARD_ERRORS * scores["standard_error"]


def select_encoder(X, codes, *, symmetric="auto", pca_components=None, random_state=None) -> tuple[str, dict]:
    """The encoder "auto" resolves to for training samples X with integer class codes, and each
    candidate's score (the estimator's `encoder_selection_`): "mlp" the pixels' leave-one-out 1-NN
    accuracy, "conv" the local features'; None where nothing was measured. Only the rule's
    subsample of X is read (memory maps and lazy inputs included)."""
    codes = np.asarray(codes)
    candidates = candidate_encoders(X, symmetric, pca_components)
    if len(candidates) == 1:
        return candidates[0], {candidates[0]: None}
    keep = rule_subsample(codes, random_state)
    if np.unique(codes[keep], return_counts=True)[1].max() < 2:  # every class a singleton: nothing to score
        return "mlp", dict.fromkeys(candidates)
    scores = rule_scores(take_rows(X, keep, PageReleaser(X)), codes[keep])
    kind = "conv" if prefers_conv(scores) else "mlp"
    return kind, {"mlp": scores["pixel_1nn"], "conv": scores["local_1nn"]}


def describe(kind: str, selection: dict) -> str:
    """One line for verbose output: what the rule measured (select_encoder's scores) and what it chose."""
    if selection.get("conv") is None:
        return f"norank encoder='auto': {kind} (no choice for this input)"
    return (
        f"norank encoder='auto': leave-one-out 1-NN of the training images' pixels {selection['mlp']:.3f}, "
        f"of local features {selection['conv']:.3f}; training {kind}"
    )


def _generator(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int, a RandomState (one draw from it) or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(np.iinfo(np.int32).max)))
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator; got {random_state!r}.")
