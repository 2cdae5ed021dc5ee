"""Pairwise distances between embeddings, built for the triplet loss.

The matrix is computed as ``||a||² + ||b||² − 2 a·b`` (one matrix product, so a B×B batch costs O(B²m)),
clamped at 0 because rounding can push it slightly negative. Squared Euclidean is the paper's choice;
plain Euclidean is the square root, taken so that its gradient stays finite where a distance is 0
(the diagonal, duplicated samples, collapsed embeddings): there the gradient is set to 0 instead of
the infinite derivative of ``sqrt`` at 0.
"""

from __future__ import annotations

import torch

__all__ = [
    "DISTANCES",
    "check_distance",
    "check_label_tensor",
    "check_matrix",
    "distance_matrix",
    "pairwise_distances",
    "pairwise_distances_between",
    "safe_sqrt",
]

# The distance names a triplet loss or miner accepts: plain Euclidean, or its square (the paper's).
DISTANCES = ("euclidean", "squared")


def check_distance(distance: str) -> None:
    """One clear error for a distance name that is not in :data:`DISTANCES`."""
    if not isinstance(distance, str) or distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(map(repr, DISTANCES))}; got {distance!r}.")


def check_matrix(name: str, t: torch.Tensor, min_rows: int = 0) -> None:
    """A floating-point (n, m) tensor with at least ``min_rows`` rows, or one error that names the fix.

    Reads only the tensor's metadata (type, shape, dtype): no device synchronisation.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, m); got {type(t).__name__}.")
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n samples, m dimensions); got shape {tuple(t.shape)}. Flatten each sample first."
        )
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {t.dtype}. Call .float() first.")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples); got {t.shape[0]}. Use a larger batch.")


def check_label_tensor(labels: torch.Tensor, n_rows: int, what: str = "the embeddings") -> None:
    """A 1-D integer tensor of ``n_rows`` class labels, or one error that names the fix (metadata only)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"labels must be a torch.Tensor of integer class labels; got {type(labels).__name__}. "
            "Wrap it with torch.as_tensor(labels)."
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must have an integer dtype; got {labels.dtype}. Use labels.long().")
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"labels must have shape ({n_rows},) to match {what}; got {tuple(labels.shape)}.")


def safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    """Elementwise sqrt with a finite gradient: 0 (gradient 0) where ``d2 <= 0`` instead of sqrt's infinite slope."""
    # sqrt where positive, exactly 0 (with gradient 0) where not: the inner `where` keeps sqrt's
    # backward away from 0, so no inf * 0 = NaN reaches the caller's graph.
    positive = d2 > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, d2, torch.ones_like(d2))), torch.zeros_like(d2))


def _squared_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    sq_a = (a * a).sum(dim=1, keepdim=True)
    sq_b = (b * b).sum(dim=1, keepdim=True).T
    # addmm folds the −2ab product into the norm sum in one pass over the (n, m) result.
    return torch.addmm(sq_a + sq_b, a, b.T, alpha=-2.0).clamp_min(0.0)


def pairwise_distances_between(a: torch.Tensor, b: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """(n, m) distances between the rows of ``a`` (n, d) and ``b`` (m, d); squared Euclidean by default."""
    check_matrix("a", a)
    check_matrix("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same number of columns; got {a.shape[1]} and {b.shape[1]}.")
    d2 = _squared_between(a, b)
    return d2 if squared else safe_sqrt(d2)


def pairwise_distances(z: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """(B, B) distances between the rows of ``z`` (B, m), with an exact 0 diagonal.

    ``squared=True`` gives ``‖z_i − z_j‖²`` (the paper's triplet distance, in [0, 4] on the unit sphere);
    ``squared=False`` gives ``‖z_i − z_j‖`` with finite gradients everywhere.
    """
    check_matrix("z", z)
    # In place on a fresh result (clamp_min's backward reads its input, not its output): no B×B mask.
    d2 = _squared_between(z, z).fill_diagonal_(0.0)
    return d2 if squared else safe_sqrt(d2)


def distance_matrix(z: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """(B, B) distances between the rows of ``z`` by name: ``"euclidean"`` or ``"squared"`` (see DISTANCES)."""
    check_distance(distance)
    return pairwise_distances(z, squared=distance == "squared")
