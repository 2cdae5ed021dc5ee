"""Learning-rate schedules as multiplicative factors of the base rate, per optimiser step.

Robbins–Monro: η_t = η0 / (1 + t/τ)^κ with κ ∈ (0.5, 1], so Σ η_t = ∞ and Σ η_t² < ∞ — the step-size
conditions under which the paper's SGD convergence argument holds.
"""

from __future__ import annotations

import math

SCHEDULES = ("robbins_monro", "constant", "cosine")


def robbins_monro(step: int, tau: float = 100.0, kappa: float = 0.75) -> float:
    """Factor (1 + step/τ)^−κ."""
    if not 0.5 < kappa <= 1.0:
        raise ValueError(f"kappa={kappa} breaks the Robbins–Monro conditions; choose 0.5 < kappa <= 1.")
    if tau <= 0:
        raise ValueError(f"tau={tau} must be positive.")
    return (1.0 + step / tau) ** (-kappa)


def cosine(step: int, total_steps: int, floor: float = 0.0) -> float:
    """Half-cosine decay from 1 to `floor` over `total_steps`."""
    progress = min(step / max(total_steps, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_factor(name: str, step: int, total_steps: int, tau: float, kappa: float) -> float:
    """The factor of schedule `name` at optimiser step `step` (0-based)."""
    if name == "robbins_monro":
        return robbins_monro(step, tau, kappa)
    if name == "cosine":
        return cosine(step, total_steps)
    if name == "constant":
        return 1.0
    raise ValueError(f"schedule={name!r} is not supported; use one of {SCHEDULES}.")
