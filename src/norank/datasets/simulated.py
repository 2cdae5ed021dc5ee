"""Simulated 64x64 image sets: the paper's galaxy and crystal recipes and their hard variants.

The paper's recipes are trivially separable (k-means on raw pixels finds the classes exactly), so they
reproduce the paper but cannot rank methods. The ``hard=True`` variants randomise, per sample, what a
real survey or micrograph varies (pose, size, shape, brightness, lattice spacing and angle, defects,
noise level) so that raw-pixel k-means fails while the classes stay learnable. Every stack is built
at once with numpy broadcasting; samples are ordered by class.
"""

from __future__ import annotations

import numpy as np

from norank.datasets._base import Dataset, RandomState, as_rng

SIZE = 64
NOISE = 0.05
GALAXY_CLASSES = np.array(["elliptical", "spiral", "lenticular", "irregular"])
CRYSTAL_CLASSES = np.array(["cubic", "hexagonal", "tetragonal", "orthorhombic"])


def _check_n(n_per_class):
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}.")
    return int(n_per_class)


def _simulate(name, what, classes, easy, hard_recipe, n_per_class, hard, random_state):
    """One simulated set: images drawn by the easy or the hard recipe, then Gaussian noise (per-sample sigma
    allowed), clipped to [0, 1], labelled by class blocks; the hard set is named ``{name}-hard``."""
    n = _check_n(n_per_class)
    rng = as_rng(random_state)
    images, sigma = (hard_recipe if hard else easy)(n, rng)
    sigma = np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1)
    images = images + sigma * rng.standard_normal(images.shape, dtype=np.float32)
    X = np.clip(images, 0.0, 1.0, dtype=np.float32)
    y = np.repeat(np.arange(len(classes), dtype=np.int64), n)
    kind = "randomised (hard)" if hard else "paper recipe"
    description = f"Simulated {what}, {kind}, 4 x {n}, 64x64."
    return Dataset(
        name=f"{name}-hard" if hard else name, X=X, y=y, target_names=classes.copy(), meta={}, description=description
    )


# ----------------------------------------------------------------------------------------- galaxy


def _galaxy_easy(n, rng):
    grid = np.linspace(-1.0, 1.0, SIZE)
    x, y = np.meshgrid(grid, grid)  # x varies along columns, y along rows
    r = np.hypot(x, y)
    theta = np.arctan2(y, x)
    elliptical = np.exp(-4 * r**2)
    spiral = np.exp(-3 * r**2) * (1 + 0.5 * np.sin(6 * theta + 10 * r))
    lenticular = np.exp(-6 * r**2) * np.where(r > 0.6, 0.2, 1.0)
    templates = np.stack([elliptical, spiral, lenticular])
    smooth = np.repeat(templates, n, axis=0)
    irregular = rng.uniform(0.0, 1.0, size=(n, SIZE, SIZE))
    return np.concatenate([smooth, irregular]), NOISE


def _galaxy_hard(n, rng):
    N = 4 * n

    def u(lo, hi, m=n):
        return rng.uniform(lo, hi, size=(m, 1, 1)).astype(np.float32)

    grid = np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    # Pose and shape: centring error, position angle, axis ratio (ellipticity), size.
    cx, cy, phi = u(-0.15, 0.15, N), u(-0.15, 0.15, N), u(0, 2 * np.pi, N)
    q, scale = u(0.35, 1.0, N), u(0.5, 1.4, N)
    dx, dy = gx - cx, gy - cy
    a = (dx * np.cos(phi) + dy * np.sin(phi)) / scale
    b = (-dx * np.sin(phi) + dy * np.cos(phi)) / (scale * q)
    r2 = a**2 + b**2
    images = np.empty((N, SIZE, SIZE), dtype=np.float32)
    blocks = [slice(c * n, (c + 1) * n) for c in range(4)]

    el, sp, le, ir = blocks  # elliptical, spiral, lenticular, irregular
    images[el] = np.exp(-u(2.5, 6.0) * r2[el])
    # Spiral: arm count 1..4, pitch and handedness, arm strength and phase all vary.
    arms = rng.integers(1, 5, size=(n, 1, 1)).astype(np.float32)
    pitch = u(5.0, 14.0) * rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n, 1, 1))
    wave = np.sin(arms * np.arctan2(b[sp], a[sp]) + pitch * np.sqrt(r2[sp]) + u(0, 2 * np.pi))
    images[sp] = np.exp(-u(2.0, 4.0) * r2[sp]) * (1 + u(0.4, 0.9) * wave)
    # Lenticular: bright bulge with a disc truncated at a random radius.
    images[le] = np.exp(-u(4.0, 8.0) * r2[le]) * np.where(r2[le] > u(0.35, 0.8) ** 2, u(0.1, 0.35), 1.0)
    # Irregular: a few clumps of random position, width and weight around the centre.
    k = 5
    px, py = rng.uniform(-0.7, 0.7, size=(2, n, k, 1, 1)).astype(np.float32)
    width = rng.uniform(0.08, 0.3, size=(n, k, 1, 1)).astype(np.float32)
    weight = rng.uniform(0.2, 1.0, size=(n, k, 1, 1)).astype(np.float32) * (rng.random((n, k, 1, 1)) < 0.8)
    weight[:, 0] = 1.0
    d2 = (dx[ir][:, None] - px) ** 2 + (dy[ir][:, None] - py) ** 2
    clumps = (weight * np.exp(-d2 / (2 * width**2))).sum(axis=1)
    images[ir] = clumps / clumps.max(axis=(1, 2), keepdims=True)

    images *= u(0.35, 1.0, N)  # brightness
    return images, u(0.02, 0.12, N)  # per-sample noise level


