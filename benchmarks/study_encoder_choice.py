"""Does `encoder="auto"`'s up-front rule pick the encoder that wins held out? (docs/defaults.md, "Encoder")

    OMP_NUM_THREADS=1 NORANK_DATA_DIR=/work/shared/data python -m benchmarks.study_encoder_choice
    python -m benchmarks.study_encoder_choice --datasets olivetti,galaxy-hard --seeds 100,101 --fresh

Ground truth: per tuning seed (100-104; never the report seeds 0-4 or 1000+), a stratified 70/30 split
(`norank.splits.holdout_split`), `NoRankEmbedder(encoder="mlp")` and `(encoder="conv")` with every other
setting at its default, fitted on the 70 % and scored by 1-NN accuracy on the 30 %. The rule
(`norank.selection.select_encoder`) sees the 70 % only. Datasets: the six image sets of norank.datasets
and three built here offline that no choice was tuned on (sklearn's digits upsampled to 16x16, the same
digits at random places on a 32x32 canvas, Olivetti faces randomly rotated and shifted).

Results go to benchmarks/study_encoder_choice.json. Fits already stored there (same dataset, seed,
encoder) are reused unless --fresh; the rule is always rerun (it costs milliseconds).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "study_encoder_choice.json"
PACKAGED = ("olivetti", "lfw", "galaxy", "crystal", "galaxy-hard", "crystal-hard")
BUILT = ("digits-16", "digits-shifted", "olivetti-moved")
HELD_OUT = ("lfw-moved", "photo-textures")  # built after the rule was fixed, to check it
TUNING_SEEDS = (100, 101, 102, 103, 104)
ENCODERS = ("mlp", "conv")


# -- data ------------------------------------------------------------------------------------------
def _digits_16():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return np.kron(X.reshape(-1, 8, 8), np.ones((1, 2, 2))).astype(np.float32), y


def _digits_shifted():
    """16x16 digits pasted at a uniformly random place of a blank 32x32 canvas (fixed draw)."""
    X, y = _digits_16()
    rng = np.random.default_rng(7)
    out = np.zeros((len(X), 32, 32), np.float32)
    for i, (r, c) in enumerate(rng.integers(0, 17, size=(len(X), 2))):
        out[i, r : r + 16, c : c + 16] = X[i]
    return out, y


def _olivetti_moved():
    """Olivetti faces rotated by up to 15 degrees either way and shifted by up to 6 pixels (fixed draw)."""
    from scipy import ndimage

    from norank.datasets import load

    ds = load("olivetti")
    rng = np.random.default_rng(7)
    out = np.empty_like(ds.X)
    for i, image in enumerate(ds.X):
        turned = ndimage.rotate(image, rng.uniform(-15, 15), reshape=False, order=1, mode="constant")
        out[i] = ndimage.shift(turned, rng.uniform(-6, 6, size=2), order=1, mode="constant")
    return out, ds.y


def _lfw_moved():
    """LFW faces rotated by up to 15 degrees either way and shifted by up to 4 pixels (fixed draw)."""
    from scipy import ndimage

    from norank.datasets import load

    ds = load("lfw")
    rng = np.random.default_rng(7)
    out = np.empty_like(ds.X)
    for i, image in enumerate(ds.X):
        turned = ndimage.rotate(image, rng.uniform(-15, 15), reshape=False, order=1, mode="nearest")
        out[i] = ndimage.shift(turned, rng.uniform(-4, 4, size=2), order=1, mode="nearest")
    return out, ds.y


# Regions (rows, columns) of scikit-learn's two bundled photographs, one texture each: a class per region.
PHOTO_REGIONS = {
    "sky": (0, (0, 140, 400, 640)),
    "water": (0, (235, 290, 400, 540)),
    "trees": (0, (320, 427, 0, 180)),
    "pagoda": (0, (140, 330, 130, 310)),
    "petals": (1, (120, 320, 200, 400)),
    "leaves": (1, (0, 427, 0, 140)),
}


def _photo_textures(n_per_class: int = 80, side: int = 32):
    """Grey 32x32 crops at random places of six regions of china.jpg and flower.jpg, each turned by a
    random quarter turn and maybe mirrored (fixed draw): texture classes with no layout."""
    from sklearn.datasets import load_sample_images

    photos = [im.mean(axis=2) / 255.0 for im in load_sample_images().images]
    rng = np.random.default_rng(7)
    X, y = [], []
    for label, (photo, (r0, r1, c0, c1)) in enumerate(PHOTO_REGIONS.values()):
        for _ in range(n_per_class):
            r, c = rng.integers(r0, r1 - side + 1), rng.integers(c0, c1 - side + 1)
            crop = np.rot90(photos[photo][r : r + side, c : c + side], k=int(rng.integers(4)))
            X.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
            y.append(label)
    return np.array(X, np.float32), np.array(y)


def load_images(name: str):
    """(X, y) of a packaged dataset or of one built here."""
    built = {
        "digits-16": _digits_16,
        "digits-shifted": _digits_shifted,
        "olivetti-moved": _olivetti_moved,
        "lfw-moved": _lfw_moved,
        "photo-textures": _photo_textures,
    }
    if name in built:
        return built[name]()
    from norank.datasets import load

    ds = load(name)
    return np.asarray(ds.X, np.float32), np.asarray(ds.y)


# -- ground truth and rule -------------------------------------------------------------------------
def fit_score(X, y, seed: int, encoder: str) -> dict:
    """Held-out 1-NN accuracy and fit seconds of NoRankEmbedder(encoder=encoder) on one tuning split."""
    from norank import NoRankEmbedder
    from norank.metrics import knn_accuracy
    from norank.splits import holdout_split

    train, test = holdout_split(y, 0.3, seed)
    wall, cpu = time.perf_counter(), time.process_time()
    est = NoRankEmbedder(encoder=encoder, random_state=seed).fit(X[train], y[train])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    acc = knn_accuracy(est.transform(X[train]), y[train], est.transform(X[test]), y[test])
    return {"knn_accuracy": acc, "fit_seconds": wall, "fit_cpu_seconds": cpu, "revision": _revision()}


def rule(X, y, seed: int) -> dict:
    """The rule on the training part of one tuning split: its pick, its scores (with the standard error and
    the number of scored samples) and its cost, median of 3 calls on the wall and on the CPU clock."""
    from benchmarks.common import time_call
    from norank.selection import rule_scores, rule_subsample, select_encoder
    from norank.splits import holdout_split

    train, test = holdout_split(y, 0.3, seed)
    X_train, codes = X[train], np.unique(y[train], return_inverse=True)[1]
    kind, _ = select_encoder(X_train, codes, symmetric="auto", pca_components=None, random_state=seed)
    keep = rule_subsample(codes, seed)
    seconds = time_call(
        lambda: select_encoder(X_train, codes, symmetric="auto", pca_components=None, random_state=seed),
        repeats=3,
        warmup=0,
    )
    return {
        "pick": kind,
        "info": rule_scores(X_train[keep], codes[keep]),
        "n_test": len(test),
        "rule_seconds": seconds["wall"],
        "rule_cpu_seconds": seconds["cpu"],
    }


def warm_up() -> None:
    """One tiny fit per encoder, so that no measured fit pays the process's one-time start-up costs."""
    from norank import NoRankEmbedder

    X, y = np.random.default_rng(0).random((40, 16, 16), dtype=np.float32), np.repeat(np.arange(4), 10)
    for enc in ENCODERS:
        NoRankEmbedder(encoder=enc, epochs=1, random_state=0).fit(X, y)


