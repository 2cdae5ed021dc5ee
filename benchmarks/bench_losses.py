"""Every loss on the many-class case: seconds per epoch and held-out precision@1 with 10,000 classes.

The setting of the scale benchmark's many-class case: 10,000 synthetic classes in 64-d (standard normal
centres, noise 0.6 around them), 6 samples per class of which one is held out, so 50,000 training and
10,000 test samples. Every loss trains the same encoder in the same loop: MLP 64 -> 256 -> 64 with
l2-normalised output, Adam at lr 1e-3 (a loss's own class vectors at lr x its ``lr_multiplier``: 100 for
Proxy-Anchor, as in its paper; 1 for ArcFace), class-balanced batches of 64 classes x 4 samples, 5
epochs, seeded; each loss as ``norank.losses.make_loss`` builds it (triplet: Euclidean, margin 2,
semi-hard mining, norank's defaults). precision@1: the share of test samples whose nearest training
embedding has their class. Time is CPU seconds per epoch on one thread (user + system of this process,
which on a shared machine does not count other processes' turns); each note gives the wall time too.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.common import figure, one_torch_thread

N_CLASSES, QUICK_CLASSES = 10_000, 1_000
PER_CLASS = 6
DIM = 64
HIDDEN = (256,)
EMBEDDING = 64
CLASSES_PER_BATCH, SAMPLES_PER_CLASS = 64, 4
LR = 1e-3
EPOCHS, QUICK_EPOCHS = 5, 2
PEER = "triplet"


def many_classes(n_classes: int, per_class: int = PER_CLASS, dim: int = DIM, seed: int = 1):
    """(X_train, y_train, X_test, y_test): Gaussian classes, one sample per class held out."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), per_class)
    X = centres[y] + 0.6 * rng.normal(size=(len(y), dim)).astype(np.float32)
    test = np.arange(len(y)) % per_class == 0
    return X[~test], y[~test], X[test], y[test]


def train(name: str, X: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0):
    """Train the encoder with loss ``name``; returns (encoder, CPU seconds, wall seconds) of training."""
    from norank.encoders import MLPEncoder
    from norank.losses import make_loss
    from norank.sampling import ClassBalancedBatchSampler

    torch.manual_seed(seed)
    encoder = MLPEncoder(X.shape[1], HIDDEN, EMBEDDING)
    loss_fn = make_loss(
        name,
        n_classes=int(y.max()) + 1,
        embedding_dim=EMBEDDING,
        margin=2.0,
        distance="euclidean",
        mining="semihard",
        generator=torch.Generator().manual_seed(seed),
    )
    groups = [{"params": list(encoder.parameters()), "lr": LR}]
    if list(loss_fn.parameters()):
        groups.append({"params": list(loss_fn.parameters()), "lr": LR * getattr(loss_fn, "lr_multiplier", 1.0)})
    opt = torch.optim.Adam(groups)
    sampler = ClassBalancedBatchSampler(y, CLASSES_PER_BATCH, SAMPLES_PER_CLASS, seed=seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    wall, cpu = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for positions in sampler:
            rows = torch.from_numpy(positions)
            loss = loss_fn(encoder(Xt[rows]), yt[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return encoder, time.process_time() - cpu, time.perf_counter() - wall


def precision_at_1(encoder, X_train, y_train, X_test, y_test) -> float:
    """Share of test samples whose nearest training embedding has their class."""
    from norank.neighbors import kneighbors

    with torch.no_grad():
        z_train, z_test = (encoder(torch.from_numpy(a)).numpy() for a in (X_train, X_test))
    _, idx = kneighbors(z_test, z_train, 1)
    return float(np.mean(y_train[idx[:, 0]] == y_test))


def run(quick: bool = False) -> list[dict]:
    with one_torch_thread():
        return _run(quick)


def _run(quick: bool) -> list[dict]:
    from norank.losses import LOSSES

    n_classes, epochs = (QUICK_CLASSES, QUICK_EPOCHS) if quick else (N_CLASSES, EPOCHS)
    X_train, y_train, X_test, y_test = many_classes(n_classes)
    results = {}
    for name in LOSSES:
        encoder, cpu, wall = train(name, X_train, y_train, epochs)
        results[name] = (cpu / epochs, wall / epochs, precision_at_1(encoder, X_train, y_train, X_test, y_test))
    figures = []
    peer_s, _, peer_p = results[PEER]
    for name, (seconds, wall, p1) in results.items():
        peer = None if name == PEER else f"{PEER} (semihard)"
        note = f"{n_classes} classes, {epochs} epochs; wall {wall:.3g} s per epoch"
        figures.append(
            figure(
                f"{n_classes} classes: {name} time per epoch",
                seconds,
                "s CPU",
                peer,
                None if peer is None else peer_s,
                note=note,
            )
        )
        figures.append(
            figure(
                f"{n_classes} classes: {name} held-out precision@1",
                p1,
                "",
                peer,
                None if peer is None else peer_p,
                higher_is_better=True,
                note=note,
            )
        )
    return figures
