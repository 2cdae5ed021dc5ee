"""The transformer baseline's own settings (issue 12, item 7; docs/baselines.md "transformer").

    OMP_NUM_THREADS=1 NORANK_DATA_DIR=/work/shared/data \\
        python -m benchmarks.study_transformer olivetti,lfw shared,lr3e-4,e60 100-102
    python -m benchmarks.study_transformer --table

The baseline used to train with norank's settings (NoRankEmbedder's defaults plus the dataset's), which
were chosen for the MLP. A transformer usually wants a smaller learning rate, longer training and some
dropout, so each VARIANT below changes those, and the one that wins across the datasets becomes the
baseline's own setting. Per tuning seed (report seeds are refused), the protocol of
`benchmarks.tune_defaults`: a stratified 70/30 split, `TransformerBaseline(params, random_state=seed)`
fitted on the 70 %, 1-NN accuracy (fitted on the training embeddings) and k-means ARI on the 30 %.
"shared" is what the baseline ran with before (`method_settings("transformer", dataset)` at the time:
norank's defaults with the dataset's settings, ABIDE's dropout 0.5).

Records go to benchmarks/study_transformer.json, one per (dataset, variant, seed); a stored record is not
refitted, so a stopped run resumes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import fit_missing
from benchmarks.tune_defaults import data, parse_seed_range, score

OUT = Path(__file__).resolve().parent / "study_transformer.json"
DATASETS = ("olivetti", "lfw", "digits", "galaxy-hard", "crystal-hard", "abide")
ABIDE_SHARED = {"dropout": 0.5}  # norank's ABIDE setting, which the baseline shared
VARIANTS: dict[str, dict] = {
    "shared": {},
    "lr3e-4": {"learning_rate": 3e-4},
    "lr3e-3": {"learning_rate": 3e-3},
    "e60": {"epochs": 60},
    "drop0.1": {"dropout": 0.1},
    "lr3e-4_e60": {"learning_rate": 3e-4, "epochs": 60},
    "e60_drop0.1": {"epochs": 60, "dropout": 0.1},
    "lr3e-3_drop0.1": {"learning_rate": 3e-3, "dropout": 0.1},
    "lr3e-3_e60": {"learning_rate": 3e-3, "epochs": 60},
    "e100": {"epochs": 100},
}
USAGE = (
    "usage: python -m benchmarks.study_transformer DATASETS VARIANTS SEEDS   (SEEDS: a-b or s1,s2)\n"
    "       python -m benchmarks.study_transformer --table"
)


def params(variant: str, dataset: str) -> dict:
    """The baseline's NoRankEmbedder keywords: ABIDE's shared dropout under the variant's changes."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    return {**(ABIDE_SHARED if dataset == "abide" else {}), **VARIANTS[variant]}


def fit_one(dataset: str, variant: str, seed: int) -> dict:
    from norank.baselines.transformer import TransformerBaseline
    from norank.splits import holdout_split

    X, y = data(dataset)
    train, test = holdout_split(y, 0.3, seed, shuffled=True)
    model = TransformerBaseline(params(variant, dataset), random_state=seed)
    start = time.time()
    model.fit(X[train], y[train])
    seconds = time.time() - start
    acc, ari = score(model.transform(X[train]), y[train], model.transform(X[test]), y[test], seed)
    return {
        "dataset": dataset,
        "variant": variant,
        "seed": int(seed),
        "knn_accuracy": float(acc),
        "ari": float(ari),
        "fit_seconds": round(seconds, 2),
    }


def _load() -> list[dict]:
    return json.loads(OUT.read_text())["records"] if OUT.exists() else []


def _key(r: dict) -> tuple:
    return r["dataset"], r["variant"], r["seed"]


def store(record: dict) -> None:
    records = [r for r in _load() if _key(r) != _key(record)] + [record]
    meta = {"protocol": "holdout_split(y, 0.3, seed, shuffled=True); TransformerBaseline(params, random_state=seed)"}
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "records": sorted(records, key=_key)}, indent=1) + "\n")
    tmp.replace(OUT)


def table(records: list[dict], reference: str = "shared") -> str:
    """Markdown: per variant and dataset, 1-NN / ARI mean over seeds, and the paired difference from
    `reference` on the same splits (mean over seeds), which says whether a gap is more than noise."""
    by = {_key(r): r for r in records}
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in records)]
    head = "| variant | " + " | ".join(datasets) + " | mean paired Δ 1-NN / ARI |"
    lines = [head, "|---" * (len(datasets) + 2) + "|"]
    for v in VARIANTS:
        cells, deltas = [], []
        for d in datasets:
            rs = [r for r in records if r["dataset"] == d and r["variant"] == v]
            if not rs:
                cells.append("–")
                continue
            acc, ari = np.mean([r["knn_accuracy"] for r in rs]), np.mean([r["ari"] for r in rs])
            pairs = [(r, by[(d, reference, r["seed"])]) for r in rs if (d, reference, r["seed"]) in by]
            deltas += [(r["knn_accuracy"] - b["knn_accuracy"], r["ari"] - b["ari"]) for r, b in pairs]
            cells.append(f"{acc:.3f} / {ari:.3f}" + ("" if len(rs) == 3 else f" ({len(rs)})"))
        if any(c != "–" for c in cells):
            mean = np.mean(deltas, axis=0) if deltas else (np.nan, np.nan)
            lines.append(f"| {v} | " + " | ".join(cells) + f" | {mean[0]:+.3f} / {mean[1]:+.3f} |")
    return "\n".join(lines)


def main(argv) -> int:
    if argv == ["--table"]:
        print(table(_load()))
        return 0
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        seeds = parse_seed_range(argv[2])
        variants = argv[1].split(",")
        for v in variants:
            params(v, "olivetti")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    jobs = [(dataset, v, seed) for dataset in argv[0].split(",") for seed in seeds for v in variants]
    fit_missing(jobs, lambda: {_key(r) for r in _load()}, fit_one, store)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
