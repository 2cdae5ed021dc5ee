"""`run_reproduce`: plan every run, execute it with a progress bar, write results, report and figures.

Runs with the same model configuration, data, split and seed are computed once: a study variant equal to
the main configuration (say embedding_dim at its default) reuses the main run, marked `"reused": true`.
A run that raises is recorded with an `error` field and listed in the report instead of stopping the rest.
Runs go seed by seed, so an interrupted run holds whole seeds; `resume=True` keeps the records already
in `out/results.json` (same quick setting) and runs only the missing ones; if norank's defaults changed
since, only the baselines that do not use them are kept. The 2-D views of the first seed's
test embeddings are kept in `out/views/` for the figures.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from norank.experiments import methods as M
from norank.experiments import protocol as P
from norank.experiments import studies as S

ALL_DATASETS = ("olivetti", "lfw", "abide", "digits", "galaxy", "crystal", "galaxy-hard", "crystal-hard")
OFFLINE_DATASETS = ("digits", "galaxy", "crystal", "galaxy-hard", "crystal-hard")
# NCA is left out of --quick: its inner cross-validation took 130 of the demo's 314 s (8 datasets).
QUICK_METHODS = ("norank", "pca", "lda", "umap_supervised", "cp_r10")
QUICK_SEEDS = 1
QUICK_MAX_SAMPLES = 300
# Studies compare variants on the same splits; three seeds are enough for that and keep a full run
# within reach of two cores (the main table keeps every seed).
STUDY_SEEDS = 3
WRITE_INTERVAL_S = 30  # results.json is rewritten this often during a run
HISTORY_KEYS = ("loss", "triplet", "diversity", "uniformity", "local", "global", "active_fraction",
                "embedding_spread", "lr")


def available_datasets(data_dir=None) -> list[str]:
    """Every dataset that loads without a download: the generated ones and digits, plus the real ones
    whose local file is in `data_dir` or $NORANK_DATA_DIR (asked for by name, the others may download)."""
    from norank.datasets import real
    from norank.datasets._base import find_file

    files = {"olivetti": real.OLIVETTI_FILE, "lfw": real.LFW_FILE, "abide": real.ABIDE_FILE}
    return [n for n in ALL_DATASETS if n in OFFLINE_DATASETS or find_file(files[n], data_dir) is not None]


def load_dataset(name, data_dir=None, max_samples=None):
    """(X float32, y, target_names, meta, description) with an optional stratified cap on the samples."""
    from norank import datasets

    ds = datasets.load(name, data_dir=data_dir)
    X, y, meta = np.asarray(ds.X, dtype=np.float32), np.asarray(ds.y), dict(ds.meta)
    description = ds.description
    if max_samples is not None and len(y) > max_samples:
        keep = P.stratified_subset(y, max_samples / len(y), seed=0)
        X, y = X[keep], y[keep]
        meta = {k: np.asarray(v)[keep] for k, v in meta.items()}
        description += f" (quick: stratified subset of {len(y)} samples)"
    return {"X": X, "y": y, "target_names": np.asarray(ds.target_names).astype(str), "meta": meta,
            "description": description}


def _versions() -> dict:
    import sklearn
    import torch

    import norank

    out = {"norank": norank.__version__, "torch": torch.__version__, "numpy": np.__version__,
           "sklearn": sklearn.__version__, "python": platform.python_version()}
    for mod in ("scipy", "tensorly", "umap"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # an optional package missing is not an error here
            pass
    return out


def _code_revision() -> str | None:
    """The git commit of the norank source tree that runs ("+modified" when src/ differs from it), or None
    outside a git checkout: which code made a run's numbers."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", str(here.parent)],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+modified" if changed else "") if commit else None


def _machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def _indices(data, job: S.Job):
    y = data["y"]
    if job.protocol == "insample":
        idx = np.arange(len(y))
        train, test = idx, idx
    elif job.split.startswith("site:"):
        site = job.split[len("site:"):]
        sites = np.asarray(data["meta"]["site"]).astype(str)
        train, test = np.flatnonzero(sites != site), np.flatnonzero(sites == site)
    else:
        train, test = P.stratified_split(y, job.seed)
    if job.train_fraction < 1:
        train = train[P.stratified_subset(y[train], job.train_fraction, job.seed)]
    return train, test


