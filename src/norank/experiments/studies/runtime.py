"""k. Runtime: fit seconds of every method of the run on every dataset of the run, one held-out fit each
(the first seed), with torch and the BLAS/OpenMP pools at one thread. `make results` runs it alone, after
the other runs, so the machine is otherwise idle."""

from __future__ import annotations

from norank.experiments.jobs import Job
from norank.experiments.studies._base import Study
from norank.experiments.tables import fmt, summarise

THREADS = 1


def jobs(ctx):
    from norank.experiments.methods import applies

    return [
        Job(d, m, "heldout", ctx.seeds[0], study="runtime", variant="one_thread", threads=THREADS)
        for d in ctx.datasets
        for m in ctx.methods
        if applies(m, d in ctx.spd)
    ]


def section(records):
    from norank.experiments.methods import is_supervised

    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    methods = list(dict.fromkeys(r["method"] for r in records))
    seeds = sorted({r["seed"] for r in records})
    lines = ["| method | group | " + " | ".join(datasets) + " |", "|" + "---|" * (len(datasets) + 2)]
    for m in methods:
        cells = [
            fmt(summarise([r for r in records if r["method"] == m and r["dataset"] == d], "fit_seconds"), "fit_seconds")
            for d in datasets
        ]
        group = "supervised" if is_supervised(m) else "unsupervised"
        lines.append(f"| {m} | {group} | " + " | ".join(cells) + " |")
    return (
        f"Fit seconds of one held-out fit per method and dataset (seed {', '.join(map(str, seeds))}, the 70/30 "
        f"training part), torch and the BLAS/OpenMP thread pools limited to {THREADS} thread inside the process "
        "(recorded in the run's meta as `runtime_threads`); `make results` runs this study alone, after the "
        "other runs, so the machine was otherwise idle. Preprocessing is part of each fit; scoring is not."
        "\n\n" + "\n".join(lines)
    )


STUDY = Study("runtime", "Runtime: fit seconds of every method on every dataset, one thread", None, jobs, section)
