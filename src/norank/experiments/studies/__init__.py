"""The studies of `norank reproduce`, one `Study` object each, in report order (letters b, c, ...).

Each study names the datasets it prefers; when none of them is in the run it uses the run's first
dataset and the report says so (a study with ``fallback=False`` is skipped instead). Studies use the
held-out protocol only, except `collapse`, which also runs in-sample. To add a study, write a module
with one `Study` (its jobs, report section and figures together) and list it in `STUDIES`.
"""

from __future__ import annotations

import string

from norank.experiments.studies import (
    ablation,
    collapse,
    efficiency,
    encoder,
    imbalance,
    mining,
    pca,
    rank,
    runtime,
    sensitivity,
)
from norank.experiments.studies._base import Context, Study

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        rank.STUDY,
        ablation.STUDY,
        mining.STUDY,
        efficiency.STUDY,
        imbalance.STUDY,
        collapse.STUDY,
        encoder.STUDY,
        pca.STUDY,
        sensitivity.STUDY,
        runtime.STUDY,
    )
}
QUICK_STUDIES = ("ablation",)

__all__ = ["QUICK_STUDIES", "STUDIES", "Context", "Study", "check_studies", "study_datasets", "study_jobs", "title"]


def check_studies(names) -> list[str]:
    """The study names to run: all of them for None; 'none' (or []) for the main table only."""
    if names is None:
        return list(STUDIES)
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ValueError(f"unknown study(ies) {unknown}; use some of {list(STUDIES)} or 'none'.")
    return names


def title(name: str) -> str:
    """The study's section title with its letter (the main table is a)."""
    return f"{string.ascii_lowercase[1 + list(STUDIES).index(name)]}. {STUDIES[name].title}"


def study_datasets(name: str, datasets: list, quick: bool = False) -> list:
    return STUDIES[name].chosen_datasets(list(datasets), quick)


def study_jobs(
    name, datasets, seeds, methods_available, quick=False, protocols=("heldout",), sites=None, methods=None, spd=()
) -> list:
    """The jobs of study `name` in a run over `datasets` (study seeds `seeds`)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; use one of {list(STUDIES)}.")
    study = STUDIES[name]
    if study.needs_heldout and "heldout" not in protocols:
        return []
    chosen = study.chosen_datasets(list(datasets), quick)
    ctx = Context(
        chosen,
        list(seeds),
        set(methods_available),
        list(methods or []),
        quick,
        tuple(protocols),
        dict(sites or {}),
        set(spd),
    )
    return study.jobs(ctx) if chosen else []
