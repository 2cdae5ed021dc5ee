"""j. Sensitivity of LFW to the margin, the diversity weight and the uniformity weight (the paper's open
check): a grid of every combination, shown as heatmaps of held-out 1-NN accuracy and ARI."""

from __future__ import annotations

from norank.experiments.studies._base import Study, norank_variant
from norank.experiments.tables import per_dataset, seeds_note, summarise

MARGINS = (0.5, 1.0, 2.0)
DIVERSITY_WEIGHTS = (0.0, 0.1, 1.0)
UNIFORMITY_WEIGHTS = (0.0, 0.1, 1.0)
METRICS = ("knn_accuracy", "ari")


def variant(margin: float, diversity: float, uniformity: float) -> str:
    return f"m{margin:g}_d{diversity:g}_u{uniformity:g}"


def grid():
    """(variant name, overrides) of every grid point."""
    return [
        (variant(m, d, u), {"margin": m, "diversity_weight": d, "uniformity_weight": u})
        for m in MARGINS
        for d in DIVERSITY_WEIGHTS
        for u in UNIFORMITY_WEIGHTS
    ]


def means(records, metric: str) -> dict:
    """(margin, diversity, uniformity) -> mean of `metric` over the records of that grid point."""
    out = {}
    for m in MARGINS:
        for d in DIVERSITY_WEIGHTS:
            for u in UNIFORMITY_WEIGHTS:
                stat = summarise([r for r in records if r.get("variant") == variant(m, d, u)], metric)
                if stat:
                    out[m, d, u] = stat[0]
    return out


def jobs(ctx):
    return [
        norank_variant(d, s, "sensitivity", name, overrides)
        for d in ctx.datasets
        for s in ctx.seeds
        for name, overrides in grid()
    ]


def _render(dataset, sel):
    acc, ari = means(sel, "knn_accuracy"), means(sel, "ari")
    best = max(acc.values(), default=None)
    parts = [
        (
            f"{seeds_note(sel)}; each cell is held-out 1-NN accuracy / ARI. Bold: the best 1-NN accuracy of the "
            f"grid. Heatmaps: figure `sensitivity_{dataset}.png`."
        )
    ]
    for m in MARGINS:
        lines = [
            f"| margin {m:g}: diversity_weight ↓, uniformity_weight → | "
            + " | ".join(f"{u:g}" for u in UNIFORMITY_WEIGHTS)
            + " |",
            "|" + "---|" * (len(UNIFORMITY_WEIGHTS) + 1),
        ]
        for d in DIVERSITY_WEIGHTS:
            cells = []
            for u in UNIFORMITY_WEIGHTS:
                a, r = acc.get((m, d, u)), ari.get((m, d, u))
                text = "–" if a is None else f"{a:.3f} / {'–' if r is None else f'{r:.3f}'}"
                top = a is not None and best is not None and round(a, 3) == round(best, 3)
                cells.append(f"**{text}**" if top else text)
            lines.append(f"| {d:g} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def section(records):
    return per_dataset(records, _render)


def figures(records, folder):
    from norank.experiments.figures import sensitivity_heatmaps

    made = []
    for d in sorted({r["dataset"] for r in records}):
        name = f"sensitivity_{d}.png"
        sel = [r for r in records if r["dataset"] == d]
        if sensitivity_heatmaps(
            {k: means(sel, k) for k in METRICS},
            MARGINS,
            DIVERSITY_WEIGHTS,
            UNIFORMITY_WEIGHTS,
            f"{d}: held-out sensitivity ({seeds_note(sel)})",
            folder / name,
        ):
            made.append(name)
    return made


STUDY = Study(
    "sensitivity",
    "Sensitivity to the margin, the diversity weight and the uniformity weight (LFW)",
    ("lfw",),
    jobs,
    section,
    figures,
)
