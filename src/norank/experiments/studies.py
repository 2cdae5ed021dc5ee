"""The runs each study needs, as a flat list of `Job`s.

a. main: every dataset × method × protocol × seed (ABIDE also leave-site-out).
b. rank: CP/Tucker over R ∈ {5, 10, 20} beside norank over embedding_dim ∈ {16, 32, 64, 128}.
c. ablation: triplet only, + diversity, + uniformity, geometry terms, every term (does triplet-only
   collapse on Olivetti?).
d. mining: semihard vs hard vs batch_hard (convergence curves and final scores).
e. sample_efficiency: 10/25/50/100 % of the training split, norank vs the transformer baseline.
f. imbalance: per-class 1-NN recall of the smallest classes under each class_sampling.
g. collapse: norank trained until every class collapses (the regime the paper's in-sample numbers come
   from), in-sample and held-out, beside the defaults.
h. encoder: the default encoder="auto" beside the MLP and the convolutional encoder on image sets.
i. pca: ABIDE with its features projected onto 100 / 200 / 400 principal components first, on the
   70/30 splits and leave-site-out.
Studies use the held-out protocol only, except `collapse`, which also runs in-sample. Each study names the datasets it prefers; when none of them is
in the run, it uses the first dataset of the run and the report says so (`pca` is skipped instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from norank.experiments.methods import NORANK, norank_defaults

STUDIES = ("rank", "ablation", "mining", "sample_efficiency", "imbalance", "collapse", "encoder", "pca")
QUICK_STUDIES = ("ablation",)

RANKS = (5, 10, 20)
EMBEDDING_DIMS = (16, 32, 64, 128)
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
MINERS = ("semihard", "hard", "batch_hard")
CLASS_SAMPLINGS = ("uniform", "proportional", "sqrt")
N_SITES = 3  # ABIDE leave-site-out: the largest sites, each held out in turn

PREFERRED = {
    "rank": ("abide", "olivetti", "lfw"),
    "ablation": ("olivetti", "lfw"),
    "mining": ("lfw",),
    "sample_efficiency": ("lfw",),
    "imbalance": ("lfw",),
    "collapse": ("olivetti", "lfw", "abide", "galaxy", "crystal"),
    "encoder": ("galaxy-hard", "crystal-hard", "olivetti", "lfw"),
    "pca": ("abide",),
}

# Trained to collapse: Euclidean distances with a margin of 2, the sphere's diameter, so no triplet is
# ever satisfied and every class keeps shrinking to a point; no diversity term, because C collapsed
# classes span only C - 1 dimensions, which decorrelation fights; Adam with a cosine schedule to zero,
# so the last epochs settle instead of jittering. Measured in-sample, seed 0, 300 epochs: silhouette
# LFW 0.9994, Olivetti 0.9994, ABIDE 0.9968, galaxy 0.9999, crystal 0.9999 (docs/experiments.md).
# The MLP without dropout is fixed, as in the paper. The defaults share the distance, margin and optimiser
# and train 30 epochs (what that memorisation costs held out is the point of the study).
COLLAPSE_SETTINGS = {"distance": "euclidean", "margin": 2.0, "diversity_weight": 0.0, "optimizer": "adam",
                     "learning_rate": 1e-3, "schedule": "cosine", "epochs": 300, "encoder": "mlp",
                     "dropout": 0.0}
QUICK_COLLAPSE_EPOCHS = 60
ENCODERS = ("auto", "mlp", "conv")
PCA_COMPONENTS = (100, 200, 400)
QUICK_PREFERRED = {"rank": ("olivetti",), "ablation": ("olivetti",)}
# Studies that only make sense on their preferred datasets, so they never fall back to another one.
NO_FALLBACK = ("pca",)


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


def check_studies(names) -> list[str]:
    if names is None:
        return list(STUDIES)
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ValueError(f"unknown study(ies) {unknown}; use some of {list(STUDIES)} or 'none'.")
    return names


def study_datasets(study: str, datasets: list[str], quick: bool = False) -> list[str]:
    preferred = (QUICK_PREFERRED if quick else {}).get(study, PREFERRED[study])
    chosen = [d for d in preferred if d in datasets]
    return chosen or ([] if study in NO_FALLBACK else datasets[:1])


def main_jobs(datasets, methods, seeds, protocols, sites) -> list[Job]:
    """`sites` maps a dataset to its leave-site-out site names (ABIDE)."""
    jobs = []
    for d in datasets:
        for m in methods:
            if "heldout" in protocols:
                jobs += [Job(d, m, "heldout", s) for s in seeds]
                jobs += [Job(d, m, "heldout", seeds[0], split=f"site:{site}") for site in sites.get(d, [])]
            if "insample" in protocols:
                jobs.append(Job(d, m, "insample", seeds[0], split="all"))
    return jobs


def _norank_variant(d, seed, study, variant, overrides, fraction=1.0):
    return Job(d, f"{NORANK}_{variant}", "heldout", seed, study=study, variant=variant, overrides=overrides,
               train_fraction=fraction)


def rank_jobs(datasets, seeds, methods_available):
    jobs = []
    for d in datasets:
        for s in seeds:
            for family in ("cp", "tucker"):
                for r in RANKS:
                    name = f"{family}_r{r}"
                    if name in methods_available:
                        jobs.append(Job(d, name, "heldout", s, study="rank", variant=f"R={r}"))
            for m in EMBEDDING_DIMS:
                jobs.append(_norank_variant(d, s, "rank", f"dim{m}", {"embedding_dim": m}))
    return jobs


def ablation_variants() -> dict[str, dict]:
    """Loss-term weights per variant. Terms that are off by default get weight 0.1 when switched on."""
    defaults = norank_defaults()
    on = {k: (defaults[k] if defaults[k] > 0 else 0.1)
          for k in ("diversity_weight", "uniformity_weight", "local_weight", "global_weight")}
    off = dict.fromkeys(on, 0.0)
    return {
        "triplet": dict(off),
        "diversity": {**off, "diversity_weight": on["diversity_weight"]},
        "uniformity": {**off, "diversity_weight": on["diversity_weight"], "uniformity_weight": on["uniformity_weight"]},
        "geometry": {**off, "local_weight": on["local_weight"], "global_weight": on["global_weight"]},
        "full": dict(on),
    }


ABLATION_LABELS = {
    "triplet": "triplet only",
    "diversity": "triplet + diversity",
    "uniformity": "triplet + diversity + uniformity",
    "geometry": "triplet + local + global",
    "full": "every term",
}


def ablation_jobs(datasets, seeds):
    return [_norank_variant(d, s, "ablation", v, w) for d in datasets for s in seeds
            for v, w in ablation_variants().items()]


def mining_jobs(datasets, seeds):
    return [_norank_variant(d, s, "mining", m, {"mining": m}) for d in datasets for s in seeds for m in MINERS]


def efficiency_jobs(datasets, seeds, with_transformer: bool):
    jobs = []
    for d in datasets:
        for s in seeds:
            for f in FRACTIONS:
                pct = f"{int(round(100 * f))}pct"
                jobs.append(_norank_variant(d, s, "sample_efficiency", pct, {}, f))
                if with_transformer:
                    jobs.append(Job(d, "transformer", "heldout", s, study="sample_efficiency", variant=pct,
                                    train_fraction=f))
    return jobs


def imbalance_jobs(datasets, seeds):
    return [_norank_variant(d, s, "imbalance", c, {"class_sampling": c}) for d in datasets for s in seeds
            for c in CLASS_SAMPLINGS]


def collapse_jobs(datasets, seeds, protocols, quick=False):
    """The defaults (reusing the main runs) and the collapse settings, in each protocol asked for."""
    collapse = dict(COLLAPSE_SETTINGS)
    if quick:
        collapse["epochs"] = QUICK_COLLAPSE_EPOCHS
    jobs = []
    for d in datasets:
        for variant, overrides in (("defaults", {}), ("collapse", collapse)):
            name = f"{NORANK}_{variant}"
            if "insample" in protocols:
                jobs.append(Job(d, name, "insample", seeds[0], split="all", study="collapse", variant=variant,
                                overrides=overrides))
            if "heldout" in protocols:
                jobs += [Job(d, name, "heldout", s, study="collapse", variant=variant, overrides=overrides)
                         for s in seeds]
    return jobs


def encoder_jobs(datasets, seeds):
    """Image datasets only: the conv encoder needs (n, H, W) samples. "auto" is the default, so its
    variant reuses the main run."""
    return [_norank_variant(d, s, "encoder", e, {"encoder": e}) for d in datasets for s in seeds for e in ENCODERS]


def pca_jobs(datasets, seeds, sites):
    """Every features (the main configuration) and pca<k> variant on the 70/30 splits and, where the
    dataset has sites, on each leave-site-out split, for every study seed. Wide data only (ABIDE): the
    component counts need more features and training samples than the other sets have."""
    variants = {"features": {}, **{f"pca{k}": {"pca_components": k} for k in PCA_COMPONENTS}}
    jobs = []
    for d in datasets:
        for s in seeds:
            for split in ("stratified", *(f"site:{site}" for site in sites.get(d, []))):
                jobs += [Job(d, f"{NORANK}_{v}", "heldout", s, split=split, study="pca", variant=v, overrides=o)
                         for v, o in variants.items()]
    return jobs


def study_jobs(study, datasets, seeds, methods_available, quick=False, protocols=("heldout",), sites=None) -> list[Job]:
    ds = study_datasets(study, datasets, quick)
    if study == "collapse":
        return collapse_jobs(ds, seeds, protocols, quick)
    if "heldout" not in protocols:
        return []
    if study == "encoder":
        return encoder_jobs([d for d in ds if d != "abide"], seeds)
    if study == "rank":
        return rank_jobs(ds, seeds, methods_available)
    if study == "ablation":
        return ablation_jobs(ds, seeds)
    if study == "mining":
        return mining_jobs(ds, seeds)
    if study == "sample_efficiency":
        return efficiency_jobs(ds, seeds, "transformer" in methods_available)
    if study == "imbalance":
        return imbalance_jobs(ds, seeds)
    if study == "pca":
        return pca_jobs(ds, seeds, sites or {})
    raise ValueError(f"unknown study {study!r}; use one of {STUDIES}.")