def _record(job: S.Job, result: dict, settings: dict | None) -> dict:
    rec = {"dataset": job.dataset, "method": job.method, "protocol": job.protocol, "seed": job.seed,
           "split": job.split}
    if job.study != "main":
        rec["study"], rec["variant"] = job.study, job.variant
    if job.train_fraction < 1:
        rec["train_fraction"] = job.train_fraction
    rec.update({k: result[k] for k in ("metrics", "fit_seconds", "n_train", "n_test", "diagnostics")})
    if settings is not None:
        rec["settings"] = settings
    if result.get("history"):
        rec["history"] = result["history"]
    if job.study == "imbalance" and result.get("per_class_recall"):
        rec["per_class_recall"] = result["per_class_recall"]
        rec["train_class_counts"] = result["train_class_counts"]
    if "error" in result:
        rec["error"] = result["error"]
    return rec


def _run_job(job: S.Job, data, quick: bool) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    train, test = _indices(data, job)
    model = M.make_method(job.method, job.seed, job.dataset, quick, job.overrides,
                          n_classes=len(np.unique(data["y"][train])))
    out = P.score(model, data["X"], data["y"], train, test, job.protocol, M.is_supervised(job.method),
                  job.seed, data["target_names"])
    history = None
    if out.history:
        history = {k: [float(v) for v in out.history[k]] for k in HISTORY_KEYS if k in out.history}
    counts = np.bincount(data["y"][train], minlength=len(data["target_names"]))
    result = {"metrics": out.metrics, "fit_seconds": round(out.fit_seconds, 3), "n_train": int(len(train)),
              "n_test": int(len(test)), "diagnostics": out.diagnostics, "history": history,
              "per_class_recall": out.per_class_recall,
              "train_class_counts": {str(n): int(c) for n, c in zip(data["target_names"], counts)}}
    return result, out.Z, data["y"][test]


def plan(datasets, methods, seeds, protocols, studies, sites, quick, study_seeds=None) -> list[S.Job]:
    """Every run: the main table seed by seed, then the studies seed by seed (each stable within a seed),
    so a stopped run has whole seeds of the main table first. Studies use the first `study_seeds` seeds
    (all of them when None)."""
    main = S.main_jobs(datasets, methods, seeds, protocols, sites)
    available = set(methods) | set(M.all_methods())
    study_seed_list = seeds if study_seeds is None else seeds[:study_seeds]
    extra = [job for study in studies
             for job in S.study_jobs(study, datasets, study_seed_list, available, quick, protocols, sites)]
    by_seed = lambda j: seeds.index(j.seed)  # noqa: E731
    return sorted(main, key=by_seed) + sorted(extra, key=by_seed)


def _identity(dataset, method, protocol, seed, split, study, variant, train_fraction) -> tuple:
    return (dataset, method, protocol, int(seed), split, study or "main", variant, float(train_fraction))


def _job_identity(job: S.Job) -> tuple:
    return _identity(job.dataset, job.method, job.protocol, job.seed, job.split, job.study, job.variant,
                     job.train_fraction)


def _record_identity(rec: dict) -> tuple:
    return _identity(rec["dataset"], rec["method"], rec["protocol"], rec["seed"], rec["split"], rec.get("study"),
                     rec.get("variant"), rec.get("train_fraction", 1.0))


def _previous_records(out: Path, meta: dict, rerun=()) -> list[dict]:
    """Successful records of an earlier run in `out` with the same quick flag and split size.

    When only norank's defaults (or dataset settings) changed, the baselines that do not use them are
    kept and norank and the transformer baseline are run again. Records of the methods in `rerun` are
    dropped ("norank" also drops its study variants), so they run again."""
    path = out / "results.json"
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    key = differing_setting(old["meta"], meta, ("quick", "test_size"))
    if key:
        raise ValueError(f"{path} was made with another {key} ({old['meta'].get(key)!r}); resume needs the "
                         "same settings: use another --out folder, or drop --resume to start over.")
    records = [r for r in old["records"] if "error" not in r and M.base_method(r["method"]) not in rerun]
    changed = differing_setting(old["meta"], meta, ("norank_defaults", "dataset_settings"))
    if changed:
        records = [r for r in records if not M.uses_norank_settings(r["method"])]
        print(f"{path}: norank's {changed} changed since it was written; keeping its {len(records)} runs of "
              "baselines that do not use them, running norank and the transformer again.")
    return records


