"""The hand-written loops a user would write instead of norank: the peers of the cost benchmarks.

`pml_loop` is about forty lines a pytorch-metric-learning user writes: an MLP, PML's MPerClassSampler, a
PML loss, Adam, a loop (issue 11's peer: the median over SupCon, Multi-Similarity, ArcFace and
Proxy-Anchor). `plain_triplet_loop` is the plain torch loop of the large-N comparison: per-sample z-score,
the same MLP, a batch-hard triplet loss on the normalised outputs, Adam.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PML_LOSSES = ("supcon", "multi_similarity", "arcface", "proxy_anchor")


def _pml_loss(name: str, n_classes: int, dim: int):
    from pytorch_metric_learning import losses

    if name == "supcon":
        return losses.SupConLoss(temperature=0.1)
    if name == "multi_similarity":
        return losses.MultiSimilarityLoss()
    if name == "arcface":
        return losses.ArcFaceLoss(n_classes, dim)
    return losses.ProxyAnchorLoss(n_classes, dim)


def pml_loop(
    X, y, loss: str = "supcon", hidden: int = 512, dim: int = 64, epochs: int = 30, batch: int = 128, seed: int = 0
) -> nn.Module:
    """Train an MLP with a PML loss the way its documentation shows; returns the encoder."""
    from pytorch_metric_learning.samplers import MPerClassSampler

    torch.manual_seed(seed)
    X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1))
    X = (X - X.mean(1, keepdim=True)) / (X.std(1, keepdim=True) + 1e-8)
    y = torch.from_numpy(np.unique(y, return_inverse=True)[1])
    n_classes = int(y.max()) + 1
    model = nn.Sequential(nn.Linear(X.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, dim))
    loss_fn = _pml_loss(loss, n_classes, dim)
    opt = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=1e-3)
    # m samples per class, raised when there are too few classes to fill a batch (as norank raises K);
    # PML wants m to divide the batch.
    m = next(d for d in range(max(4, -(-batch // n_classes)), batch + 1) if batch % d == 0)
    sampler = MPerClassSampler(y.numpy(), m=m, batch_size=batch, length_before_new_iter=max(len(y), batch))
    for _ in range(epochs):
        order = torch.tensor(list(iter(sampler)))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start : start + batch]
            z = F.normalize(model(X[idx]), dim=1)
            loss_value = loss_fn(z, y[idx])
            opt.zero_grad()
            loss_value.backward()
            opt.step()
    return model


def plain_triplet_loop(
    X, y, sizes=(784, 256, 32), epochs: int = 2, batch: int = 512, margin: float = 2.0, seed: int = 0
) -> nn.Module:
    """Per-sample z-score, an MLP, a batch-hard triplet loss on normalised outputs, Adam; random batches of
    rows read from X (an array or a memory map)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(np.asarray(y))
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order) - batch + 1, batch):
            idx = np.sort(order[start : start + batch])
            xb = torch.from_numpy(np.asarray(X[idx], dtype=np.float32).reshape(batch, -1))
            xb = (xb - xb.mean(1, keepdim=True)) / (xb.std(1, keepdim=True) + 1e-8)
            z = F.normalize(model(xb), dim=1)
            d = torch.cdist(z, z)
            same = labels[idx][:, None] == labels[idx][None, :]
            hardest_pos = (d * same).max(1).values
            hardest_neg = d.masked_fill(same, float("inf")).min(1).values
            loss = F.relu(hardest_pos - hardest_neg + margin).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model
