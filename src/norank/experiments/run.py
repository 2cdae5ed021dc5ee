"""`run_reproduce`: plan every run, execute it with a progress bar, write results, report and figures.

Runs with the same model configuration, data, split, seed and thread count are computed once: a study
variant equal to the main configuration (say embedding_dim at its default) reuses the main run, marked
`"reused": true`. A run that raises is recorded with an `error` field and listed in the report instead
of stopping the rest. Runs go seed by seed, so an interrupted run holds whole seeds; `resume=True` keeps
the records already in `out/results.json` (same quick setting) and runs only the missing ones (see
`store.previous_records`). The 2-D views of the first seed's test embeddings are kept in `out/views/`.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import numpy as np

from norank.datasets import NAMES as ALL_DATASETS
from norank.datasets import SIMULATED
from norank.experiments import methods as M
from norank.experiments import protocol as P
from norank.experiments import seeds as SEEDS
from norank.experiments import store
from norank.experiments import studies as S
from norank.experiments.execute import execute_one, thread_limit
from norank.experiments.execute import record as _record
from norank.experiments.jobs import job_identity, plan, record_identity
from norank.preprocessing import looks_symmetric
from norank.splits import stratified_subset

OFFLINE_DATASETS = ("digits", *SIMULATED)
# NCA is left out of --quick: its inner cross-validation took 130 of the demo's 314 s (8 datasets).
QUICK_METHODS = ("norank", "pca", "lda", "umap_supervised", "cp_r10")
QUICK_SEEDS = 1
QUICK_MAX_SAMPLES = 300
# Studies compare variants on the same splits; three seeds are enough for that and keep a full run
# within reach of two cores (the main table keeps every seed).
STUDY_SEEDS = 3
WRITE_INTERVAL_S = 30  # results.json is rewritten this often during a run
_threads = thread_limit  # its name before one job's execution moved to `execute` (tests reach it here)


def available_datasets(data_dir=None) -> list[str]:
    """Every dataset that loads without a download: the generated ones and digits, plus the real ones
    whose local file is in `data_dir` or $NORANK_DATA_DIR (asked for by name, the others may download)."""
    from norank.datasets import real
    from norank.datasets._base import find_file

    files = {"olivetti": real.OLIVETTI_FILE, "lfw": real.LFW_FILE, "abide": real.ABIDE_FILE}
    return [n for n in ALL_DATASETS if n in OFFLINE_DATASETS or (n in files and find_file(files[n], data_dir))]


def load_dataset(name, data_dir=None, max_samples=None):
    """(X float32, y, target_names, meta, description) with an optional stratified cap on the samples."""
    from norank import datasets

    ds = datasets.load(name, data_dir=data_dir)
    X, y, meta = np.asarray(ds.X, dtype=np.float32), np.asarray(ds.y), dict(ds.meta)
    description = ds.description
    if max_samples is not None and len(y) > max_samples:
        keep = stratified_subset(y, max_samples, 0, min_per_class=2)
        X, y = X[keep], y[keep]
        meta = {k: np.asarray(v)[keep] for k, v in meta.items()}
        description += f" (quick: stratified subset of {len(y)} samples)"
    return {
        "X": X,
        "y": y,
        "target_names": np.asarray(ds.target_names).astype(str),
        "meta": meta,
        "description": description,
    }


def _check_positive_int(value, name: str, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer ({meaning}).")


def _arguments(datasets, methods, seeds, protocol, quick, data_dir, studies, resume, study_seeds, rerun) -> dict:
    """Every argument checked and resolved before any data loads."""
    if protocol not in ("heldout", "insample", "both"):
        raise ValueError(f"protocol={protocol!r} is not supported; use heldout, insample or both.")
    seed_list = SEEDS.resolve(seeds)
    if quick:
        seed_list = seed_list[:QUICK_SEEDS]
    if study_seeds is not None:
        _check_positive_int(study_seeds, "study_seeds", "or None for every seed")
        study_seeds = min(int(study_seeds), len(seed_list))
    datasets = available_datasets(data_dir) if datasets is None else list(datasets)
    unknown = [d for d in datasets if d not in ALL_DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; use some of {list(ALL_DATASETS)}.")
    if not datasets:
        raise ValueError("no dataset selected; pass datasets such as ['digits'].")
    if methods is None:
        methods = list(QUICK_METHODS) if quick else M.all_methods()
    methods = M.check_methods(methods)
    rerun = M.check_methods(rerun or [])
    if rerun and not resume:
        raise ValueError("rerun names methods to run again in a resumed run; pass resume=True (--resume) too.")
    studies = S.check_studies(list(S.QUICK_STUDIES) if studies is None and quick else studies)
    return {
        "protocols": ["heldout", "insample"] if protocol == "both" else [protocol],
        "seeds": seed_list,
        "study_seeds": study_seeds,
        "datasets": datasets,
        "methods": methods,
        "rerun": rerun,
        "studies": studies,
    }


def _meta(args: dict, command: str, quick: bool, cache_data: dict) -> dict:
    seeds, studies = args["seeds"], args["studies"]
    meta = {
        "versions": store.versions(),
        "code_revision": store.code_revision(),
        "machine": store.machine(),
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(quick),
        "seeds": seeds,
        "study_seeds": seeds[: args["study_seeds"]],
        "seed_kinds": {str(s): SEEDS.kind(s) for s in seeds},
        "protocols": args["protocols"],
        "datasets": list(args["datasets"]),
        "methods": list(args["methods"]),
        "studies": studies,
        "test_size": P.TEST_SIZE,
        "min_site_subjects": P.MIN_SITE_SUBJECTS,
        "norank_defaults": {k: v for k, v in M.norank_defaults().items() if k not in ("verbose", "callbacks")},
        "dataset_settings": {d: {"settings": s, "reason": r} for d, (s, r) in M.DATASET_SETTINGS.items()},
        "transformer_settings": {
            "all": M.transformer_settings(),
            **{d: {"settings": s, "reason": r} for d, (s, r) in M.TRANSFORMER_DATASET_SETTINGS.items()},
        },
        "quick_epochs": M.QUICK_EPOCHS if quick else None,
        "quick_max_samples": QUICK_MAX_SAMPLES if quick else None,
        "descriptions": {d: v["description"] for d, v in cache_data.items()},
        "study_datasets": {s: S.study_datasets(s, list(args["datasets"]), quick) for s in studies},
    }
    if "runtime" in studies:
        meta["runtime_threads"] = S.runtime.THREADS
    return meta


def _command_text(command) -> str:
    words = str(command).split(" ", 1)
    if words[0] and Path(words[0]).name in ("norank", "__main__.py"):
        return " ".join(["norank", *words[1:]])  # the CLI's argv[0] is a path
    return str(command)


def _execute(jobs, cache_data, out: Path, quick: bool, previous: dict, views: dict, results: dict) -> None:
    """Run (or keep, or reuse) every job in order, rewriting results.json every WRITE_INTERVAL_S."""
    from tqdm.auto import tqdm

    from norank.experiments import figures

    first_seed = results["meta"]["seeds"][0]
    # Kept records the loop has not reached yet: every interim write includes them, so stopping a resumed
    # run never loses them.
    pending = {k: r for k, r in previous.items() if k in {job_identity(j) for j in jobs}}
    done: dict[tuple, dict] = {}
    last_write = time.perf_counter()
    bar = tqdm(jobs, desc="norank reproduce", unit="run", dynamic_ncols=True)
    for job in bar:
        if job_identity(job) in previous:
            results["records"].append(pending.pop(job_identity(job)))
            continue
        bar.set_postfix_str(f"{job.dataset} {job.method} {job.protocol} seed {job.seed}", refresh=False)
        key = (
            job.dataset,
            M.config_key(job.method, job.dataset, quick, job.overrides),
            job.protocol,
            job.seed,
            job.split,
            job.train_fraction,
            job.threads,
        )
        settings = M.method_settings(job.method, job.dataset, quick, job.overrides)
        if key in done:
            record = {**_record(job, done[key], settings), "reused": True}
        else:
            result, Z, y_scored = execute_one(job, key, cache_data[job.dataset], quick, done, bar)
            record = _record(job, result, settings)
            if (
                Z is not None
                and job.study == "main"
                and job.protocol == "heldout"
                and job.split == "stratified"
                and job.seed == first_seed
            ):
                xy = figures.pca2(Z)  # the 2-D view is all the figures need: kept small enough to commit
                views.setdefault(job.dataset, {})[job.method] = (xy, y_scored)
                store.save_view(out, job.dataset, job.method, xy, y_scored)
        results["records"].append(record)
        if time.perf_counter() - last_write > WRITE_INTERVAL_S:  # an interrupted run keeps what it has done
            store.write_json(out / "results.json", {**results, "records": results["records"] + list(pending.values())})
            last_write = time.perf_counter()
    bar.close()


def run_reproduce(
    out,
    datasets=None,
    methods=None,
    seeds=5,
    protocol="both",
    quick=False,
    data_dir=None,
    studies=None,
    command="",
    resume=False,
    study_seeds=STUDY_SEEDS,
    rerun=None,
):
    """Run the experiments and write `out/results.json`, `results.csv`, `report.md` and `figures/`.

    Parameters
    ----------
    out : path of the output folder (created).
    datasets, methods : lists of names, or None for every available dataset / every method
        (--quick: norank, pca, lda, umap_supervised, cp_r10).
    seeds : a count n: the first n report seeds (1000, 1001, ...; `seeds.REPORT_SEEDS`), or an explicit
        list of seeds, such as tuning seeds [0, 1, 2] for a tuning run (--quick: the first one only).
        In-sample and leave-site-out runs use the first seed.
    study_seeds : the studies use the first `study_seeds` of those seeds (None: all of them).
    protocol : "heldout", "insample" or "both".
    quick : 1 seed, 15 norank epochs, at most 300 samples per dataset, no leave-site-out, fewer studies.
    studies : list of study names, ["none"] or [] for the main table only, None for all (--quick: a few).
    resume : keep the successful records of an earlier run in `out` and run only the missing ones.
    rerun : with resume, method names whose earlier records are not kept (say after a fix in them).
    Returns the results dict that was written to results.json.
    """
    started = time.perf_counter()
    args = _arguments(datasets, methods, seeds, protocol, quick, data_dir, studies, resume, study_seeds, rerun)
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    cache_data = {d: load_dataset(d, data_dir, QUICK_MAX_SAMPLES if quick else None) for d in args["datasets"]}
    jobs = _plan_jobs(args, cache_data, quick)
    if any(M.uses_norank_settings(j.method) for j in jobs):
        _warm_up()
    meta = _meta(args, _command_text(command), quick, cache_data)
    previous = {record_identity(r): r for r in store.previous_records(out, meta, args["rerun"])} if resume else {}
    results = {"meta": meta, "records": []}
    views = store.load_views(out, args["datasets"], args["methods"]) if resume else {}
    _execute(jobs, cache_data, out, quick, previous, views, results)
    resumed = sum(job_identity(j) in previous for j in jobs) if previous else None
    _write_outputs(out, results, views, started, resumed)
    return results


def _plan_jobs(args: dict, cache_data: dict, quick: bool) -> list:
    """Every job of the run, once the data tell which datasets have sites (leave-site-out, never in
    --quick) and which hold SPD matrices (the only ones SPD-only methods run on)."""
    sites = {}
    if not quick:
        sites = {
            d: [s for s, _, _ in P.site_splits(v["meta"]["site"])] for d, v in cache_data.items() if "site" in v["meta"]
        }
    spd = {d for d, v in cache_data.items() if looks_symmetric(v["X"])}
    return plan(
        args["datasets"],
        args["methods"],
        args["seeds"],
        args["protocols"],
        args["studies"],
        sites,
        quick,
        args["study_seeds"],
        spd,
    )


def _write_outputs(out: Path, results: dict, views: dict, started: float, resumed: int | None) -> None:
    """Figures, then results.json (with the wall time and the count of `resumed` records kept from an
    earlier run), results.csv and report.md; the table on the console."""
    from norank.experiments import figures, report

    figure_files = figures.make_all(results, views, out / "figures")
    meta = results["meta"]
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    if resumed is not None:
        meta["resumed_records"] = resumed
    store.write_json(out / "results.json", results)
    report.write_csv(results, out / "results.csv")
    (out / "report.md").write_text(report.render(results, figure_files, figure_dir="figures"))
    print(report.console_table(results))
    print(
        f"wrote {out / 'results.json'}, results.csv, report.md and {len(figure_files)} figures "
        f"in {meta['wall_seconds']:.0f} s"
    )


def _warm_up() -> None:
    """One tiny fit, untimed, so one-time start-up costs (lazy imports, kernel set-up) stay out of the
    first run's fit_seconds."""
    from norank.estimator import NoRankEmbedder

    X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    NoRankEmbedder(epochs=1, batch_size=8, samples_per_class=2, random_state=0).fit(X, np.arange(16) % 4)
