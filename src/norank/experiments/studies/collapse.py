"""g. Trained to collapse: norank trained until every class collapses to a point (the regime the paper's
in-sample numbers come from), in-sample and held-out, beside the defaults."""

from __future__ import annotations

from norank.experiments.jobs import Job
from norank.experiments.methods import NORANK
from norank.experiments.studies._base import Study
from norank.experiments.tables import per_dataset, seeds_note, stats, table

# Trained to collapse: Euclidean distances with a margin of 2, the sphere's diameter, so no triplet is
# ever satisfied and every class keeps shrinking to a point; no diversity term, because C collapsed
# classes span only C - 1 dimensions, which decorrelation fights; Adam with a cosine schedule to zero,
# so the last epochs settle instead of jittering. Measured in-sample, seed 0, 300 epochs: silhouette
# LFW 0.9994, Olivetti 0.9994, ABIDE 0.9968, galaxy 0.9999, crystal 0.9999 (docs/experiments.md).
# The MLP without dropout is fixed, as in the paper. The defaults share the distance, margin and optimiser
# and train 30 epochs (what that memorisation costs held out is the point of the study).
SETTINGS = {
    "distance": "euclidean",
    "margin": 2.0,
    "diversity_weight": 0.0,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "schedule": "cosine",
    "epochs": 300,
    "encoder": "mlp",
    "dropout": 0.0,
}
QUICK_EPOCHS = 60
COLUMNS = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "continuity", "fit_seconds"]


def jobs(ctx):
    """The defaults (reusing the main runs) and the collapse settings, in each protocol of the run."""
    collapse = {**SETTINGS, "epochs": QUICK_EPOCHS} if ctx.quick else dict(SETTINGS)
    out = []
    for d in ctx.datasets:
        for variant, overrides in (("defaults", {}), ("collapse", collapse)):
            name = f"{NORANK}_{variant}"
            if "insample" in ctx.protocols:
                out.append(
                    Job(
                        d,
                        name,
                        "insample",
                        ctx.seeds[0],
                        split="all",
                        study="collapse",
                        variant=variant,
                        overrides=overrides,
                    )
                )
            if "heldout" in ctx.protocols:
                out += [
                    Job(d, name, "heldout", s, study="collapse", variant=variant, overrides=overrides)
                    for s in ctx.seeds
                ]
    return out


def _render(d, sel):
    rows = []
    for proto, label in (("insample", "in-sample"), ("heldout", "held-out")):
        for v in ("defaults", "collapse"):
            at = [r for r in sel if r["protocol"] == proto and r.get("variant") == v]
            if at:
                rows.append((f"{v}, {label}", stats(at, COLUMNS)))
    held = [r for r in sel if r["protocol"] == "heldout"]
    insample_seed = sorted({r["seed"] for r in sel if r["protocol"] == "insample"})
    insample = f"in-sample: seed {', '.join(map(str, insample_seed))}, fit and scored on every sample"
    note = f"{seeds_note(held)} for held-out rows; {insample}" if held else insample
    families = [{n for n, _ in rows if n.endswith(p)} for p in ("in-sample", "held-out")]
    return f"{note}. Bold marks the best per column within each protocol.\n\n" + table(
        rows, COLUMNS, bold_rows=families, bold_columns=COLUMNS[:-1], label="variant, protocol"
    )


def section(records):
    settings = next((r.get("settings") for r in records if r.get("variant") == "collapse"), None) or SETTINGS
    intro = (
        "`collapse` trains with "
        + ", ".join(f"{k}={v!r}" for k, v in settings.items())
        + ": the margin equals the sphere's diameter, so no triplet is ever satisfied and every class keeps "
        "shrinking to a point. In-sample this reaches the paper's silhouettes; held out it shows what that "
        "memorisation is worth on new samples. `defaults` rows are the main runs."
    )
    return "\n\n".join(p for p in (intro, per_dataset(records, _render)) if p)


STUDY = Study(
    "collapse",
    "Trained to collapse: the regime of the paper's in-sample numbers",
    ("olivetti", "lfw", "abide", "galaxy", "crystal"),
    jobs,
    section,
    needs_heldout=False,
)
