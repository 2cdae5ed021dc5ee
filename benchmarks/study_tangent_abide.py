"""Tangent space on ABIDE (docs/defaults.md, "Tangent space (connectomes)"): one JSON line per fit.

Stratified 70/30 splits (`norank.splits.holdout_split`, the protocol's splitter) on tuning seeds only
(report seeds are refused).
A configuration is `baseline:NAME:METRIC` (tangent_logistic / tangent_svc, scored on their own predictions)
or `norank:NORMALIZATION[:METRIC]` (NoRankEmbedder with ABIDE's settings, that normalization and the
keywords of --params, scored by the experiments' logistic-regression probe on its embeddings).

    OMP_NUM_THREADS=1 python benchmarks/study_tangent_abide.py --seeds 100,101,102,103,104 \
        baseline:tangent_logistic:riemann norank:sample norank:tangent:riemann
"""

from __future__ import annotations

import argparse
import json
import time
import warnings


def run_baseline(ds, name, metric, seed, tr, te) -> dict:
    from norank.baselines import make_baseline
    from norank.experiments.classify import own_scores

    t = time.time()
    settings = {"metric": metric} if metric else {}
    model = make_baseline(name, random_state=seed, **settings).fit(ds.X[tr], ds.y[tr])
    fit = time.time() - t
    return dict(**own_scores(model, ds.X[te], ds.y[te]), C=model.C_, fit_seconds=round(fit, 1))


def run_norank(ds, normalization, metric, seed, tr, te, extra) -> dict:
    from norank import NoRankEmbedder
    from norank.experiments.classify import probe_scores
    from norank.experiments.methods import norank_settings
    from norank.preprocessing import TensorPreprocessor

    if metric:  # NoRankEmbedder has no metric keyword: set the preprocessor's default for this run
        defaults = list(TensorPreprocessor.__init__.__defaults__)
        defaults[-1] = metric
        TensorPreprocessor.__init__.__defaults__ = tuple(defaults)
    params = {**norank_settings("abide"), "normalization": normalization, **extra}
    t = time.time()
    est = NoRankEmbedder(**params, random_state=seed).fit(ds.X[tr], ds.y[tr])
    fit = time.time() - t
    scores = probe_scores(est.transform(ds.X[tr]), ds.y[tr], est.transform(ds.X[te]), ds.y[te], seed)
    return dict(**scores, params=params, fit_seconds=round(fit, 1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="100,101,102,103,104")
    parser.add_argument("--params", default="{}", help="JSON of extra NoRankEmbedder keywords for norank runs")
    parser.add_argument("configs", nargs="+")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    import torch

    from norank.datasets import load
    from norank.experiments.seeds import refuse_report_seeds
    from norank.splits import holdout_split

    refuse_report_seeds(seeds, "benchmarks/study_tangent_abide.py")

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)  # pyRiemann's renamed modules
    ds = load("abide")
    for config in args.configs:
        kind, _, rest = config.partition(":")
        first, _, metric = rest.partition(":")
        for seed in seeds:
            tr, te = holdout_split(ds.y, 0.3, seed)
            if kind == "baseline":
                record = run_baseline(ds, first, metric or None, seed, tr, te)
            else:
                record = run_norank(ds, first, metric or None, seed, tr, te, json.loads(args.params))
            print(json.dumps({"config": config, "seed": seed, **record}), flush=True)


if __name__ == "__main__":
    main()
