"""The training objective: a loss, an optional miner and weighted regularisers, as one module.

``L = loss(z, y) + Σ_k w_k · term_k(z, x)``. The loss is any callable ``(embeddings, labels) -> scalar``
(norank's or a pytorch-metric-learning instance); with a miner, the loss is called as
``loss(embeddings, labels, miner(embeddings, labels))``, PML's index-tuple convention. Being an
``nn.Module``, the objective registers a loss that has parameters (proxies, class weights), so the
optimiser trains them. Each batch returns the weighted total and every named term, detached, so history
reports them by name without a host sync per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from norank.distances import pairwise_distances

# Diagnostics every objective reports (losses may add their own through a `stats` dict).
SPREAD = "embedding_spread"  # mean pairwise distance in the batch; 0 means the embedding collapsed


class Term(Protocol):
    """A weighted term of the objective (`norank.regularizers`): ``term(embeddings, inputs) -> scalar``."""

    name: str

    def __call__(self, embeddings: torch.Tensor, inputs: torch.Tensor | None = None, /) -> torch.Tensor: ...


class Objective(nn.Module):
    """loss(z, y) [+ miner] + Σ weight · term(z, x); `terms` holds each named value of the last batch.

    Parameters
    ----------
    loss : callable
        ``loss(embeddings, labels[, indices_tuple]) -> scalar tensor``.
    miner : callable or None
        ``miner(embeddings, labels) -> indices tuple`` passed to the loss.
    regularizers : sequence of (weight, term)
        ``term(embeddings, inputs) -> scalar`` with a ``name``; a ``needs_inputs`` attribute asks for the
        batch's preprocessed input rows. Terms with weight 0 are dropped.
    name : str or None
        History key of the loss's own term (default: the loss's ``name`` attribute, else its class name).
    """

    def __init__(
        self,
        loss: Callable[..., torch.Tensor],
        miner: Callable[..., Any] | None = None,
        regularizers: Sequence[tuple[float, Term]] = (),
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.loss = loss
        self.miner = miner
        self.regularizers = [(float(w), term) for w, term in regularizers if w > 0]
        self.needs_inputs = any(getattr(term, "needs_inputs", False) for _, term in self.regularizers)
        self.name = name or getattr(loss, "name", None) or type(loss).__name__

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, {name: detached value}) for one batch of embeddings `z` with `labels`."""
        if self.miner is not None:
            main = self.loss(z, labels, self.miner(z, labels))
        else:
            main = self.loss(z, labels)
        main = _as_scalar(main)
        terms = {self.name: main.detach()}
        total = main
        for weight, term in self.regularizers:
            value = term(z, inputs)
            total = total + weight * value
            terms[term.name] = value.detach()
        stats = getattr(self.loss, "stats", None)
        if isinstance(stats, dict):
            terms.update({k: torch.as_tensor(v).detach() for k, v in stats.items()})
        if SPREAD not in terms:
            with torch.no_grad():
                terms[SPREAD] = pairwise_distances(z.detach(), squared=False).mean()
        terms["loss"] = total.detach()
        return total, terms


def _as_scalar(value: object) -> torch.Tensor:
    """A loss's result as a 0-dim tensor; PML-style dict results are refused with the fix named."""
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise TypeError(
            f"the loss returned {type(value).__name__}"
            f"{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}; a loss must return a scalar "
            "tensor (for example the mean over the batch)."
        )
    return value.reshape(())
