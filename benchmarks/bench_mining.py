"""Mining + triplet loss per batch: norank against pytorch-metric-learning (PML) on the same embeddings.

Set-up: B unit-norm 64-d float32 embeddings (seeded Gaussian, normalised), labels in a P×K layout with
K = 4 samples per class (P = B/4 classes, as the class-balanced sampler draws them), squared Euclidean
distances (the paper's), margin 0.2. Each timed call goes from embeddings to the loss value: distance
matrix, mining and loss (PML's miner and loss each compute their own distance matrix, as they do in use).

Pairs compared:
- ``margin_triplet_loss(kind)`` (mining and loss fused, triplets never listed) and ``margin_triplets(kind)``
  + ``triplet_margin_loss`` (triplets listed, for callers that need them) vs
  ``TripletMarginMiner(type_of_triplets=kind)`` + ``TripletMarginLoss(reducer=MeanReducer())``, kind in
  all / hard / semihard / easy; the 20× target applies to the fused loss, the listing path is shown beside;
- ``batch_hard_triplets`` vs ``BatchHardMiner``.
Before timing, both sides run in float64 on the same embeddings and must give the same triplet count and
loss (float32 rounding can move a triplet lying within 1e-7 of the margin, hence float64 for the check).
norank's training miners (semihard / hard closest negative) have no PML counterpart and are timed alone,
plus semi-hard on a 2-class batch (the per-row sort path).

A training step's triplet term: ``TripletLoss`` (distance matrix once, mining through the miner's unchecked
path, diagnostics kept as tensors) against the functional path the training step used before it (``mine``
then ``active_anchor_fraction``, each checking its inputs, with a NaN scan of the matrix, and diagnostics
read back as floats), with norank's defaults (Euclidean, margin 2, semi-hard); target: not slower (>= 1).

PML materialises a B×B×B uint8 mask while B³ < 2³¹ (1 GiB at B = 1024) and loops over anchors in Python
beyond (B = 2048), so its peer run at B = 2048 is slow; it is skipped when the machine lacks the memory
for it. Timings are single-threaded (``torch.set_num_threads(1)``, both sides) and the figures are CPU
time (the median over repeats of user + system time of this process), which on a quiet machine is the
wall time and on a shared one does not count other processes' turns; each note gives the wall-clock
medians as well. Peak memory is measured in a fresh process per case.
"""

from __future__ import annotations

import statistics
import time
from functools import partial

import psutil
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.reducers import MeanReducer

from benchmarks.common import figure, one_torch_thread, peak_rss, time_call
from norank.distances import pairwise_distances
from norank.losses import TripletLoss, triplet_margin_loss
from norank.mining import (
    active_anchor_fraction,
    batch_hard_triplets,
    hard_triplets,
    margin_triplet_loss,
    margin_triplets,
    mine,
    semihard_triplets,
)

K = 4
DIM = 64
MARGIN = 0.2
KINDS = ("all", "hard", "semihard", "easy")
TARGET_B = 1024
TARGET_SPEEDUP = 20.0
PEER = "pytorch-metric-learning"


def batch(b: int, dtype=torch.float32, n_classes: int | None = None, seed: int = 0):
    """Unit-norm embeddings and P×K labels (K = 4 unless ``n_classes`` is given)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(b, DIM, generator=g, dtype=dtype), dim=1)
    n_classes = n_classes or b // K
    labels = torch.arange(n_classes).repeat_interleave(b // n_classes)
    return z, labels


def norank_pipeline(kind: str):
    """Embeddings → loss with norank; ``kind`` is a margin_triplets kind, "batch_hard", "semihard_training"
    or "hard_training"."""
    miners = {
        "batch_hard": lambda d, y: batch_hard_triplets(d, y, MARGIN),
        "semihard_training": lambda d, y: semihard_triplets(d, y, MARGIN),
        "hard_training": lambda d, y: hard_triplets(d, y, MARGIN),
    }
    if kind.startswith("fused:"):

        def fused(z, labels):  # (triplet count, loss): the set is never listed
            return margin_triplet_loss(pairwise_distances(z, squared=True), labels, MARGIN, kind[len("fused:") :])

        return fused
    miner = miners.get(kind, lambda d, y: margin_triplets(d, y, MARGIN, kind))

    def run(z, labels):
        dist = pairwise_distances(z, squared=True)
        triplets = miner(dist, labels)
        return triplets, triplet_margin_loss(dist, *triplets, MARGIN)

    return run


def pml_pipeline(kind: str):
    """Embeddings → loss with PML, same distance (squared Euclidean), margin and mean reduction."""
    distance = LpDistance(power=2)
    if kind == "batch_hard":
        miner = BatchHardMiner(distance=distance)
    else:
        miner = TripletMarginMiner(margin=MARGIN, type_of_triplets=kind, distance=distance)
    loss_fn = TripletMarginLoss(margin=MARGIN, distance=distance, reducer=MeanReducer())

    def run(z, labels):
        triplets = miner(z, labels)
        return triplets, loss_fn(z, labels, triplets)

    return run


def pml_fits_in_memory(b: int) -> bool:
    """Whether PML's all-triplets enumeration fits in half the available memory (estimate)."""
    need = b**3 if b**3 < 2**31 else 0  # the dense uint8 mask, below PML's int32 switch to a loop
    need += 3 * 8 * b * (K - 1) * (b - K)  # int64 (a, p, n) indices of every valid triplet
    return need < psutil.virtual_memory().available / 2


