"""One run of one method is a `Job`; `plan` lists a reproduce run's jobs in the order they execute.

The main table is every dataset × method × protocol × seed (ABIDE also leave-site-out, with the first
seed as the methods' seed); the studies add their own jobs (`norank.experiments.studies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    dataset: str
    method: str
    protocol: str
    seed: int
    split: str = "stratified"  # "stratified", "all" (in-sample) or "site:<name>"
    study: str = "main"
    variant: str | None = None
    overrides: dict = field(default_factory=dict, hash=False)
    train_fraction: float = 1.0
    threads: int | None = None  # None: the process's thread count; 1: torch and BLAS/OpenMP pools at 1


def main_jobs(datasets, methods, seeds, protocols, sites, spd=()) -> list[Job]:
    """`sites` maps a dataset to its leave-site-out site names (ABIDE); `spd` names the datasets of SPD
    matrices, the only ones SPD-only methods (tangent_logistic, tangent_svc) run on."""
    from norank.experiments.methods import applies

    jobs = []
    for d in datasets:
        for m in (m for m in methods if applies(m, d in spd)):
            if "heldout" in protocols:
                jobs += [Job(d, m, "heldout", s) for s in seeds]
                jobs += [Job(d, m, "heldout", seeds[0], split=f"site:{site}") for site in sites.get(d, [])]
            if "insample" in protocols:
                jobs.append(Job(d, m, "insample", seeds[0], split="all"))
    return jobs


def plan(datasets, methods, seeds, protocols, studies, sites, quick, study_seeds=None, spd=()) -> list[Job]:
    """Every run: the main table seed by seed, then the studies seed by seed (each stable within a seed),
    so a stopped run has whole seeds of the main table first. Studies use the first `study_seeds` seeds
    (all of them when None)."""
    from norank.experiments import methods as M
    from norank.experiments import studies as S

    main = main_jobs(datasets, methods, seeds, protocols, sites, spd)
    available = set(methods) | set(M.all_methods())
    study_seed_list = seeds if study_seeds is None else seeds[:study_seeds]
    extra = [
        job
        for study in studies
        for job in S.study_jobs(
            study, datasets, study_seed_list, available, quick, protocols, sites, methods=methods, spd=spd
        )
    ]

    def by_seed(job):
        return seeds.index(job.seed)

    return sorted(main, key=by_seed) + sorted(extra, key=by_seed)


def identity(dataset, method, protocol, seed, split, study, variant, train_fraction) -> tuple:
    """What makes a record the answer to a job (resume matches them)."""
    return (dataset, method, protocol, int(seed), split, study or "main", variant, float(train_fraction))


def job_identity(job: Job) -> tuple:
    return identity(
        job.dataset, job.method, job.protocol, job.seed, job.split, job.study, job.variant, job.train_fraction
    )


def record_identity(rec: dict) -> tuple:
    return identity(
        rec["dataset"],
        rec["method"],
        rec["protocol"],
        rec["seed"],
        rec["split"],
        rec.get("study"),
        rec.get("variant"),
        rec.get("train_fraction", 1.0),
    )
