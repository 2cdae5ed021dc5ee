"""Tuning seeds and report seeds, declared once (DESIGN §3; docs/experiments.md).

A seed whose results informed a choice (a default, a constant, a dataset setting) is a tuning seed. The
choices so far saw seeds 0-19 (docs/defaults.md, docs/results.md) and 100-199; every seed below 1000 is
declared a tuning seed, so tuning may use any of them. The report seeds 1000-1004 are for the tables of
docs/results.md only: no choice has seen them, and `benchmarks/tune_defaults.py` refuses them.
"""

from __future__ import annotations

import numbers

TUNING_SEEDS = range(1000)
REPORT_SEEDS = (1000, 1001, 1002, 1003, 1004)


def kind(seed: int) -> str:
    """ "report" or "tuning"."""
    return "report" if seed in REPORT_SEEDS else "tuning"


def report_seeds(n: int) -> list[int]:
    """The first n report seeds."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= len(REPORT_SEEDS):
        raise ValueError(
            f"seeds={n!r}: pass a count from 1 to {len(REPORT_SEEDS)} (the report seeds "
            f"{list(REPORT_SEEDS)}), or a list of tuning seeds (0-{TUNING_SEEDS[-1]}) for a tuning run."
        )
    return list(REPORT_SEEDS[:n])


def resolve(seeds) -> list[int]:
    """A count → the first report seeds; a list → those seeds, each a tuning or a report seed."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return report_seeds(int(seeds))
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds={seeds!r}: pass a count of report seeds or a list of seeds.")
    out = list(seeds)
    bad = [
        s
        for s in out
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not (s in TUNING_SEEDS or s in REPORT_SEEDS)
    ]
    if not out or bad or len(set(out)) != len(out):
        raise ValueError(
            f"seeds={out!r}: each seed must be a tuning seed (0-{TUNING_SEEDS[-1]}) or a report seed "
            f"{list(REPORT_SEEDS)}, at least one and none twice."
        )
    return [int(s) for s in out]


def refuse_report_seeds(seeds, who: str) -> None:
    """Raise when a tuning tool is asked to look at a report seed."""
    seen = [s for s in seeds if s in REPORT_SEEDS]
    if seen:
        raise ValueError(
            f"{who} tunes settings, and seeds {seen} are report seeds (norank.experiments.seeds."
            f"REPORT_SEEDS): no choice may see them. Use tuning seeds 0-{TUNING_SEEDS[-1]}."
        )


def describe(seeds) -> str:
    """One sentence for a report header: which of `seeds` are report seeds and which tuning seeds."""
    seeds = sorted(seeds)
    report = [s for s in seeds if kind(s) == "report"]
    tuning = [s for s in seeds if kind(s) == "tuning"]
    parts = []
    if report:
        parts.append(f"seeds {report} are report seeds: no choice (default, constant, dataset setting) has seen them")
    if tuning:
        parts.append(
            f"seeds {tuning} are tuning seeds: choices may have been made on them, so their numbers are not untouched"
        )
    return (
        "Seeds: " + "; ".join(parts) + f". Tuning seeds are 0-{TUNING_SEEDS[-1]}, report seeds "
        f"{REPORT_SEEDS[0]}-{REPORT_SEEDS[-1]} (norank.experiments.seeds)."
    )
