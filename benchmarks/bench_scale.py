"""Scale: out-of-core training on a 1M × 784 memory map, and the proxy-anchor loss with 10k classes.

- out-of-core: `fit` on a memory-mapped .npy of 1M samples (3.1 GB on disk) must keep peak RSS ≤ 2 GB.
- many classes: 10k synthetic classes; time per epoch and held-out precision@1 of `loss="proxy_anchor"`
  beside the default triplet loss.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from benchmarks.common import figure, peak_rss


def _write_memmap(path: str, n: int, dim: int, n_classes: int) -> None:
    """Class-structured synthetic data written in blocks, never held in memory at once."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(n_classes, dim)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    y = np.arange(n) % n_classes
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        X[start:stop] = centers[y[start:stop]] + rng.normal(size=(stop - start, dim)).astype(np.float32)
    X.flush()
    del X
    np.save(path + ".labels.npy", y)


def fit_out_of_core(path: str, epochs: int) -> None:
    from norank import NoRankEmbedder

    X = np.load(path, mmap_mode="r")
    y = np.load(path + ".labels.npy")
    NoRankEmbedder(hidden_layer_sizes=(256,), embedding_dim=32, epochs=epochs, batch_size=512, random_state=0).fit(X, y)


def _many_classes(n_classes: int, per_class: int, dim: int = 64):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(n_classes, dim)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), per_class)
    X = centers[y] + 0.6 * rng.normal(size=(len(y), dim)).astype(np.float32)
    test = np.arange(len(y)) % per_class == 0  # one sample per class held out
    return X[~test], y[~test], X[test], y[test]


def _precision_at_1(Z_train, y_train, Z_test, y_test) -> float:
    from norank.neighbors import kneighbors

    _, idx = kneighbors(Z_test, Z_train, 1)
    return float(np.mean(y_train[idx[:, 0]] == y_test))


def _proxy_vs_triplet(n_classes: int, epochs: int) -> list[dict]:
    from norank import NoRankEmbedder

    Xtr, ytr, Xte, yte = _many_classes(n_classes, per_class=6)
    out = {}
    for loss in ("proxy_anchor", "triplet"):
        est = NoRankEmbedder(
            loss=loss,
            epochs=epochs,
            hidden_layer_sizes=(256,),
            batch_size=256,
            random_state=0,
            **({"optimizer": "adam", "learning_rate": 1e-3} if loss == "proxy_anchor" else {}),
        )
        start = time.perf_counter()
        est.fit(Xtr, ytr)
        seconds = (time.perf_counter() - start) / epochs
        out[loss] = (seconds, _precision_at_1(est.transform(Xtr), ytr, est.transform(Xte), yte))
    (pt, pp), (tt, tp) = out["proxy_anchor"], out["triplet"]
    return [
        figure(f"{n_classes} classes: proxy-anchor time per epoch", pt, "s", "triplet (semihard)", tt),
        figure(
            f"{n_classes} classes: proxy-anchor held-out precision@1",
            pp,
            "",
            "triplet (semihard)",
            tp,
            higher_is_better=True,
        ),
    ]


def run(quick: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    figures = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("NORANK_BENCH_TMP")) as tmp:
        path = os.path.join(tmp, "X.npy")
        _write_memmap(path, n, 784, n_classes=1000)
        start = time.perf_counter()
        mem = peak_rss(fit_out_of_core, path, 1)
        seconds = time.perf_counter() - start
        figures.append(
            figure(
                f"out-of-core fit, {n:,} x 784 memmap (1 epoch): peak RSS",
                mem["peak_bytes"] / 2**30,
                "GiB",
                target=2.0,
                note=f"file {n * 784 * 4 / 2**30:.2f} GiB",
            )
        )
        figures.append(figure(f"out-of-core fit, {n:,} x 784 memmap (1 epoch): time", seconds, "s"))
    figures += _proxy_vs_triplet(1000 if quick else 10_000, epochs=2 if quick else 5)
    return figures
