"""Held-out score of one NoRankEmbedder setting on tuning seeds: how the defaults are chosen (docs/defaults.md).

    python -m benchmarks.tune_defaults olivetti,lfw,digits '{"margin": 0.5}' 3          # seeds 0, 1, 2
    python -m benchmarks.tune_defaults lfw '{"loss": "supcon"}' 100-104                   # seeds 100..104
    python -m benchmarks.tune_defaults abide '{"baseline": "tangent_logistic"}' 100,101   # explicit seeds

prints, per dataset, the mean over seeds of 1-NN accuracy (classifier fitted on the training embeddings,
scored on the test ones) and k-means ARI on the test embeddings, on the protocol's stratified 70/30
splits (`norank.splits.holdout_split`, the same splits as `norank reproduce`). Only tuning seeds
(0-999) are accepted: the report seeds (`norank.experiments.seeds.REPORT_SEEDS`) are refused, so no
choice ever sees the splits docs/results.md reports.
"""

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import KNeighborsClassifier

from norank import NoRankEmbedder
from norank.experiments.seeds import TUNING_SEEDS, refuse_report_seeds
from norank.splits import holdout_split

USAGE = "usage: python -m benchmarks.tune_defaults DATASETS [SETTINGS_JSON] [SEEDS: count | a-b | s1,s2,...]"


def data(name):
    from norank.datasets import load

    ds = load(name)
    return ds.X, ds.y


def score(Ztr, ytr, Zte, yte, seed):
    acc = KNeighborsClassifier(1).fit(Ztr, ytr).score(Zte, yte)
    lab = KMeans(len(np.unique(ytr)), n_init=10, random_state=seed).fit_predict(Zte)
    return acc, adjusted_rand_score(yte, lab)


def parse_seeds(text: str) -> tuple:
    """'3' → (0, 1, 2); '100-104' → (100, ..., 104); '100,101' → (100, 101); report seeds refused."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            seeds = tuple(range(low, high + 1))
        elif "," in text:
            seeds = tuple(int(v) for v in text.split(","))
        else:
            seeds = tuple(range(int(text)))
    except ValueError:
        raise ValueError(f"seeds {text!r}: pass a count (3), a range (100-104) or a list (100,101).") from None
    check_seeds(seeds)
    return seeds


def parse_seed_range(text: str) -> tuple:
    """parse_seeds without the count form: the studies store records per seed, and a bare number such as
    '100' would otherwise mean seeds 0-99 (seeds that earlier choices used)."""
    if "-" not in text and "," not in text:
        raise ValueError(f"seeds {text!r}: pass a range (100-102) or a list (100,101), never a count.")
    return parse_seeds(text)


def check_seeds(seeds) -> None:
    refuse_report_seeds(seeds, "benchmarks.tune_defaults")
    outside = [s for s in seeds if s not in TUNING_SEEDS]
    if not seeds or outside:
        raise ValueError(f"seeds {list(seeds)}: pass at least one tuning seed, each in 0-{TUNING_SEEDS[-1]}.")


def run(name, params, seeds=(0,)):
    """Mean (1-NN accuracy, ARI, fit seconds) over tuning seeds; params may name a baseline:
    {"baseline": "lda"}, with further keywords for it ({"baseline": "transformer", "epochs": 50})."""
    check_seeds(seeds)
    X, y = data(name)
    out = []
    for s in seeds:
        # scikit-learn's drawn row order, as train_test_split gave it: docs/defaults.md's numbers and every
        # earlier tuning run stay reproducible (norank reproduce trains on the same rows, sorted).
        train, test = holdout_split(y, 0.3, s, shuffled=True)
        if "baseline" in params:
            from norank.baselines import make_baseline

            rest = {k: v for k, v in params.items() if k != "baseline"}
            est = make_baseline(params["baseline"], random_state=s, **rest)
        else:
            est = NoRankEmbedder(random_state=s, **params)
        t = time.time()
        est.fit(X[train], y[train])
        ft = time.time() - t
        acc, ari = score(est.transform(X[train]), y[train], est.transform(X[test]), y[test], s)
        out.append((acc, ari, ft))
    return np.array(out).mean(0)


def main(argv) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        params = json.loads(argv[1]) if len(argv) > 1 else {}
        seeds = parse_seeds(argv[2]) if len(argv) > 2 else (0,)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in argv[0].split(","):
        acc, ari, ft = run(name, params, seeds)
        print(f"{name:12s} 1nn={acc:.3f} ari={ari:.3f} fit={ft:.1f}s {json.dumps(params)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
