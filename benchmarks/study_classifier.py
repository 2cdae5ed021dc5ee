"""Held-out accuracy of NoRankClassifier beside a logistic regression on the standardised raw inputs (C by
inner 3-fold CV) and norank's LDA baseline, on stratified 70/30 splits of report seeds (a report: no
choice is made from it; the head was chosen on tuning seeds 100-102, docs/defaults.md "Classifier").

    OMP_NUM_THREADS=1 python -m benchmarks.study_classifier olivetti,digits,lfw,abide 1000,1001,1002
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

OUT = Path(__file__).with_name("study_classifier.json")


def scores(name: str, seed: int) -> dict:
    from norank import NoRankClassifier
    from norank.baselines.linear import LDABaseline
    from norank.datasets import load
    from norank.experiments.methods import norank_settings
    from norank.preprocessing import TensorPreprocessor
    from norank.splits import holdout_split

    ds = load(name)
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    tr, te = holdout_split(y, 0.3, seed)
    rows = TensorPreprocessor(normalization="none").fit(X[tr])
    F_tr, F_te = rows.transform(X[tr]).astype(np.float64), rows.transform(X[te]).astype(np.float64)
    clf = NoRankClassifier(**norank_settings(name), random_state=seed).fit(X[tr], y[tr])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = [1e-3, 1e-2, 1e-1, 1, 10]
        logreg = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=cs, cv=3, max_iter=2000)).fit(F_tr, y[tr])
    lda = LDABaseline(random_state=seed).fit(X[tr], y[tr])
    lda_pred = lda.classes_[lda.pipeline_.predict(lda._rows(X[te]))]
    return {
        "norank_classifier": float(np.mean(clf.predict(X[te]) == y[te])),
        "logreg_raw": float(np.mean(logreg.predict(F_te) == y[te])),
        "lda": float(np.mean(lda_pred == y[te])),
    }


def main(argv: list[str]) -> int:
    names, seeds = argv[0].split(","), [int(s) for s in argv[1].split(",")]
    out = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in names:
        for seed in seeds:
            out[f"{name}/{seed}"] = scores(name, seed)
            OUT.write_text(json.dumps(out, indent=1) + "\n")
            print(name, seed, out[f"{name}/{seed}"], flush=True)
    for name in names:
        runs = [out[f"{name}/{s}"] for s in seeds if f"{name}/{s}" in out]
        cells = {
            k: f"{np.mean([r[k] for r in runs]):.3f} ± {np.std([r[k] for r in runs], ddof=1):.3f}" for k in runs[0]
        }
        print(name, cells)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
