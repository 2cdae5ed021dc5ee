"""Held-out score of one NoRankEmbedder setting: how the defaults were chosen (docs/defaults.md).

    python -m benchmarks.tune_defaults olivetti,lfw,digits '{"margin": 0.5}' 3

prints, per dataset, the mean over seeds of 1-NN accuracy (classifier fitted on the training embeddings,
scored on the test ones) and k-means ARI on the test embeddings, for stratified 70/30 splits.
"""
import json
import sys
import time

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from norank import NoRankEmbedder

def data(name):
    from norank.datasets import load

    ds = load(name)
    return ds.X, ds.y

def score(Ztr, ytr, Zte, yte, seed):
    acc = KNeighborsClassifier(1).fit(Ztr, ytr).score(Zte, yte)
    lab = KMeans(len(np.unique(ytr)), n_init=10, random_state=seed).fit_predict(Zte)
    return acc, adjusted_rand_score(yte, lab)

def run(name, params, seeds=(0,)):
    """Mean (1-NN accuracy, ARI, fit seconds) over seeds; params may name a baseline: {"baseline": "lda"},
    with further keywords for it ({"baseline": "transformer", "epochs": 50})."""
    X, y = data(name)
    out = []
    for s in seeds:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=s)
        if "baseline" in params:
            from norank.baselines import make_baseline

            rest = {k: v for k, v in params.items() if k != "baseline"}
            est = make_baseline(params["baseline"], random_state=s, **rest)
        else:
            est = NoRankEmbedder(random_state=s, **params)
        t = time.time()
        est.fit(Xtr, ytr)
        ft = time.time() - t
        acc, ari = score(est.transform(Xtr), ytr, est.transform(Xte), yte, s)
        out.append((acc, ari, ft))
    return np.array(out).mean(0)


if __name__ == "__main__":
    params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    seeds = tuple(range(int(sys.argv[3]))) if len(sys.argv) > 3 else (0,)
    for name in sys.argv[1].split(","):
        acc, ari, ft = run(name, params, seeds)
        print(f"{name:12s} 1nn={acc:.3f} ari={ari:.3f} fit={ft:.1f}s {json.dumps(params)}", flush=True)
