"""e. Sample efficiency: 10/25/50/100 % of the training split (stratified, at least 2 per class), the test
part unchanged, norank vs the transformer baseline."""

from __future__ import annotations

from norank.experiments.jobs import Job
from norank.experiments.methods import NORANK
from norank.experiments.studies._base import Study, norank_variant
from norank.experiments.tables import SHORT, fmt, per_dataset, seeds_note, summarise, variants

FRACTIONS = (0.1, 0.25, 0.5, 1.0)
COLUMNS = ("knn_accuracy", "map_at_r", "silhouette", "ari")


def jobs(ctx):
    out = []
    for d in ctx.datasets:
        for s in ctx.seeds:
            for f in FRACTIONS:
                pct = f"{round(100 * f)}pct"
                out.append(norank_variant(d, s, "sample_efficiency", pct, {}, f))
                if "transformer" in ctx.methods_available:
                    out.append(
                        Job(d, "transformer", "heldout", s, study="sample_efficiency", variant=pct, train_fraction=f)
                    )
    return out


def _row(at):
    """The cells of one training share: norank then the transformer per column, the better one bold."""
    ours = [r for r in at if r["method"].startswith(NORANK)]
    theirs = [r for r in at if r["method"] == "transformer"]
    cells = []
    for c in COLUMNS:
        a, b = summarise(ours, c), summarise(theirs, c)
        ta, tb = fmt(a, c), fmt(b, c)
        if a and b and a[0] != b[0]:
            ta, tb = (f"**{ta}**", tb) if a[0] > b[0] else (ta, f"**{tb}**")
        cells += [ta, tb]
    return cells


def section(records):
    def render(d, sel):
        lines = [
            "| training share | n train | "
            + " | ".join(f"{m} {SHORT[c]}" for c in COLUMNS for m in (NORANK, "transformer"))
            + " |",
            "|" + "---|" * (2 + 2 * len(COLUMNS)),
        ]
        for v in variants(sel):
            at = [r for r in sel if r["variant"] == v]
            lines.append(f"| {v.replace('pct', ' %')} | {at[0].get('n_train')} | " + " | ".join(_row(at)) + " |")
        return (
            f"{seeds_note(sel)}; the subset is stratified (at least 2 per class) and the test part is the full "
            "30 %. Bold: the better of the two.\n\n" + "\n".join(lines)
        )

    return per_dataset(records, render)


def figures(records, folder):
    from norank.experiments.figures import efficiency

    made = []
    for d in sorted({r["dataset"] for r in records}):
        name = f"sample_efficiency_{d}.png"
        if efficiency([r for r in records if r["dataset"] == d], folder / name):
            made.append(name)
    return made


STUDY = Study(
    "sample_efficiency", "Sample efficiency: norank vs the transformer baseline", ("lfw",), jobs, section, figures
)
