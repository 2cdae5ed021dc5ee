"""i. Principal components before the encoder (ABIDE): pca_components 100 / 200 / 400 beside every
feature, on the 70/30 splits and on each leave-site-out split, with every study seed. Wide data only:
the component counts need more features and training samples than the other sets have."""

from __future__ import annotations

from norank.experiments.jobs import Job
from norank.experiments.methods import NORANK
from norank.experiments.studies._base import Study
from norank.experiments.tables import per_dataset, seeds_note, table, variant_rows

PCA_COMPONENTS = (100, 200, 400)
COLUMNS = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "fit_seconds"]
INTRO = (
    "`features` is the main configuration (every upper-triangle connectivity value); `pca<k>` projects "
    "them onto the k leading principal components of the training rows first (`pca_components=k`). "
    "70/30 rows are the stratified splits; leave-site-out rows hold out each site in turn, with every "
    "study seed, so their mean runs over sites × seeds."
)


def jobs(ctx):
    variants = {"features": {}, **{f"pca{k}": {"pca_components": k} for k in PCA_COMPONENTS}}
    out = []
    for d in ctx.datasets:
        for s in ctx.seeds:
            for split in ("stratified", *(f"site:{site}" for site in ctx.sites.get(d, []))):
                out += [
                    Job(d, f"{NORANK}_{v}", "heldout", s, split=split, study="pca", variant=v, overrides=o)
                    for v, o in variants.items()
                ]
    return out


def _render(d, sel):
    rows, families = [], []
    for label, is_site in (("70/30", False), ("leave-site-out", True)):
        part = [r for r in sel if str(r.get("split", "")).startswith("site:") == is_site]
        part_rows = variant_rows(part, COLUMNS, label_of=lambda v, lbl=label: f"{v}, {lbl}")
        rows += part_rows
        families.append({n for n, _ in part_rows})
    return f"{seeds_note(sel)}. Bold marks the best per column within each kind of split.\n\n" + table(
        rows, COLUMNS, bold_rows=[f for f in families if f], bold_columns=COLUMNS[:-1], label="variant, split"
    )


def section(records):
    return "\n\n".join(p for p in (INTRO, per_dataset(records, _render)) if p)


STUDY = Study(
    "pca",
    "Principal components before the encoder (ABIDE): 70/30 splits and leave-site-out",
    ("abide",),
    jobs,
    section,
    fallback=False,
)