def cost(X, y, seed: int, kind: str) -> dict:
    """CPU seconds of the rule (median of 3) and of one default fit of the encoder it chose, same split
    (after warm_up)."""
    r = rule(X, y, seed)
    fit = fit_score(X, y, seed, kind)
    return {"rule_cpu_seconds": r["rule_cpu_seconds"], "fit_cpu_seconds": fit["fit_cpu_seconds"]}


# -- summary ---------------------------------------------------------------------------------------
def _verdict(diffs, n_tests, accs) -> tuple[list, str]:
    """Winners: per seed, "conv" or "mlp" where the held-out gap exceeds two standard errors of the
    difference of two accuracies on that test part, else "tie"; over the seeds, the same for the mean gap,
    against the larger of its standard error across seeds and the binomial one of a mean of the seeds."""
    per_seed, binomial = [], []
    for d, n, (m, c) in zip(diffs, n_tests, accs, strict=True):
        se = float(np.sqrt((m * (1 - m) + c * (1 - c)) / n))
        binomial.append(se)
        per_seed.append("tie" if abs(d) <= 2 * se else ("conv" if d > 0 else "mlp"))
    k, mean = len(diffs), float(np.mean(diffs))
    spread = float(np.std(diffs, ddof=1) / np.sqrt(k)) if k > 1 else 0.0
    noise = max(spread, float(np.sqrt(np.mean(np.square(binomial)) / k)))
    overall = "tie" if abs(mean) <= 2 * noise else ("conv" if mean > 0 else "mlp")
    return per_seed, overall


