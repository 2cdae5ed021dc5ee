"""Which loss should norank's default be? (docs/defaults.md, "Loss (issue 12)")

    OMP_NUM_THREADS=1 NORANK_DATA_DIR=/work/shared/data \\
        python -m benchmarks.study_losses olivetti,digits triplet,supcon,multi_similarity 100-102
    python -m benchmarks.study_losses --table            # markdown tables of everything stored

Per tuning seed (never the report seeds; `benchmarks.tune_defaults.parse_seeds` refuses them), the
protocol of `benchmarks.tune_defaults`: a stratified 70/30 split (`norank.splits.holdout_split`, rows in
scikit-learn's drawn order), `NoRankEmbedder(random_state=seed, loss=...)` with every other setting at its
default (plus the dataset's own settings, `norank_settings`: ABIDE's dropout 0.5, none for the image
sets), fitted on the 70 %, then 1-NN accuracy (fitted on the training embeddings) and k-means ARI on the
30 %. A variant is a loss name (make_loss's constants) or one of VARIANTS below (a constant changed).

Records go to benchmarks/study_losses.json, one per (dataset, variant, seed); a record already stored is
not refitted, so two processes may share the file (a lock guards each write) and a run can be resumed.
"""

from __future__ import annotations

import fcntl
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import fit_missing
from benchmarks.tune_defaults import data, parse_seed_range, score

OUT = Path(__file__).resolve().parent / "study_losses.json"
DATASETS = ("olivetti", "lfw", "digits", "galaxy-hard", "crystal-hard", "abide")  # the table's column order
LOSS_NAMES = ("triplet", "supcon", "multi_similarity", "prototypical", "proxy_anchor", "arcface")
USAGE = (
    "usage: python -m benchmarks.study_losses DATASETS VARIANTS SEEDS   (SEEDS: a-b or s1,s2)\n"
    "       python -m benchmarks.study_losses --table"
)


class ScaledPrototypical:
    """Prototypical loss on embeddings scaled by `scale` (squared distances times scale²): on the unit
    sphere the plain form's logits −‖z − c‖² span only [−4, 0], a softmax temperature of 1."""

    def __init__(self, scale: float):
        from norank.losses import PrototypicalLoss

        self.scale, self.loss = float(scale), PrototypicalLoss()

    def __call__(self, embeddings, labels, indices_tuple=None):
        return self.loss(embeddings * self.scale, labels)


def _supcon(temperature):
    from norank.losses import SupConLoss

    return lambda n_classes, seed: {"loss": SupConLoss(temperature=temperature)}


def _ms(alpha, beta, base):
    from norank.losses import MultiSimilarityLoss
    from norank.losses.registry import MS_EPSILON

    return lambda n_classes, seed: {"loss": MultiSimilarityLoss(alpha, beta, base, epsilon=MS_EPSILON)}


def _proto(scale):
    return lambda n_classes, seed: {"loss": ScaledPrototypical(scale)}


def _proxy(alpha, margin):
    import torch

    from norank.losses import ProxyAnchorLoss

    return lambda n_classes, seed: {
        "loss": ProxyAnchorLoss(
            n_classes, 64, margin=margin, alpha=alpha, generator=torch.Generator().manual_seed(seed)
        )
    }


def _arcface(margin_degrees, scale):
    import torch

    from norank.losses import ArcFaceLoss

    return lambda n_classes, seed: {
        "loss": ArcFaceLoss(
            n_classes, 64, margin_degrees=margin_degrees, scale=scale, generator=torch.Generator().manual_seed(seed)
        )
    }


# Constants changed from make_loss's (the papers'); each builds the estimator's keywords from the number of
# training classes and the seed (class vectors drawn from it, as make_loss draws them from the fit's generator).
VARIANTS = {
    "supcon_t0.05": _supcon(0.05),
    "supcon_t0.2": _supcon(0.2),
    "multi_similarity_b10": _ms(2.0, 10.0, 0.5),
    "multi_similarity_b20": _ms(2.0, 20.0, 0.5),
    "prototypical_s3": _proto(3.0),
    "prototypical_s5": _proto(5.0),
    "proxy_anchor_a16": _proxy(16.0, 0.1),
    "arcface_m10_s16": _arcface(10.0, 16.0),
    "arcface_m10_s32": _arcface(10.0, 32.0),
}


def settings(variant: str, n_classes: int, seed: int = 0) -> dict:
    """NoRankEmbedder keywords for a variant name (a loss name or a key of VARIANTS)."""
    if variant in LOSS_NAMES:
        return {"loss": variant}
    if variant in VARIANTS:
        return VARIANTS[variant](n_classes, seed)
    raise ValueError(
        f"unknown variant {variant!r}; choose a loss ({', '.join(LOSS_NAMES)}) or one of {', '.join(VARIANTS)}."
    )


