"""The regularisers added to the metric-learning loss, as functions and as named, composable terms.

``L = L_metric + λ1·L_div + λ2·L_unif + λ3·L_local + λ4·L_global`` (DESIGN.md §1). Each term is a
function (tensors in, differentiable scalar out) and a small object the training core composes as
``(weight, term)`` pairs: ``term(embeddings, inputs=None) -> scalar``, with ``term.name`` the key its
value is reported under in ``history_`` and ``term.needs_inputs`` saying whether it reads the batch's
preprocessed inputs (local and global preservation compare input and embedding geometry).

The objects check their settings once, at construction; a call checks only tensor metadata (shapes,
dtypes), which costs no device synchronisation.
"""

from __future__ import annotations

import math
import numbers

import torch

from norank.distances import check_matrix, pairwise_distances

__all__ = [
    "REGULARIZERS",
    "Diversity",
    "GlobalPreservation",
    "LocalPreservation",
    "Uniformity",
    "diversity_loss",
    "global_preservation_loss",
    "local_preservation_loss",
    "uniformity_loss",
]

EPS = 1e-8


def _check_t(t: float) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(t) and float(t) > 0):
        raise ValueError(f"t must be a finite number > 0; got {t!r}.")
    return float(t)


def _check_neighbors(n_neighbors: int) -> int:
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be an integer >= 1; got {n_neighbors!r}.")
    return int(n_neighbors)


def _check_z(z: torch.Tensor) -> None:
    check_matrix("z", z, min_rows=2)


def _given(x: torch.Tensor | None) -> torch.Tensor:
    if x is None:
        raise ValueError(
            "this term compares input and embedding geometry: pass the batch's preprocessed "
            "inputs as x (inputs=...), a (B, d) tensor."
        )
    return x


def _check_pair(z: torch.Tensor, x: torch.Tensor) -> None:
    _check_z(z)
    check_matrix("x", _given(x), min_rows=2)
    if x.shape[0] != z.shape[0]:
        raise ValueError(f"x and z must have the same number of rows; got {x.shape[0]} and {z.shape[0]}.")


