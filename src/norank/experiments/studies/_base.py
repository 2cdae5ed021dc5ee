"""What a study is: one object that names its datasets, plans its jobs, and writes its report section.

Adding a study means writing one module with one `Study` and listing it in `studies.STUDIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from norank.experiments.jobs import Job
from norank.experiments.methods import NORANK
from norank.experiments.tables import fmt, summarise, value_of


@dataclass(frozen=True)
class Context:
    """What a study's `jobs` sees of the run."""

    datasets: list  # the study's datasets among the run's
    seeds: list  # the study seeds
    methods_available: set  # methods the run may fit (its own and every registered one)
    methods: list  # the run's main-table methods
    quick: bool = False
    protocols: tuple = ("heldout",)
    sites: dict = field(default_factory=dict)  # dataset -> leave-site-out site names
    spd: set = field(default_factory=set)  # datasets of SPD matrices (where SPD-only methods run)


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    datasets: tuple | None  # preferred datasets in order; None: every dataset of the run
    jobs: Callable[[Context], list]
    section: Callable[[list], str]
    figures: Callable | None = None  # (records, folder) -> [file names]
    quick_datasets: tuple | None = None  # preferred datasets under --quick
    fallback: bool = True  # no preferred dataset in the run: use the run's first dataset
    needs_heldout: bool = True  # no jobs when the run has no held-out protocol
    per_class_recall: bool = False  # its records keep the per-class 1-NN recall and training class counts

    def chosen_datasets(self, datasets: list, quick: bool = False) -> list:
        if self.datasets is None:
            return list(datasets)
        preferred = self.quick_datasets if quick and self.quick_datasets else self.datasets
        chosen = [d for d in preferred if d in datasets]
        return chosen or (datasets[:1] if self.fallback else [])


def norank_variant(d, seed, study, variant, overrides, fraction=1.0) -> Job:
    """A held-out run of norank with `overrides`, named norank_<variant>."""
    return Job(
        d,
        f"{NORANK}_{variant}",
        "heldout",
        seed,
        study=study,
        variant=variant,
        overrides=overrides,
        train_fraction=fraction,
    )


# The quality scores every study table opens with (cluster separation, then retrieval).
QUALITY_COLUMNS = ("silhouette", "ari", "knn_accuracy", "map_at_r")


# -- collapse diagnostics, shared by the ablation and mining sections ------------------------------------
COLLAPSE_SPREAD = 0.1
COLLAPSE_NOTE = (
    "Collapse criterion: a final batch embedding spread (mean pairwise distance in the last epoch) below "
    f"{COLLAPSE_SPREAD} means the embeddings shrank towards a point (spread-out points on the unit sphere "
    "give about 1.4); an effective rank (exp entropy of the singular values of the centred test embedding) "
    "below 2 means they lie on a line. The effective rank is scale-free, so a point collapse with "
    "isotropic residual noise shows in the spread only."
)


def collapsed_run(record) -> bool:
    spread = value_of(record, "final_embedding_spread")
    erank = value_of(record, "effective_rank")
    return (spread is not None and spread < COLLAPSE_SPREAD) or (erank is not None and erank < 2)


def collapse_line(records, variants) -> str:
    counts = []
    for v in variants:
        at = [r for r in records if r["variant"] == v]
        counts.append(f"{v} {sum(collapsed_run(r) for r in at)}/{len(at)}")
    return "Collapsed runs (criterion above): " + ", ".join(counts) + "."


def collapse_summary(records, variant, label) -> str:
    """Spread, effective rank and collapsed seeds of one variant."""
    at = [r for r in records if r["variant"] == variant]
    if not at:
        return ""
    collapsed = sum(collapsed_run(r) for r in at)
    return (
        f"{label}: final spread {fmt(summarise(at, 'final_embedding_spread'), 'x')}, effective rank "
        f"{fmt(summarise(at, 'effective_rank'), 'effective_rank')}; collapsed in {collapsed} of {len(at)} "
        "seed(s)."
    )