def differing_setting(meta_a: dict, meta_b: dict, keys) -> str | None:
    """The first of `keys` whose value differs between two runs' meta, or None."""
    def text(meta, key):
        return json.dumps(meta.get(key), sort_keys=True, default=str)

    return next((k for k in keys if text(meta_a, k) != text(meta_b, k)), None)


def _save_view(out: Path, dataset: str, method: str, xy, y) -> None:
    folder = out / "views"
    folder.mkdir(exist_ok=True)
    np.savez_compressed(folder / f"{dataset}__{method}.npz", xy=np.asarray(xy, np.float32), y=np.asarray(y))


def load_views(out: Path, datasets, methods) -> dict:
    """dataset → method → (xy, y): the 2-D views (`figures.pca2` of the test embedding) saved in out/views/.
    Files of earlier runs that hold the whole embedding `Z` are projected on reading."""
    from norank.experiments.figures import pca2

    views: dict[str, dict] = {}
    for d in datasets:
        for m in methods:
            path = out / "views" / f"{d}__{m}.npz"
            if path.is_file():
                with np.load(path, allow_pickle=False) as f:
                    xy = f["xy"] if "xy" in f.files else pca2(f["Z"])
                    views.setdefault(d, {})[m] = (xy, f["y"])
    return views


def run_reproduce(out, datasets=None, methods=None, seeds=5, protocol="both", quick=False, data_dir=None,
                  studies=None, command="", resume=False, study_seeds=STUDY_SEEDS, rerun=None):
    """Run the experiments and write `out/results.json`, `results.csv`, `report.md` and `figures/`.

    Parameters
    ----------
    out : path of the output folder (created).
    datasets, methods : lists of names, or None for every available dataset / every method
        (--quick: norank, pca, lda, umap_supervised, cp_r10).
    seeds : held-out seeds 0..seeds-1 (--quick: 1); in-sample uses seed 0.
    study_seeds : the studies use the first `study_seeds` of those seeds (None: all of them).
    protocol : "heldout", "insample" or "both".
    quick : 1 seed, 15 norank epochs, at most 300 samples per dataset, no leave-site-out, fewer studies.
    studies : list of study names, ["none"] or [] for the main table only, None for all (--quick: a few).
    resume : keep the successful records of an earlier run in `out` and run only the missing ones.
    rerun : with resume, method names whose earlier records are not kept (say after a fix in them).
    Returns the results dict that was written to results.json.
    """
    from tqdm.auto import tqdm

    from norank.experiments import figures, report

    started = time.perf_counter()
    words = str(command).split(" ", 1)
    if words[0] and Path(words[0]).name in ("norank", "__main__.py"):
        command = " ".join(["norank", *words[1:]])  # the CLI's argv[0] is a path
    if protocol not in ("heldout", "insample", "both"):
        raise ValueError(f"protocol={protocol!r} is not supported; use heldout, insample or both.")
    protocols = ["heldout", "insample"] if protocol == "both" else [protocol]
    _check_positive_int(seeds, "seeds", "the number of held-out splits")
    n_seeds = min(int(seeds), QUICK_SEEDS) if quick else int(seeds)
    seed_list = list(range(n_seeds))
    if study_seeds is not None:
        _check_positive_int(study_seeds, "study_seeds", "or None for every seed")
        study_seeds = min(int(study_seeds), n_seeds)
    if datasets is None:
        datasets = available_datasets(data_dir)
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
    if studies is None and quick:
        studies = list(S.QUICK_STUDIES)
    studies = S.check_studies(studies)

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    cache_data = {d: load_dataset(d, data_dir, QUICK_MAX_SAMPLES if quick else None) for d in datasets}
    sites = {} if quick else {d: [s for s, _, _ in P.site_splits(v["meta"]["site"], S.N_SITES)]
                              for d, v in cache_data.items() if "site" in v["meta"]}
    jobs = plan(datasets, methods, seed_list, protocols, studies, sites, quick, study_seeds)
    if any(M.uses_norank_settings(j.method) for j in jobs):
        _warm_up()

    meta = {
        "versions": _versions(), "code_revision": _code_revision(), "machine": _machine(), "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "quick": bool(quick),
        "seeds": seed_list, "study_seeds": seed_list[:study_seeds], "protocols": protocols,
        "datasets": list(datasets), "methods": list(methods),
        "studies": studies, "test_size": P.TEST_SIZE,
        "norank_defaults": {k: v for k, v in M.norank_defaults().items() if k not in ("verbose",)},
        "dataset_settings": {d: {"settings": s, "reason": r} for d, (s, r) in M.DATASET_SETTINGS.items()},
        "quick_epochs": M.QUICK_EPOCHS if quick else None,
        "quick_max_samples": QUICK_MAX_SAMPLES if quick else None,
        "descriptions": {d: v["description"] for d, v in cache_data.items()},
        "study_datasets": {s: S.study_datasets(s, list(datasets), quick) for s in studies},
    }
    previous = {_record_identity(r): r for r in _previous_records(out, meta, rerun)} if resume else {}
    # Kept records the loop has not reached yet: every interim write includes them, so stopping a resumed
    # run never loses them.
    pending = {k: r for k, r in previous.items() if k in {_job_identity(j) for j in jobs}}
    results = {"meta": meta, "records": []}
    done: dict[tuple, dict] = {}
    views: dict[str, dict] = load_views(out, datasets, methods) if resume else {}
    last_write = time.perf_counter()
    bar = tqdm(jobs, desc="norank reproduce", unit="run", dynamic_ncols=True)
    for job in bar:
        if _job_identity(job) in previous:
            results["records"].append(pending.pop(_job_identity(job)))
            continue
        bar.set_postfix_str(f"{job.dataset} {job.method} {job.protocol} seed {job.seed}", refresh=False)
        key = (job.dataset, M.config_key(job.method, job.dataset, quick, job.overrides), job.protocol,
               job.seed, job.split, job.train_fraction)
        settings = M.method_settings(job.method, job.dataset, quick, job.overrides)
        if key in done:
            record = _record(job, done[key], settings)
            record["reused"] = True
        else:
            try:
                result, Z, y_scored = _run_job(job, cache_data[job.dataset], quick)
            except Exception as exc:  # recorded and reported; the remaining runs still go ahead
                result = {"metrics": {}, "fit_seconds": None, "n_train": None, "n_test": None,
                          "diagnostics": {}, "error": f"{type(exc).__name__}: {exc}"}
                Z = None
                bar.write(f"error: {job.dataset} {job.method} {job.protocol} seed {job.seed}: {result['error']}")
            done[key] = result
            record = _record(job, result, settings)
            if (Z is not None and job.study == "main" and job.protocol == "heldout" and job.split == "stratified"
                    and job.seed == seed_list[0]):
                xy = figures.pca2(Z)  # the 2-D view is all the figures need: kept small enough to commit
                views.setdefault(job.dataset, {})[job.method] = (xy, y_scored)
                _save_view(out, job.dataset, job.method, xy, y_scored)
        results["records"].append(record)
        if time.perf_counter() - last_write > WRITE_INTERVAL_S:  # an interrupted run keeps what it has done
            _write_json(out / "results.json", {**results, "records": results["records"] + list(pending.values())})
            last_write = time.perf_counter()
    bar.close()
    figure_files = figures.make_all(results, views, out / "figures")
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    if previous:
        meta["resumed_records"] = sum(_job_identity(j) in previous for j in jobs)
    _write_json(out / "results.json", results)
    report.write_csv(results, out / "results.csv")
    (out / "report.md").write_text(report.render(results, figure_files, figure_dir="figures"))
    print(report.console_table(results))
    print(f"wrote {out / 'results.json'}, results.csv, report.md and {len(figure_files)} figures "
          f"in {meta['wall_seconds']:.0f} s")
    return results


def _check_positive_int(value, name: str, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer ({meaning}).")


def _warm_up() -> None:
    """One tiny fit, untimed, so one-time start-up costs (lazy imports, kernel set-up) stay out of the
    first run's fit_seconds."""
    from norank.estimator import NoRankEmbedder

    X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    NoRankEmbedder(epochs=1, batch_size=8, samples_per_class=2, random_state=0).fit(X, np.arange(16) % 4)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    tmp.replace(path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    return str(value)
