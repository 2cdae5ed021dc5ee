"""b. Rank sensitivity: does choosing a rank matter? CP/Tucker over R ∈ {5, 10, 20} beside norank over
embedding_dim ∈ {16, 32, 64, 128}."""

from __future__ import annotations

from norank.experiments.jobs import Job
from norank.experiments.methods import NORANK
from norank.experiments.studies._base import Study, norank_variant
from norank.experiments.tables import by_method, per_dataset, seeds_note, stats, table

RANKS = (5, 10, 20)
EMBEDDING_DIMS = (16, 32, 64, 128)
CP_TUCKER = tuple(f"{f}_r{r}" for f in ("cp", "tucker") for r in RANKS)


def jobs(ctx):
    out = []
    for d in ctx.datasets:
        for s in ctx.seeds:
            out += [
                Job(d, name, "heldout", s, study="rank", variant=f"R={name.rsplit('_r', 1)[1]}")
                for name in CP_TUCKER
                if name in ctx.methods_available
            ]
            out += [norank_variant(d, s, "rank", f"dim{m}", {"embedding_dim": m}) for m in EMBEDDING_DIMS]
    return out


def section(records):
    cols = ["silhouette", "ari", "nmi", "knn_accuracy", "trustworthiness", "continuity", "effective_rank"]

    def render(d, sel):
        groups = by_method(sel)
        tensor = [m for m in CP_TUCKER if m in groups]
        dims = [m for m in groups if m.startswith(NORANK + "_dim")]
        rows = [(m, stats(groups[m], cols)) for m in tensor + dims]
        return (
            f"{seeds_note(sel)}. CP/Tucker are label-blind, norank is supervised; bold marks the best within "
            "each family (CP/Tucker; norank).\n\n"
            + table(rows, cols, bold_rows=[set(tensor), set(dims)], bold_columns=cols[:-1])
        )

    return per_dataset(records, render)


STUDY = Study(
    "rank",
    "Rank sensitivity: CP/Tucker rank R vs norank embedding size",
    ("abide", "olivetti", "lfw"),
    jobs,
    section,
    quick_datasets=("olivetti",),
)