def check_same(kind: str, b: int) -> int:
    """Run both sides in float64 and insist on identical triplets and loss; return the triplet count."""
    z, labels = batch(b, torch.float64)
    peer_kind = kind.removeprefix("fused:")
    (ours_t, ours_loss), (their_t, their_loss) = norank_pipeline(kind)(z, labels), pml_pipeline(peer_kind)(z, labels)
    if kind.startswith("fused:"):  # ours_t is the count of the fused loss's triplets
        ours_loss, ours_t = ours_t, ours_loss
        ours_t = [range(ours_t)]
    if len(ours_t[0]) != len(their_t[0]):
        raise AssertionError(f"{kind}, B={b}: norank mined {len(ours_t[0])} triplets, PML {len(their_t[0])}")
    if kind == "batch_hard" and not all(torch.equal(x, y.long()) for x, y in zip(ours_t, their_t, strict=True)):
        raise AssertionError(f"batch_hard, B={b}: norank and PML chose different triplets")
    if not torch.allclose(ours_loss, their_loss, rtol=1e-9, atol=1e-12):
        raise AssertionError(f"{kind}, B={b}: loss {ours_loss.item()} (norank) vs {their_loss.item()} (PML)")
    return len(ours_t[0])


def _memory_job(side: str, kind: str, b: int, n_classes: int | None = None) -> None:
    torch.set_num_threads(1)
    z, labels = batch(b, n_classes=n_classes)
    (norank_pipeline if side == "norank" else pml_pipeline)(kind)(z, labels)


def _memory_warmup() -> None:
    """Run every pipeline once on a tiny batch so first-call set-up is in the memory baseline."""
    torch.set_num_threads(1)
    z, labels = batch(16)
    for kind in ("all", "semihard_training"):
        norank_pipeline(kind)(z, labels)
        if kind in KINDS:
            pml_pipeline(kind)(z, labels)


def _mb(n_bytes: float) -> float:
    return n_bytes / 2**20


def run(quick: bool = False) -> list[dict]:
    with one_torch_thread():
        return _run(quick)


def _timed(fn, repeats: int, warmup: int = 1) -> tuple[float, float]:
    t = time_call(fn, repeats=repeats, warmup=warmup)
    return 1e3 * t["cpu"], 1e3 * t["wall"]


STEP_MARGIN = 2.0  # norank's default Euclidean margin


def functional_step(z, labels):
    """The triplet term as the training step computed it before TripletLoss: checks twice, floats read back."""
    dist = pairwise_distances(z, squared=False)
    a, p, n = mine(dist.detach(), labels, "semihard", STEP_MARGIN)
    loss = triplet_margin_loss(dist, a, p, n, STEP_MARGIN)
    fraction = active_anchor_fraction(dist.detach(), a, p, n, STEP_MARGIN, labels)
    return loss, fraction, float(dist.detach().mean())


