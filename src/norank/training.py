"""The training loop behind `NoRankEmbedder.fit`: batches, loss terms, optimiser, history, checkpoints.

One step: draw a P×K batch, embed it, gather embeddings across ranks (distributed), build the B×B
distance matrix, mine triplets on it, add the weighted regularisers, step the optimiser. Randomness comes
only from `random_state`: the sampler has its own generator and the model's initialisation and dropout run
inside a forked torch RNG, so the caller's global RNG state is neither used nor changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import check_random_state

from norank import distributed
from norank.distances import pairwise_distances
from norank.encoders import ProjectionHead, build_encoder
from norank.losses import (
    ProxyAnchorLoss,
    diversity_loss,
    global_preservation_loss,
    local_preservation_loss,
    triplet_margin_loss,
    uniformity_loss,
)
from norank.mining import active_anchor_fraction, mine
from norank.preprocessing import IN_MEMORY_BYTES, TensorPreprocessor
from norank.sampling import ClassBalancedBatchSampler
from norank.schedules import schedule_factor
from norank.lazy import PageReleaser, Rows, take_rows

TERMS = ("triplet", "diversity", "uniformity", "local", "global")
CHECKPOINT_FILE = "checkpoint.pt"
_PRELOAD_BYTES = IN_MEMORY_BYTES  # in-memory inputs up to this size are preprocessed once, up front


class NonFiniteLossError(FloatingPointError, ValueError):
    """Training produced a NaN or infinite loss."""


@dataclass
class TrainResult:
    preprocessor: TensorPreprocessor
    encoder: torch.nn.Module
    head: torch.nn.Module | None
    device: torch.device
    history: dict


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use device='cpu'.")
    return torch.device(device)


def stratified_split(codes: np.ndarray, fraction: float, rng: np.random.Generator):
    """(train, validation) indices; each class keeps at least 2 training samples."""
    train, val = [], []
    for c in np.unique(codes):
        members = rng.permutation(np.flatnonzero(codes == c))
        n_val = min(int(round(fraction * len(members))), max(len(members) - 2, 0))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


class _Features:
    """Preprocessed rows for training: computed once when they fit in memory, else per batch."""

    def __init__(self, X, indices, pre: TensorPreprocessor, lazy: bool, device):
        self.X, self.indices, self.pre, self.device = X, indices, pre, device
        n_bytes = len(indices) * pre.n_features_ * 4
        self.cache = None
        self.releaser = PageReleaser(X)
        if not lazy and n_bytes <= _PRELOAD_BYTES:
            self.cache = torch.from_numpy(pre.transform(X[indices])).to(device)

    def __len__(self):
        return len(self.indices)

    def rows(self, positions: np.ndarray) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[torch.from_numpy(positions).to(self.cache.device)]
        rows = take_rows(self.X, self.indices[positions], self.releaser)
        return torch.from_numpy(self.pre.transform(rows)).to(self.device)


def _fingerprint(est, X, codes) -> str:
    """Identifies a training run, so a checkpoint is only resumed by the same settings on the same data."""
    params = {k: v for k, v in est.get_params().items() if k not in ("verbose", "checkpoint_dir", "device")}
    head = np.asarray(X[: min(len(X), 8)], dtype=np.float32)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(str(tuple(X.shape)).encode())
    digest.update(np.ascontiguousarray(head).tobytes())
    digest.update(np.ascontiguousarray(codes).tobytes())
    return digest.hexdigest()


def train(est, X, codes: np.ndarray, counts: np.ndarray, *, lazy: bool, encoder: str | None = None) -> TrainResult:
    """Train `est`'s model on X; `encoder` names the encoder to build when it differs from `est.encoder`
    (the kind that encoder="auto" resolved to)."""
    device = resolve_device(est.device)
    seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    rank, world = distributed.world()
    rng = np.random.default_rng(seed)
    if est.validation_fraction > 0:
        train_idx, val_idx = stratified_split(codes, est.validation_fraction, rng)
    else:
        train_idx, val_idx = np.arange(len(codes)), np.empty(0, np.int64)

    pre = TensorPreprocessor(est.normalization, est.symmetric, est.fisher_z, n_components=est.pca_components)
    pre.fit(Rows(X, train_idx) if lazy or len(val_idx) else X)
    features = _Features(X, train_idx, pre, lazy, device)
    val_features = _Features(X, val_idx, pre, lazy, device) if len(val_idx) else None
    train_codes = codes[train_idx]
    # Classes with one training sample get unique batch labels: negatives only, never anchors.
    singleton = counts[train_codes] < 2 if len(val_idx) == 0 else np.bincount(train_codes, minlength=len(counts))[train_codes] < 2
    batch_labels = np.where(singleton, len(counts) + np.arange(len(train_codes)), train_codes)
    labels_t = torch.from_numpy(batch_labels).to(device)
    codes_t = torch.from_numpy(train_codes).to(device)

    # With fewer classes than batch_size // samples_per_class, K grows so batches stay batch_size large.
    n_classes = len(np.unique(train_codes))
    classes_per_batch = min(max(2, est.batch_size // est.samples_per_class), n_classes)
    samples_per_class = max(est.samples_per_class, est.batch_size // classes_per_batch)
    sampler = ClassBalancedBatchSampler(
        train_codes, classes_per_batch, samples_per_class, class_sampling=est.class_sampling,
        seed=seed, num_replicas=world, rank=rank,
    )
    total_steps = est.epochs * len(sampler)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        encoder = build_encoder(
            encoder or est.encoder, pre.n_features_, pre.input_shape_, tuple(np.atleast_1d(est.hidden_layer_sizes)),
            est.embedding_dim, est.dropout, est.layer_norm,
        ).to(device)
        head = ProjectionHead(est.embedding_dim).to(device) if est.projection_head else None
        proxies = None
        if est.loss == "proxy_anchor":
            gen = torch.Generator().manual_seed(seed)
            proxies = ProxyAnchorLoss(len(counts), est.embedding_dim, generator=gen).to(device)
        modules = EmbeddingModel(encoder, head)
        model = modules
        if distributed.is_active():
            model = torch.nn.parallel.DistributedDataParallel(modules, device_ids=[device.index] if device.type == "cuda" else None)
        groups = [{"params": list(modules.parameters()), "lr": est.learning_rate}]
        if proxies is not None:
            # Proxies learn 100× faster than the network, as in the Proxy-Anchor paper.
            groups.append({"params": list(proxies.parameters()), "lr": est.learning_rate * 100})
        if est.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=est.learning_rate, momentum=est.momentum, weight_decay=est.weight_decay)
        else:
            opt = torch.optim.Adam(groups, lr=est.learning_rate, weight_decay=est.weight_decay)
        base_lrs = [g["lr"] for g in opt.param_groups]

        history = {k: [] for k in ("loss", *TERMS, "active_fraction", "embedding_spread", "lr")}
        if val_features is not None:
            history["val_precision_at_1"] = []
        state = {"epoch": 0, "step": 0, "best": -1.0, "best_state": None, "stale": 0}
        ckpt = _Checkpointer(est.checkpoint_dir, _fingerprint(est, X, codes)) if est.checkpoint_dir else None
        if ckpt is not None:
            ckpt.restore(modules, proxies, opt, history, state)

        bar = None
        if est.verbose and distributed.is_main_process():
            from tqdm.auto import tqdm

            bar = tqdm(total=est.epochs, initial=state["epoch"], desc="norank fit", unit="epoch")
        while state["epoch"] < est.epochs:
            epoch = state["epoch"]
            sampler.set_epoch(epoch)
            modules.train()
            sums = {k: 0.0 for k in ("loss", *TERMS, "active_fraction", "embedding_spread")}
            n_steps = 0
            for positions in sampler:
                factor = schedule_factor(est.schedule, state["step"], total_steps, est.schedule_tau, est.schedule_kappa)
                for group, lr in zip(opt.param_groups, base_lrs):
                    group["lr"] = lr * factor
                xb = features.rows(positions)
                where = torch.from_numpy(positions).to(device)
                values = _step(est, model, proxies, xb, labels_t[where], codes_t[where], world)
                total = values.pop("loss_tensor")
                if not torch.isfinite(total):
                    raise NonFiniteLossError(_non_finite_message(values, epoch))
                opt.zero_grad(set_to_none=True)
                total.backward()
                try:
                    opt.step()
                except RuntimeError as exc:  # Adam's step size overflows float32 before any NaN shows
                    if "overflow" not in str(exc):
                        raise
                    raise NonFiniteLossError(_non_finite_message(values, epoch)) from None
                state["step"] += 1
                n_steps += 1
                for k, v in values.items():
                    sums[k] += v
            for k in sums:
                history[k].append(sums[k] / max(n_steps, 1))
            history["lr"].append(opt.param_groups[0]["lr"])
            state["epoch"] += 1
            stop = False
            if val_features is not None:
                score = _validation_precision(encoder, val_features, codes[val_idx])
                history["val_precision_at_1"].append(score)
                if score > state["best"]:
                    state["best"], state["stale"] = score, 0
                    state["best_state"] = {k: v.detach().clone() for k, v in modules.state_dict().items()}
                else:
                    state["stale"] += 1
                stop = distributed.broadcast_flag(state["stale"] >= est.n_iter_no_change, device)
            if ckpt is not None and distributed.is_main_process():
                ckpt.save(modules, proxies, opt, history, state)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{history[k][-1]:.3g}" for k in ("loss", *TERMS, "active_fraction") if _shown(est, k)})
            if stop:
                break
        if bar is not None:
            bar.close()
        if state["best_state"] is not None:
            modules.load_state_dict(state["best_state"])
    modules.eval()
    if history["embedding_spread"] and history["embedding_spread"][-1] < 1e-3:
        warnings.warn(
            "The embeddings collapsed to a point (mean pairwise distance < 1e-3); raise diversity_weight or "
            "uniformity_weight, or lower the learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )
    return TrainResult(pre, encoder, head, device, history)


def _shown(est, key: str) -> bool:
    weights = {"diversity": est.diversity_weight, "uniformity": est.uniformity_weight, "local": est.local_weight, "global": est.global_weight}
    return weights.get(key, 1.0) > 0


def _step(est, model, proxies, xb, yb, codes, world) -> dict:
    """Every loss term of one batch; 'loss_tensor' is the weighted sum to back-propagate.

    `yb` are mining labels (single-sample classes relabelled so they are never anchors), `codes` the
    true class codes (for the proxies).
    """
    z = distributed.gather_with_grad(model(xb))
    if not torch.isfinite(z.detach()).all():
        raise NonFiniteLossError(_non_finite_message({}, None))
    labels = distributed.gather(yb)
    values = {}
    if est.loss == "proxy_anchor":
        main = proxies(z, distributed.gather(codes))
        with torch.no_grad():
            dist = pairwise_distances(z.detach(), squared=est.distance == "squared")
            a, p, n = mine(dist, labels, est.mining, est.margin)
            values["active_fraction"] = float(active_anchor_fraction(dist, a, p, n, est.margin, labels))
    else:
        dist = pairwise_distances(z, squared=est.distance == "squared")
        a, p, n = mine(dist.detach(), labels, est.mining, est.margin)
        main = triplet_margin_loss(dist, a, p, n, est.margin)
        values["active_fraction"] = float(active_anchor_fraction(dist.detach(), a, p, n, est.margin, labels))
    total = main
    values["triplet"] = float(main.detach())
    terms = {
        "diversity": (est.diversity_weight, lambda: diversity_loss(z)),
        "uniformity": (est.uniformity_weight, lambda: uniformity_loss(z, est.uniformity_t)),
    }
    if est.local_weight > 0 or est.global_weight > 0:
        xg = distributed.gather(xb)
        terms["local"] = (est.local_weight, lambda: local_preservation_loss(z, xg, est.local_neighbors))
        terms["global"] = (est.global_weight, lambda: global_preservation_loss(z, xg))
    for name in ("diversity", "uniformity", "local", "global"):
        weight, fn = terms.get(name, (0.0, None))
        if weight > 0:
            term = fn()
            total = total + weight * term
            values[name] = float(term.detach())
        else:
            values[name] = 0.0
    with torch.no_grad():
        # Mean pairwise distance of the batch (0 = collapse), from the distance matrix already built.
        d = dist.detach()
        values["embedding_spread"] = float((d.clamp_min(0).sqrt() if est.distance == "squared" else d).mean())
    values["loss"] = float(total.detach())
    # DistributedDataParallel averages gradients over ranks; each rank only back-propagates into its own
    # rows of the global batch, so the world-size factor restores the global batch's gradient.
    values["loss_tensor"] = total * world if world > 1 else total
    return values


class EmbeddingModel(torch.nn.Module):
    """Encoder followed by the optional projection head: the space the loss is computed in."""

    def __init__(self, encoder, head=None):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x):
        z = self.encoder(x)
        return self.head(z) if self.head is not None else z


def _validation_precision(encoder, val: _Features, codes: np.ndarray) -> float:
    """Leave-one-out precision@1 of the validation embeddings."""
    encoder.eval()
    with torch.no_grad():
        z = encoder(val.rows(np.arange(len(val))))
    encoder.train()
    d = pairwise_distances(z, squared=True)
    d.fill_diagonal_(float("inf"))
    nearest = d.argmin(1).cpu().numpy()
    return float(np.mean(codes[nearest] == codes))


def _non_finite_message(values: dict, epoch) -> str:
    terms = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k in TERMS)
    where = f"The training loss became non-finite at epoch {epoch} ({terms})" if epoch is not None else (
        "The embeddings became non-finite during training")
    return (
        f"{where}. Likely causes: a learning rate that "
        "is too high (try 10x lower), a margin too large for the distance, or unscaled input (use "
        "normalization='sample' or 'feature')."
    )


class _Checkpointer:
    """Per-epoch training state on disk, written atomically (temporary file, then rename)."""

    def __init__(self, directory, fingerprint: str):
        self.dir = Path(directory)
        self.fingerprint = fingerprint

    def save(self, modules, proxies, opt, history, state) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "fingerprint": self.fingerprint,
            "modules": modules.state_dict(),
            "proxies": proxies.state_dict() if proxies is not None else None,
            "optimizer": opt.state_dict(),
            "history": history,
            "state": state,
            "rng": torch.get_rng_state(),
        }
        tmp = self.dir / (CHECKPOINT_FILE + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.dir / CHECKPOINT_FILE)

    def restore(self, modules, proxies, opt, history, state) -> bool:
        path = self.dir / CHECKPOINT_FILE
        if not path.is_file():
            return False
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as exc:  # a torn or foreign file: start afresh rather than fail
            warnings.warn(f"Ignoring unreadable checkpoint {path} ({exc}); training from scratch.", RuntimeWarning, stacklevel=4)
            return False
        if payload.get("fingerprint") != self.fingerprint:
            warnings.warn(
                f"The checkpoint in {self.dir} belongs to other settings or data; training from scratch "
                "(use another checkpoint_dir to keep it).",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        modules.load_state_dict(payload["modules"])
        if proxies is not None:
            proxies.load_state_dict(payload["proxies"])
        opt.load_state_dict(payload["optimizer"])
        for k, v in payload["history"].items():
            history[k] = list(v)
        state.update(payload["state"])
        torch.set_rng_state(payload["rng"])
        return True
