"""Training step efficiency, transform throughput and the end-to-end Olivetti fit.

- step: one whole training step (sampling, forward, mining, every default loss term, backward, the
  default optimiser Adam) of a 4096→512→256→64 MLP at B=512, in FLOP/s as a share of the machine's fp32 GEMM
  rate (torch.mm, same run).
- transform: samples/s of `transform` on 784-d input, preprocessing included, beside a bare forward.
- olivetti: the default fit (time and peak memory) beside supervised UMAP and PCA→NCA.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.common import figure, median_time, peak_rss


def _gemm_flops(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, 4096), torch.randn(4096, 512)
    seconds = median_time(lambda: torch.mm(a, b), repeats=repeats)
    return 2.0 * n * 4096 * 512 / seconds


def _step_flops(batch: int, steps: int) -> tuple[float, float]:
    """(FLOP/s of whole training steps through norank.training.fit_encoder, FLOP/s of a bare
    forward/backward/Adam step of the same MLP)."""
    from norank.encoders import build_encoder
    from norank.losses import TripletLoss
    from norank.objective import Objective
    from norank.sampling import ClassBalancedBatchSampler
    from norank.training import adam, fit_encoder

    sizes = (4096, 512, 256, 64)
    n_params_flops = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    flops_per_step = 6.0 * batch * n_params_flops  # forward 2·B·W, backward 4·B·W
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(batch // 4), 16)
    X = rng.normal(size=(len(labels), 4096)).astype(np.float32)
    encoder = build_encoder("mlp", 4096, (4096,), sizes[1:-1], sizes[-1], 0.0, False)
    sampler = ClassBalancedBatchSampler(labels, batch // 4, 4, n_batches=steps, seed=0)

    def full_steps():
        fit_encoder(X, labels, encoder=encoder, objective=Objective(TripletLoss()), sampler=sampler, epochs=1)

    model = encoder
    opt = adam()([{"params": list(model.parameters())}])
    xb = torch.from_numpy(X[:batch])

    def bare_steps():
        for _ in range(steps):
            loss = model(xb).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    full = median_time(full_steps, repeats=3) / steps
    bare = median_time(bare_steps, repeats=3) / steps
    return flops_per_step / full, flops_per_step / bare


def _fit_mlp_784(seed=0):
    from norank import NoRankEmbedder

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2048, 784)).astype(np.float32)
    y = np.repeat(np.arange(64), 32)
    return NoRankEmbedder(hidden_layer_sizes=(512, 256), embedding_dim=64, epochs=1, random_state=0).fit(X, y)


def _transform_rate(n: int) -> tuple[float, float]:
    est = _fit_mlp_784()
    X = np.random.default_rng(1).normal(size=(n, 784)).astype(np.float32)
    est.transform(X[:1000])
    seconds = median_time(lambda: est.transform(X), repeats=3)
    rows = torch.from_numpy(X)

    def bare():
        with torch.inference_mode():
            for start in range(0, n, 8192):
                est.encoder_(rows[start : start + 8192])

    bare_seconds = median_time(bare, repeats=3)
    return n / seconds, n / bare_seconds


def _olivetti():
    from norank.datasets import load

    ds = load("olivetti")
    return ds.X, ds.y


def fit_norank_olivetti():
    from norank import NoRankEmbedder

    X, y = _olivetti()
    NoRankEmbedder(random_state=0).fit(X, y)


def fit_umap_olivetti():
    import umap

    X, y = _olivetti()
    umap.UMAP(n_components=10, random_state=0).fit(X.reshape(len(X), -1), y)


def fit_pca_nca_olivetti():
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NeighborhoodComponentsAnalysis
    from sklearn.pipeline import make_pipeline

    X, y = _olivetti()
    make_pipeline(PCA(50, random_state=0), NeighborhoodComponentsAnalysis(random_state=0)).fit(X.reshape(len(X), -1), y)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict]:
    figures = []
    gemm = _gemm_flops()
    step, bare = _step_flops(batch=512, steps=5 if quick else 20)
    figures.append(
        figure(
            "training step 4096-512-256-64, B=512",
            step / 1e9,
            "GFLOP/s",
            "torch.mm fp32 GEMM",
            gemm / 1e9,
            target=0.70,
            higher_is_better=True,
        )
    )
    figures.append(
        figure(
            "bare MLP forward/backward/Adam, B=512",
            bare / 1e9,
            "GFLOP/s",
            "torch.mm fp32 GEMM",
            gemm / 1e9,
            higher_is_better=True,
        )
    )
    rate, bare_rate = _transform_rate(20_000 if quick else 100_000)
    figures.append(
        figure("transform 784-d, preprocessing included", rate, "samples/s", target=150_000, higher_is_better=True)
    )
    figures.append(
        figure(
            "transform vs bare 784-512-256-64 forward",
            rate,
            "samples/s",
            "bare torch forward",
            bare_rate,
            higher_is_better=True,
        )
    )
    # End-to-end: each fit in a fresh process, so its peak memory is its own.
    for name, fn, time_target, mem_target in (
        ("norank default fit", fit_norank_olivetti, 1.0, 550.0),
        ("supervised UMAP fit", fit_umap_olivetti, None, None),
        ("PCA(50)->NCA fit", fit_pca_nca_olivetti, None, None),
    ):
        seconds = _timed_in_child(fn)
        mem = peak_rss(fn)["peak_bytes"] / 2**20
        figures.append(figure(f"olivetti: {name} time", seconds, "s", target=time_target))
        figures.append(figure(f"olivetti: {name} peak RSS", mem, "MiB", target=mem_target))
    norank_t, umap_t = figures[-6]["value"], figures[-4]["value"]
    nca_t = figures[-2]["value"]
    figures.append(figure("olivetti fit time vs supervised UMAP", norank_t, "s", "supervised UMAP", umap_t))
    figures.append(figure("olivetti fit time vs PCA->NCA", norank_t, "s", "PCA(50)->NCA", nca_t))
    return figures


def _time_child(fn, queue):
    fn()  # warm imports and numba caches
    queue.put(_timed(fn))


def _timed_in_child(fn) -> float:
    """Seconds of a second call of fn in a fresh process: import and JIT costs are paid by the first."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_time_child, args=(fn, queue))
    proc.start()
    seconds = queue.get(timeout=900)
    proc.join()
    return seconds
