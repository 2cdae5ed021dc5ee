"""f. Class imbalance: 1-NN recall of the classes with the fewest training samples under each
class_sampling."""

from __future__ import annotations

import numpy as np

from norank.experiments.studies._base import Study, norank_variant
from norank.experiments.tables import fmt, per_dataset, seeds_note, summarise, variants

CLASS_SAMPLINGS = ("uniform", "proportional", "sqrt")
N_SMALLEST = 3


def jobs(ctx):
    return [
        norank_variant(d, s, "imbalance", c, {"class_sampling": c})
        for d in ctx.datasets
        for s in ctx.seeds
        for c in CLASS_SAMPLINGS
    ]


def _stats(at, smallest):
    """Recall of each of the smallest classes, macro recall and 1-NN accuracy over the seeds of a variant."""

    def over(values):
        return summarise([{"metrics": {"x": v}} for v in values], "x")

    out = [over(r["per_class_recall"].get(c) for r in at) for c in smallest]
    out.append(over(float(np.mean(list(r["per_class_recall"].values()))) for r in at))
    out.append(summarise(at, "knn_accuracy"))
    return out


def _render(d, records):
    sel = [r for r in records if r.get("per_class_recall")]
    if not sel:
        return ""
    counts = sel[0]["train_class_counts"]
    smallest = sorted(counts, key=lambda c: counts[c])[:N_SMALLEST]
    cols = [f"recall {c} (n={counts[c]})" for c in smallest] + ["macro recall", "1-NN acc."]
    rows = [(v, _stats([r for r in sel if r["variant"] == v], smallest)) for v in variants(sel)]
    best = [max((s[i][0] for _, s in rows if s[i]), default=None) for i in range(len(cols))]
    lines = ["| class_sampling | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for v, stats in rows:
        cells = [
            f"**{fmt(s, 'x')}**" if s and b is not None and round(s[0], 3) == round(b, 3) else fmt(s, "x")
            for s, b in zip(stats, best, strict=True)
        ]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return (
        f"{seeds_note(sel)}; 1-NN fitted on the training embeddings, recall on the test part; the "
        f"{N_SMALLEST} classes with the fewest training samples.\n\n" + "\n".join(lines)
    )


def section(records):
    return per_dataset(records, _render)


STUDY = Study(
    "imbalance",
    "Class imbalance: per-class recall under each class_sampling",
    ("lfw",),
    jobs,
    section,
    per_class_recall=True,
)