def diversity_loss(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Mean squared off-diagonal correlation between embedding dimensions (decorrelation penalty).

    ``C`` is the (m, m) correlation matrix of the batch over its m dimensions and the loss is
    ``(1 / (m(m−1))) Σ_{i≠j} C_ij²``: 0 when dimensions are uncorrelated, 1 when the batch has collapsed
    onto a line. ``eps`` in the variances keeps constant dimensions at correlation 0 instead of NaN.
    """
    _check_z(z)
    m = z.shape[1]
    if m < 2:
        raise ValueError(f"diversity_loss needs at least 2 embedding dimensions; got {m}.")
    zc = z - z.mean(dim=0, keepdim=True)
    cov = zc.T @ zc / z.shape[0]
    std = torch.sqrt(torch.diagonal(cov) + eps)
    corr = cov / (std[:, None] * std[None, :])
    off = ~torch.eye(m, dtype=torch.bool, device=z.device)
    return (corr[off] ** 2).sum() / (m * (m - 1))


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020) uniformity: ``log mean_{i<j} exp(−t ‖z_i − z_j‖²)``, via logsumexp.

    Lower is more uniform on the sphere; the minimum for unit vectors is negative. logsumexp avoids the
    underflow of ``exp`` at large ``t`` or distances.
    """
    _check_z(z)
    t = _check_t(t)
    d2 = pairwise_distances(z, squared=True)
    i, j = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return torch.logsumexp(-t * d2[i, j], dim=0) - math.log(i.numel())


def local_preservation_loss(z: torch.Tensor, x: torch.Tensor, n_neighbors: int = 5) -> torch.Tensor:
    """Keep input-space neighbours close in the embedding: a scale-free Laplacian-eigenmaps objective.

    The k nearest neighbours of each sample in input space (within the batch, Euclidean on ``x``, the
    preprocessed (B, d) inputs) form a kNN graph W; the loss is the Laplacian Eigenmaps / Locality
    Preserving Projections energy (Belkin & Niyogi 2003; He & Niyogi 2003), the mean of ``‖z_i − z_j‖²``
    over graph edges, divided by its mean over all pairs — the trace-ratio normalisation that makes
    shrinking the embedding useless. 1 means neighbours are no closer than random pairs; lower is better.
    ``n_neighbors`` is capped at B − 1.
    """
    _check_pair(z, x)
    k = min(_check_neighbors(n_neighbors), z.shape[0] - 1)
    b = z.shape[0]
    with torch.no_grad():
        dx = pairwise_distances(x.detach().to(z.dtype), squared=True)
        dx.fill_diagonal_(math.inf)
        neighbours = dx.topk(k, dim=1, largest=False).indices
    dz = pairwise_distances(z, squared=True)
    near = dz.gather(1, neighbours).mean()
    everyone = dz.sum() / (b * (b - 1))
    return near / (everyone + EPS)


def global_preservation_loss(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``1 − Pearson r`` between the batch's pairwise input and embedding distances.

    The correlation of a Shepard diagram (input vs embedding distance over all pairs), a standard
    distance-preservation score for dimension reduction (e.g. Espadoto et al. 2019, "Toward a quantitative
    survey of dimension reduction techniques"). 0 when distances are perfectly linearly related, up to 2.
    Plain Euclidean distances on both sides; ``x`` is the preprocessed (B, d) input batch.
    """
    _check_pair(z, x)
    b = z.shape[0]
    i, j = torch.triu_indices(b, b, offset=1, device=z.device)
    with torch.no_grad():
        dx = pairwise_distances(x.detach().to(z.dtype), squared=False)[i, j]
    dz = pairwise_distances(z, squared=False)[i, j]
    dx = dx - dx.mean()
    dz = dz - dz.mean()
    r = (dx * dz).sum() / torch.sqrt((dx * dx).sum() * (dz * dz).sum() + EPS)
    return 1.0 - r


class _Term:
    """A regulariser with a reporting name; subclasses set ``name``, ``needs_inputs`` and ``_call``."""

    name = ""
    needs_inputs = False

    def __call__(self, embeddings: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        return self._call(embeddings, inputs)

    def _call(self, embeddings: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _settings(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._settings().items())))


class Diversity(_Term):
    """Decorrelation of the embedding dimensions, against dimensional collapse (:func:`diversity_loss`)."""

    name = "diversity"

    def _call(self, embeddings: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor:
        return diversity_loss(embeddings)


class Uniformity(_Term):
    """Spread on the sphere, Wang & Isola (2020) (:func:`uniformity_loss`); ``t`` is the kernel's sharpness."""

    name = "uniformity"

    def __init__(self, t: float = 2.0) -> None:
        self.t = _check_t(t)

    def _settings(self) -> dict:
        return {"t": self.t}

    def _call(self, embeddings: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor:
        return uniformity_loss(embeddings, self.t)


class LocalPreservation(_Term):
    """Input-space neighbours stay close in the embedding (:func:`local_preservation_loss`); reads inputs."""

    name = "local"
    needs_inputs = True

    def __init__(self, n_neighbors: int = 5) -> None:
        self.n_neighbors = _check_neighbors(n_neighbors)

    def _settings(self) -> dict:
        return {"n_neighbors": self.n_neighbors}

    def _call(self, embeddings: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor:
        return local_preservation_loss(embeddings, _given(inputs), self.n_neighbors)


class GlobalPreservation(_Term):
    """Pairwise distances stay correlated with the input's (:func:`global_preservation_loss`); reads inputs."""

    name = "global"
    needs_inputs = True

    def _call(self, embeddings: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor:
        return global_preservation_loss(embeddings, _given(inputs))


# Reporting name -> class: the names history_ uses for the regularisers' values.
REGULARIZERS = {cls.name: cls for cls in (Diversity, Uniformity, LocalPreservation, GlobalPreservation)}