def fit_one(name: str, variant: str, seed: int) -> dict:
    """One held-out record: 1-NN accuracy, ARI and fit seconds of the variant on one tuning split."""
    from norank import NoRankEmbedder
    from norank.experiments.methods import norank_settings
    from norank.splits import holdout_split

    X, y = data(name)
    train, test = holdout_split(y, 0.3, seed, shuffled=True)  # tune_defaults' rows, in the same order
    # The dataset's own settings (ABIDE: dropout 0.5; none for the image sets) under the variant's keywords.
    params = {**norank_settings(name), **settings(variant, len(np.unique(y[train])), seed)}
    est = NoRankEmbedder(random_state=seed, **params)
    start = time.time()
    est.fit(X[train], y[train])
    seconds = time.time() - start
    acc, ari = score(est.transform(X[train]), y[train], est.transform(X[test]), y[test], seed)
    return {
        "dataset": name,
        "variant": variant,
        "seed": int(seed),
        "knn_accuracy": float(acc),
        "ari": float(ari),
        "fit_seconds": round(seconds, 2),
        "encoder": est.encoder_kind_,
        "final_loss": float(est.history_["loss"][-1]),
    }


def _load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {"meta": {}, "records": []}


def _key(r: dict) -> tuple:
    return r["dataset"], r["variant"], r["seed"]


def store(record: dict) -> None:
    """Add one record to OUT under a lock, keeping what other processes wrote meanwhile."""
    with open(Path(tempfile.gettempdir()) / "norank_study_losses.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = _load()
        doc["meta"] = {
            "protocol": "holdout_split(y, 0.3, seed, shuffled=True); NoRankEmbedder(random_state=seed)",
            "python": platform.python_version(),
            "threads": "OMP_NUM_THREADS=1",
        }
        doc["records"] = [r for r in doc["records"] if _key(r) != _key(record)] + [record]
        doc["records"].sort(key=_key)
        OUT.write_text(json.dumps(doc, indent=1) + "\n")


def summary(records) -> dict:
    """(dataset, variant) -> (seeds, 1-NN mean, std, ARI mean, std, fit seconds mean); std over seeds (ddof=0)."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], r["variant"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        acc = np.array([r["knn_accuracy"] for r in rs])
        ari = np.array([r["ari"] for r in rs])
        out[key] = (
            sorted(r["seed"] for r in rs),
            acc.mean(),
            acc.std(),
            ari.mean(),
            ari.std(),
            float(np.mean([r["fit_seconds"] for r in rs])),
        )
    return out


def table(records) -> str:
    """Markdown: one row per variant, one column per dataset, '1-NN ± std / ARI ± std'."""
    s = summary(records)
    stored = {k[0] for k in s}
    datasets = [d for d in DATASETS if d in stored] + sorted(stored - set(DATASETS))
    variants = [v for v in LOSS_NAMES + tuple(VARIANTS) if any(k[1] == v for k in s)]
    lines = ["| loss | " + " | ".join(datasets) + " |", "|---" * (len(datasets) + 1) + "|"]
    for v in variants:
        cells = []
        for d in datasets:
            if (d, v) not in s:
                cells.append("–")
                continue
            seeds, a, sa, r, sr, _ = s[(d, v)]
            cells.append(f"{a:.3f} ± {sa:.3f} / {r:.3f} ± {sr:.3f}" + ("" if len(seeds) == 3 else f" ({len(seeds)})"))
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(records, reference: str = "triplet") -> str:
    """Markdown: per dataset and variant, the mean ± std over seeds of (variant − reference) on the same
    split, 1-NN / ARI: the split-to-split spread cancels, so these say whether a gap is more than noise."""
    by = {_key(r): r for r in records}
    lines = ["| loss | " + " | ".join(DATASETS) + " |", "|---" * (len(DATASETS) + 1) + "|"]
    for v in [v for v in LOSS_NAMES + tuple(VARIANTS) if v != reference]:
        cells, seen = [], False
        for d in DATASETS:
            pairs = [
                (r, by[(d, reference, r["seed"])])
                for r in records
                if r["dataset"] == d and r["variant"] == v and (d, reference, r["seed"]) in by
            ]
            if not pairs:
                cells.append("–")
                continue
            seen = True
            da = np.array([a["knn_accuracy"] - b["knn_accuracy"] for a, b in pairs])
            dr = np.array([a["ari"] - b["ari"] for a, b in pairs])
            cells.append(f"{da.mean():+.3f} ± {da.std():.3f} / {dr.mean():+.3f} ± {dr.std():.3f}")
        if seen:
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv) -> int:
    if argv == ["--table"]:
        records = _load()["records"]
        print(table(records) + "\n\nPaired differences from triplet (same split):\n\n" + paired(records))
        return 0
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        seeds = parse_seed_range(argv[2])
        variants = argv[1].split(",")
        for v in variants:
            settings(v, 2)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    jobs = [(name, v, seed) for name in argv[0].split(",") for v in variants for seed in seeds]
    fit_missing(jobs, lambda: {_key(r) for r in _load()["records"]}, fit_one, store)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
