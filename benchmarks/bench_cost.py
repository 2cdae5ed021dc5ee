"""What norank costs against the loops a user would write instead (issue 11's targets).

- fit vs PML loop: the default `NoRankEmbedder(random_state=0).fit` (encoder="auto"'s choice included)
  against the hand-written pytorch-metric-learning loop of benchmarks/peers.py with the same MLP
  (512 → 64), 30 epochs and batches of 128, the median over SupCon, Multi-Similarity, ArcFace and
  Proxy-Anchor; on the training part (70 %) of each image set. CPU seconds of one thread, so other jobs
  on a shared machine do not move the ratio. Target: norank costs at most 1.5× the loop (ratio ≥ 0.67).
- large N: samples/s of a 784-256-32 MLP with a batch-hard triplet loss at batch 512 over 200k × 784 rows,
  in memory and as a memory map, against benchmarks.peers.plain_triplet_loop on the same data. Target:
  at least 0.8 of the plain loop's throughput.
The Olivetti wall time and peak memory of the default fit are in bench_training.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import figure, one_torch_thread
from benchmarks.peers import PML_LOSSES, plain_triplet_loop, pml_loop

SMALL_SETS = ("olivetti", "lfw", "digits", "galaxy-hard", "crystal-hard")
LARGE_PARAMS = dict(
    hidden_layer_sizes=(256,),
    embedding_dim=32,
    batch_size=512,
    epochs=2,
    mining="batch_hard",
    encoder="mlp",
    random_state=0,
)


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _training_part(name: str):
    from norank.datasets import load
    from norank.splits import holdout_split

    ds = load(name)
    train, _ = holdout_split(ds.y, 0.3, random_state=0)
    return ds.X[train], ds.y[train]


def small_set_ratio(name: str) -> dict:
    from norank import NoRankEmbedder

    X, y = _training_part(name)
    NoRankEmbedder(random_state=0, epochs=1).fit(X, y)  # warm imports and kernels
    ours = _cpu(lambda: NoRankEmbedder(random_state=0).fit(X, y))
    peer = statistics.median(_cpu(lambda loss=loss: pml_loop(X, y, loss=loss)) for loss in PML_LOSSES)
    return figure(
        f"{name}: default fit vs PML loop", ours, "CPU s", "PML loop (median of 4 losses)", peer, target=1 / 1.5
    )


def _large_data(n: int, folder: Path | None):
    """(X, y): n × 784 rows of 1000 classes, in memory or (with a folder) as a memory-mapped .npy file."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 1000, n)
    X = (rng.normal(size=(n, 784)) + 0.05 * (y[:, None] % 7)).astype(np.float32)
    if folder is None:
        return X, y
    np.save(folder / "x.npy", X)
    return np.load(folder / "x.npy", mmap_mode="r"), y


def large_n_ratio(n: int, memmap: bool) -> dict:
    from norank import NoRankEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        X, y = _large_data(n, Path(tmp) if memmap else None)
        ours = 2 * n / _cpu(lambda: NoRankEmbedder(**LARGE_PARAMS).fit(X, y))
        peer = 2 * n / _cpu(lambda: plain_triplet_loop(X, y))
    kind = "memory map" if memmap else "in memory"
    return figure(
        f"{n // 1000}k x 784 {kind}: throughput",
        ours,
        "samples/CPU s",
        "plain torch loop",
        peer,
        target=0.8,
        higher_is_better=True,
    )


def run(quick: bool = False) -> list[dict]:
    n = 50_000 if quick else 200_000
    with one_torch_thread():
        figures = [small_set_ratio(name) for name in (SMALL_SETS[:1] if quick else SMALL_SETS)]
        return figures + [large_n_ratio(n, memmap=False), large_n_ratio(n, memmap=True)]