def make_galaxy(n_per_class: int = 125, hard: bool = False, random_state: RandomState = 42) -> Dataset:
    """Galaxy morphologies (elliptical, spiral, lenticular, irregular), 64x64 in [0, 1].

    The easy recipe is the paper's: fixed centred profiles on x, y in [-1, 1] plus N(0, 0.05) noise
    (irregular = U(0, 1) noise). ``hard=True`` randomises pose, size, ellipticity, arm count and pitch,
    profile steepness, brightness and noise level per sample (see docs/datasets.md).
    """
    return _simulate("galaxy", "galaxies", GALAXY_CLASSES, _galaxy_easy, _galaxy_hard, n_per_class, hard, random_state)


# ---------------------------------------------------------------------------------------- crystal


def _crystal_easy(n, rng):
    i = np.arange(SIZE)[:, None]  # row index
    j = np.arange(SIZE)[None, :]  # column index
    cubic = ((i % 8 < 2) | (j % 8 < 2)).astype(np.float64)
    hexagonal = ((i % 10 < 2) & (j % 10 < 2)).astype(np.float64)
    tetragonal = np.broadcast_to(i % 6 == 0, (SIZE, SIZE)).astype(np.float64)
    orthorhombic = np.broadcast_to(j % 12 < 2, (SIZE, SIZE)).astype(np.float64)
    templates = np.stack([cubic, hexagonal, tetragonal, orthorhombic])
    return np.repeat(templates, n, axis=0), NOISE


def _lines(t, spacing, width):
    """Soft-edged stripes: 1 within ``width``/2 px of every multiple of ``spacing`` along t."""
    d = np.abs((t + spacing / 2) % spacing - spacing / 2)  # distance to the nearest line centre
    return np.clip(width / 2 + 0.5 - d, 0.0, 1.0)


def _crystal_hard(n, rng):
    N = 4 * n

    def u(lo, hi, m=n):
        return rng.uniform(lo, hi, size=(m, 1, 1)).astype(np.float32)

    i, j = np.meshgrid(np.arange(SIZE, dtype=np.float32), np.arange(SIZE, dtype=np.float32), indexing="ij")
    # Lattice orientation and phase: any angle, any offset.
    ang = u(0, np.pi, N)
    s = i * np.cos(ang) + j * np.sin(ang) + u(0, 20, N)  # along the first lattice direction
    t = -i * np.sin(ang) + j * np.cos(ang) + u(0, 20, N)  # perpendicular to it
    images = np.empty((N, SIZE, SIZE), dtype=np.float32)
    cub, hexa, tet, ortho = (slice(c * n, (c + 1) * n) for c in range(4))

    # Cubic: a square grid of lines (equal spacing both ways).
    a, w = u(6.0, 11.0), u(1.0, 2.5)
    images[cub] = np.maximum(_lines(s[cub], a, w), _lines(t[cub], a, w))
    # Hexagonal: round dots on a triangular lattice = two rectangular sublattices (a, a*sqrt(3)).
    a, rad = u(6.0, 11.0), u(1.0, 2.2)
    h = a * np.float32(np.sqrt(3.0))
    sh, th = s[hexa], t[hexa]
    d1 = np.hypot((sh + a / 2) % a - a / 2, (th + h / 2) % h - h / 2)
    d2 = np.hypot(sh % a - a / 2, th % h - h / 2)
    images[hexa] = np.clip(rad + 0.5 - np.minimum(d1, d2), 0.0, 1.0)
    # Tetragonal: one family of thin, closely spaced lines.
    images[tet] = _lines(s[tet], u(4.0, 7.0), u(0.8, 1.6))
    # Orthorhombic: one family of thick, widely spaced lines.
    images[ortho] = _lines(s[ortho], u(10.0, 16.0), u(2.0, 4.0))

    # Defects: vacancy patches (whole 8x8 cells emptied); then uneven illumination and background.
    vacant = rng.random((N, SIZE // 8, SIZE // 8)) < u(0.0, 0.3, N)
    images *= 1 - vacant.repeat(8, axis=1).repeat(8, axis=2)
    ramp = 1 + u(-0.4, 0.4, N) * (i / SIZE - 0.5) + u(-0.4, 0.4, N) * (j / SIZE - 0.5)
    images = images * ramp * u(0.3, 1.0, N) + u(0.0, 0.25, N)  # brightness and background level
    return images, u(0.03, 0.2, N)


def make_crystal(n_per_class: int = 100, hard: bool = False, random_state: RandomState = 42) -> Dataset:
    """Crystal lattice patterns (cubic, hexagonal, tetragonal, orthorhombic), 64x64 in [0, 1].

    The easy recipe is the paper's: fixed axis-aligned line / dot patterns on a zero background plus
    N(0, 0.05) noise. ``hard=True`` randomises lattice spacing, angle, phase, line width, vacancy
    defects, illumination, background and noise level per sample (see docs/datasets.md).
    """
    return _simulate(
        "crystal", "crystal lattices", CRYSTAL_CLASSES, _crystal_easy, _crystal_hard, n_per_class, hard, random_state
    )