def summary(fits: list, rules: list, costs: dict) -> list:
    """One row per dataset: held-out 1-NN per encoder, the winners, the rule's scores and picks, and whether
    the picks agree with every clear winner (each clear seed, and the majority pick with a clear overall
    winner)."""
    acc = {(f["dataset"], f["seed"], f["encoder"]): f["knn_accuracy"] for f in fits}
    rows = []
    for name in dict.fromkeys(r["dataset"] for r in rules):
        mine = [r for r in rules if r["dataset"] == name]
        pairs = [(acc[name, r["seed"], "mlp"], acc[name, r["seed"], "conv"]) for r in mine]
        diffs = [c - m for m, c in pairs]
        per_seed, overall = _verdict(diffs, [r["n_test"] for r in mine], pairs)
        picks = [r["pick"] for r in mine]
        rows.append(
            {
                "dataset": name,
                "seeds": [r["seed"] for r in mine],
                "mlp_knn": float(np.mean([m for m, _ in pairs])),
                "conv_knn": float(np.mean([c for _, c in pairs])),
                "conv_minus_mlp": [round(d, 4) for d in diffs],
                "winner_per_seed": per_seed,
                "winner": overall,
                "rule_pixel_1nn": float(np.mean([r["info"]["pixel_1nn"] for r in mine])),
                "rule_local_1nn": float(np.mean([r["info"]["local_1nn"] for r in mine])),
                "rule_gain": [round(r["info"]["local_1nn"] - r["info"]["pixel_1nn"], 4) for r in mine],
                "rule_standard_error": [round(r["info"]["standard_error"], 4) for r in mine],
                "picks": picks,
                "agrees_where_clear": all(p == w for p, w in zip(picks, per_seed, strict=True) if w != "tie")
                and (overall == "tie" or max(set(picks), key=picks.count) == overall),
                **(
                    {
                        "rule_cpu_seconds": costs[name]["rule_cpu_seconds"],
                        "fit_cpu_seconds": costs[name]["fit_cpu_seconds"],
                        "rule_share_of_fit": costs[name]["rule_cpu_seconds"] / costs[name]["fit_cpu_seconds"],
                    }
                    if name in costs
                    else {}
                ),
            }
        )
    return rows


def _save(payload: dict) -> None:
    OUT.write_text(json.dumps(payload, indent=1) + "\n")


def _stored(fresh: bool) -> dict:
    if fresh or not OUT.exists():
        return {}
    old = json.loads(OUT.read_text())
    return {(r["dataset"], r["seed"], r["encoder"]): r for r in old.get("fits", [])}


def _revision() -> str | None:
    """The checkout's commit (uncommitted edits, if any, not included)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _meta(argv) -> dict:
    import torch

    return {
        "command": "python -m benchmarks.study_encoder_choice " + " ".join(argv),
        "revision": _revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _fit_pair(stored: dict, X, y, name: str, seed: int, no_fits: bool) -> list | None:
    """Both encoders' fit records for one split, from the store or fitted now (and stored at once)."""
    missing = [e for e in ENCODERS if (name, seed, e) not in stored]
    if missing and no_fits:
        return None
    for enc in missing:
        stored[name, seed, enc] = {"dataset": name, "seed": seed, "encoder": enc, **fit_score(X, y, seed, enc)}
        _save({"fits": list(stored.values())})
    return [stored[name, seed, e] for e in ENCODERS]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(PACKAGED + BUILT + HELD_OUT))
    parser.add_argument(
        "--seeds", default=None, help="comma-separated tuning seeds (default: 100-104, 100-102 for the held-out checks)"
    )
    parser.add_argument("--fresh", action="store_true", help="refit every encoder instead of reusing stored fits")
    parser.add_argument(
        "--no-fits",
        action="store_true",
        help="no new fits: the rule on the stored splits only, costs kept from the last run",
    )
    args = parser.parse_args(argv)
    seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    if seeds is not None and any(s < 100 or s >= 1000 for s in seeds):
        parser.error("use tuning seeds 100-999 only: seeds 0-4 and 1000+ are report seeds")
    stored, fits, rules, costs = _stored(args.fresh), [], [], {}
    if args.no_fits and OUT.exists():  # keep the costs measured with the last fits
        costs = json.loads(OUT.read_text()).get("costs", {})
    else:
        warm_up()
    for name in args.datasets.split(","):
        X, y = load_images(name)
        for seed in seeds or (TUNING_SEEDS[:3] if name in HELD_OUT else TUNING_SEEDS):
            pair = _fit_pair(stored, X, y, name, seed, args.no_fits)
            if pair is not None:
                fits += pair
                rules.append({"dataset": name, "seed": seed, **rule(X, y, seed)})
                print(name, seed, [round(f["knn_accuracy"], 3) for f in pair], rules[-1]["pick"], flush=True)
        mine = [r for r in rules if r["dataset"] == name]
        if mine and not args.no_fits:  # one more fit, measured after warm_up
            costs[name] = cost(X, y, mine[0]["seed"], mine[0]["pick"])
    rows = summary(fits, rules, costs)
    _save({"meta": _meta(argv or []), "summary": rows, "costs": costs, "rules": rules, "fits": list(stored.values())})
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k not in ("seeds",)}))


if __name__ == "__main__":
    main()
