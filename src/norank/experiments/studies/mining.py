"""d. Triplet mining strategies: semihard vs hard vs batch_hard, per-epoch curves and final scores."""

from __future__ import annotations

from norank.experiments.studies._base import COLLAPSE_NOTE, QUALITY_COLUMNS, Study, collapse_line, norank_variant
from norank.experiments.tables import variant_section, variants

MINERS = ("semihard", "hard", "batch_hard")


def jobs(ctx):
    return [norank_variant(d, s, "mining", m, {"mining": m}) for d in ctx.datasets for s in ctx.seeds for m in MINERS]


def section(records):
    cols = [
        *QUALITY_COLUMNS,
        "final_loss",
        "final_active_fraction",
        "final_embedding_spread",
        "effective_rank",
        "fit_seconds",
    ]
    return variant_section(
        records,
        cols,
        label="mining",
        bold_count=4,
        note=lambda d, sel: f". Curves per epoch: figure `curves_mining_{d}.png`",
        after=lambda d, sel: collapse_line(sel, variants(sel)),
        intro=COLLAPSE_NOTE,
    )


def figures(records, folder):
    from norank.experiments.figures import study_curves

    return study_curves(records, folder, "mining")


STUDY = Study("mining", "Triplet mining strategies", ("lfw",), jobs, section, figures)
