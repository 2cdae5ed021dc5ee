"""One job of a reproduce run: its split, its fit and score at its thread count, and its record.

`execute_one` never raises for a failing method: the error becomes the record's `error` field, so the
rest of the run goes ahead. `record` keeps what results.json stores for a job (see docs/experiments.md).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from norank.experiments import methods as M
from norank.experiments import protocol as P
from norank.experiments import studies as S
from norank.experiments.jobs import Job
from norank.splits import holdout_split, stratified_subset

HISTORY_KEYS = (
    "loss",
    "triplet",
    "diversity",
    "uniformity",
    "local",
    "global",
    "active_fraction",
    "embedding_spread",
    "lr",
)


def indices(data, job: Job):
    """(train, test) row indices of `job`: in-sample, leave one site out, or the seeded stratified hold-out,
    the training rows then subsampled (stratified) to `train_fraction`."""
    y = data["y"]
    if job.protocol == "insample":
        idx = np.arange(len(y))
        train, test = idx, idx
    elif job.split.startswith("site:"):
        site = job.split[len("site:") :]
        sites = np.asarray(data["meta"]["site"]).astype(str)
        train, test = np.flatnonzero(sites != site), np.flatnonzero(sites == site)
    else:
        train, test = holdout_split(y, P.TEST_SIZE, job.seed)
    if job.train_fraction < 1:
        train = train[stratified_subset(y[train], job.train_fraction, job.seed, min_per_class=2)]
    return train, test


@contextmanager
def thread_limit(n: int | None):
    """torch and the BLAS/OpenMP pools at `n` threads inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def record(job: Job, result: dict, settings: dict | None) -> dict:
    """The results.json record of `job`: the fields that tell it apart from other jobs, then its result."""
    rec = {"dataset": job.dataset, "method": job.method, "protocol": job.protocol, "seed": job.seed, "split": job.split}
    if job.study != "main":
        rec["study"], rec["variant"] = job.study, job.variant
    if job.train_fraction < 1:
        rec["train_fraction"] = job.train_fraction
    if job.threads is not None:
        rec["threads"] = job.threads
    rec.update({k: result[k] for k in ("metrics", "fit_seconds", "n_train", "n_test", "diagnostics")})
    if settings is not None:
        rec["settings"] = settings
    if result.get("history"):
        rec["history"] = result["history"]
    if job.study in S.STUDIES and S.STUDIES[job.study].per_class_recall and result.get("per_class_recall"):
        rec["per_class_recall"] = result["per_class_recall"]
        rec["train_class_counts"] = result["train_class_counts"]
    if "error" in result:
        rec["error"] = result["error"]
    return rec


def run_job(job: Job, data, quick: bool) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """(result, test embedding Z, test labels) of one fit and score, with only the training rows seen in fit."""
    train, test = indices(data, job)
    model = M.make_method(
        job.method, job.seed, job.dataset, quick, job.overrides, n_classes=len(np.unique(data["y"][train]))
    )
    with thread_limit(job.threads):
        out = P.score(
            model,
            data["X"],
            data["y"],
            train,
            test,
            job.protocol,
            M.is_supervised(job.method),
            job.seed,
            data["target_names"],
            predicts=M.predicts(job.method),
        )
    history = None
    if out.history:
        history = {k: [float(v) for v in out.history[k]] for k in HISTORY_KEYS if k in out.history}
    counts = np.bincount(data["y"][train], minlength=len(data["target_names"]))
    result = {
        "metrics": out.metrics,
        "fit_seconds": round(out.fit_seconds, 3),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "diagnostics": out.diagnostics,
        "history": history,
        "per_class_recall": out.per_class_recall,
        "train_class_counts": {str(n): int(c) for n, c in zip(data["target_names"], counts, strict=True)},
    }
    return result, out.Z, data["y"][test]


def execute_one(job, key, data, quick, done, bar):
    """(result, Z, y) of one job: computed, or an error recorded; `done` caches it under `key`."""
    try:
        result, Z, y_scored = run_job(job, data, quick)
    except Exception as exc:  # recorded and reported; the remaining runs still go ahead
        result = {
            "metrics": {},
            "fit_seconds": None,
            "n_train": None,
            "n_test": None,
            "diagnostics": {},
            "error": f"{type(exc).__name__}: {exc}",
        }
        Z = y_scored = None
        bar.write(f"error: {job.dataset} {job.method} {job.protocol} seed {job.seed}: {result['error']}")
    done[key] = result
    return result, Z, y_scored