def _interleaved(fn, peer_fn, repeats: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """((CPU ms, wall ms), (peer CPU ms, peer wall ms)): medians of calls taken in turns, so a change in
    the machine's load during the run falls on both sides alike."""
    fn(), peer_fn()
    times: list[list[tuple[float, float]]] = [[], []]
    for _ in range(repeats):
        for side, f in enumerate((fn, peer_fn)):
            w, c = time.perf_counter(), time.process_time()
            f()
            times[side].append((time.process_time() - c, time.perf_counter() - w))
    ours, peer = (
        (1e3 * statistics.median(c for c, _ in side), 1e3 * statistics.median(w for _, w in side)) for side in times
    )
    return ours, peer


def _step_figures(sizes, repeats: int) -> list[dict]:
    """TripletLoss per step against the functional path, same batch (P×K, K = 4), same result."""
    figures = []
    loss_fn = TripletLoss(margin=STEP_MARGIN, distance="euclidean", mining="semihard")
    for b in sizes:
        z, labels = batch(b)
        z.requires_grad_(True)
        ours, theirs = loss_fn(z, labels), functional_step(z, labels)
        if not torch.equal(ours, theirs[0]) or float(loss_fn.stats["active_fraction"]) != theirs[1]:
            raise AssertionError(f"B={b}: TripletLoss and the functional path disagree")
        (value, wall), (peer, peer_wall) = _interleaved(
            partial(loss_fn, z, labels), partial(functional_step, z, labels), repeats
        )
        figures.append(
            figure(
                f"TripletLoss step (semihard, euclidean) B={b}",
                value,
                "ms CPU",
                "mine + active_anchor_fraction (checked twice, floats read back)",
                peer,
                target=1.0,
                note=f"same loss and active fraction; wall {wall:.4g} ms vs {peer_wall:.4g} ms",
            )
        )
    return figures


def _run(quick: bool) -> list[dict]:
    sizes = (128, 512) if quick else (128, 512, 1024, 2048)
    ours_repeats, peer_repeats = (3, 1) if quick else (7, 3)
    figures = []
    for b in sizes:
        z, labels = batch(b)
        peer_ok = pml_fits_in_memory(b)
        slow_peer = b**3 >= 2**31  # PML's per-anchor Python loop: one timed run is enough
        for kind in (*(f"fused:{k}" for k in KINDS), *KINDS, "batch_hard"):
            label = (
                f"margin_triplet_loss({kind[6:]}) fused"
                if kind.startswith("fused:")
                else f"margin_triplets({kind})"
                if kind in KINDS
                else "batch_hard_triplets"
            )
            ours = norank_pipeline(kind)
            value, wall = _timed(partial(ours, z, labels), ours_repeats)
            peer_value, note = None, f"K={K}, {DIM}-d, squared Euclidean, margin {MARGIN}; wall {wall:.4g} ms"
            if peer_ok:
                count = check_same(kind, b)
                theirs = pml_pipeline(kind.removeprefix("fused:"))
                peer_value, peer_wall = _timed(
                    partial(theirs, z, labels), 1 if slow_peer else peer_repeats, warmup=0 if slow_peer else 1
                )
                note += f" (PML {peer_wall:.4g} ms); {count} triplets, same count and loss as PML (float64 check)"
            else:
                note += "; PML skipped: not enough memory for its B³ enumeration"
            if slow_peer:
                note += "; PML loops over anchors in Python here (B³ >= 2³¹)"
            peer_name = f"{PEER} {'BatchHardMiner' if kind == 'batch_hard' else 'TripletMarginMiner'}"
            targeted = b == TARGET_B and (kind.startswith("fused:") or kind == "batch_hard")
            figures.append(
                figure(
                    f"{label}+loss B={b}" if not kind.startswith("fused:") else f"{label} B={b}",
                    value,
                    "ms CPU",
                    peer_name,
                    peer_value,
                    TARGET_SPEEDUP if targeted else None,
                    note=note,
                )
            )
        for kind, label in (("semihard_training", "semihard_triplets"), ("hard_training", "hard_triplets")):
            ours = norank_pipeline(kind)
            value, wall = _timed(partial(ours, z, labels), ours_repeats)
            figures.append(
                figure(
                    f"{label}+loss B={b}",
                    value,
                    "ms CPU",
                    note=f"training miner (closest negative per pair), no PML counterpart; wall {wall:.4g} ms",
                )
            )
    two_b = 512 if quick else 1024
    z2, labels2 = batch(two_b, n_classes=2)
    semihard = norank_pipeline("semihard_training")
    value, wall = _timed(partial(semihard, z2, labels2), ours_repeats)
    figures.append(
        figure(
            f"semihard_triplets+loss 2 classes B={two_b}",
            value,
            "ms CPU",
            note=f"{two_b * (two_b // 2 - 1)} (anchor, positive) pairs: per-row sort path; wall {wall:.4g} ms",
        )
    )
    figures += _step_figures((128, 512) if quick else (128, 512, 1024), 7 if quick else 21)
    figures += _memory_figures(quick)
    return figures


def _memory_figures(quick: bool) -> list[dict]:
    figures = []
    for b in () if quick else (1024, 2048):
        ours = peak_rss(_memory_job, "norank", "all", b, warmup=_memory_warmup)["increase_bytes"]
        theirs = None
        if pml_fits_in_memory(b):
            theirs = _mb(peak_rss(_memory_job, "pml", "all", b, warmup=_memory_warmup)["increase_bytes"])
        figures.append(
            figure(
                f"peak memory margin_triplets(all)+loss B={b}",
                _mb(ours),
                "MB",
                f"{PEER} TripletMarginMiner",
                theirs,
                note=f"RSS increase over the call, fresh process; a B³ uint8 mask is "
                f"{_mb(b**3):.0f} MB; the output alone holds every valid triplet",
            )
        )
    b = 1024 if quick else 2048
    bound = _mb(b**3 / 8)
    for label, n_classes in (("semihard_triplets", None), ("semihard_triplets 2 classes", 2)):
        ours = peak_rss(_memory_job, "norank", "semihard_training", b, n_classes, warmup=_memory_warmup)
        figures.append(
            figure(
                f"peak memory {label}+loss B={b}",
                _mb(ours["increase_bytes"]),
                "MB",
                target=bound,
                note=f"target: below a bit-packed B³ mask ({bound:.0f} MB), i.e. no B³ tensor",
            )
        )
    return figures
