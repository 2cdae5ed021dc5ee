"""Checks and numerics shared by the losses: label checks, stable masked log-sum-exp, attached zeros."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from norank.distances import check_label_tensor, check_matrix

# A mined index tuple, pytorch-metric-learning's convention: (anchors, positives, negatives) triplets or
# (a1, positives, a2, negatives) pairs, each a 1-D tensor of batch positions.
IndexTuple = Sequence[torch.Tensor]


def check_batch(embeddings: torch.Tensor, labels: torch.Tensor, min_rows: int = 1) -> None:
    """The (B, m) floating-point embeddings and (B,) integer labels every loss takes (metadata only)."""
    check_matrix("embeddings", embeddings, min_rows=min_rows)
    check_label_tensor(labels, embeddings.shape[0])


class BatchLoss(nn.Module):
    """Base of every loss: ``loss(embeddings, labels, indices_tuple=None)`` checks the batch once, then
    calls the subclass's :meth:`compute`; ``extra_repr`` prints the attributes named in ``repr_fields``."""

    repr_fields: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        return ", ".join(f"{field}={getattr(self, field)!r}" for field in self.repr_fields)

    def forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None = None
    ) -> torch.Tensor:
        check_batch(embeddings, labels)
        return self.compute(embeddings, labels, indices_tuple)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor, indices_tuple: IndexTuple | None) -> torch.Tensor:
        """The loss on a checked batch (subclasses define it)."""
        raise NotImplementedError


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def check_real(name: str, value: float, positive: bool = False) -> float:
    """A finite real number (``> 0`` when ``positive``), as a float."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not ok or (positive and not value > 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}; got {value!r}.")
    return float(value)


def check_class_range(labels: torch.Tensor, n_classes: int) -> None:
    """Labels must index the class weights: ``0 <= label < n_classes``.

    On the CPU the check raises one clear ValueError. On an accelerator reading the values back would
    stall every step, so the check is queued on the device instead (an out-of-range label stops the run
    at the next synchronisation, as the indexing itself would).
    """
    if labels.numel() == 0:
        return
    if labels.device.type == "cpu":
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"labels must lie in [0, {n_classes}); got range [{low}, {high}]. Remap them to 0..n_classes-1."
            )
    else:
        torch._assert_async(
            (labels.min() >= 0) & (labels.max() < n_classes),
            f"labels must lie in [0, {n_classes}); remap them to 0..n_classes-1.",
        )


def no_indices(loss_name: str, indices_tuple: IndexTuple | None) -> None:
    """Losses that score every sample against every class use no mined tuples: refuse one clearly."""
    if indices_tuple is not None:
        raise ValueError(
            f"{loss_name} scores every sample against every class and uses no mined index tuple; "
            "use it without a miner (miner=None)."
        )


def pair_masks(labels: torch.Tensor, indices_tuple: IndexTuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, B) boolean masks of the positive and negative pairs a pair-based loss sums over.

    Without ``indices_tuple``: every pair of distinct samples, positive when the labels agree. With one:
    PML's conventions, ``(anchors, positives, negatives)`` triplets or ``(a1, p, a2, n)`` pairs.
    """
    b = labels.shape[0]
    if indices_tuple is None:
        same = labels[:, None] == labels[None, :]
        return same & ~torch.eye(b, dtype=torch.bool, device=labels.device), ~same
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        raise ValueError(
            "indices_tuple must be (anchors, positives, negatives) or (a1, positives, a2, negatives) "
            f"index tensors; got {type(indices_tuple).__name__} of length "
            f"{len(indices_tuple) if isinstance(indices_tuple, (tuple, list)) else '-'}."
        )
    idx = [torch.as_tensor(t, dtype=torch.long, device=labels.device) for t in indices_tuple]
    a1, p, a2, n = (idx[0], idx[1], idx[0], idx[2]) if len(idx) == 3 else idx
    pos = torch.zeros(b, b, dtype=torch.bool, device=labels.device)
    neg = torch.zeros_like(pos)
    pos[a1, p] = True
    neg[a2, n] = True
    return pos, neg


def log1p_sum_exp(s: torch.Tensor, mask: torch.Tensor | None = None, shift: float = 0.0) -> torch.Tensor:
    """Per row, ``log(1 + Σ_j exp(s_ij + shift))`` over the entries where ``mask`` holds (and are not
    ``-inf``); 0 for an empty row.

    Subtracting ``top = max(0, row max + shift)`` keeps every exponential at most 1, and left-out entries
    enter as ``exp(-inf) = 0``, so values and gradients stay finite even for rows with nothing in them (a
    plain ``logsumexp`` of an all ``-inf`` row back-propagates NaN). ``shift`` is folded into ``top``.
    """
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf)
    top = (s.amax(dim=1, keepdim=True) + shift).clamp_min(0.0).detach()
    return (top + torch.log(torch.exp(-top) + torch.exp(s - (top - shift)).sum(dim=1, keepdim=True))).squeeze(1)


def masked_log_sum_exp(s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, ``log Σ_j exp(s_ij)`` over the entries where ``mask`` holds; 0 for an empty row (no NaN)."""
    s = s.masked_fill(~mask, -math.inf)
    top = s.amax(dim=1, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    empty = (~mask.any(dim=1, keepdim=True)).to(s.dtype)
    return (top + torch.log(torch.exp(s - top).sum(dim=1, keepdim=True) + empty)).squeeze(1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, k) cosine similarities between the rows of ``a`` and ``b`` (each normalised here)."""
    return nn.functional.normalize(a, dim=1) @ nn.functional.normalize(b, dim=1).T


def attached_zero(t: torch.Tensor) -> torch.Tensor:
    """A 0 that is part of ``t``'s graph, so ``backward()`` runs (and gives zero gradients)."""
    return t.reshape(-1)[:0].sum()
