"""The training core: `fit_encoder` trains an encoder from explicit parts and returns them with history.

No estimator is involved: the caller passes the data, a fitted preprocessor, the encoder, the objective
(loss, optional miner, weighted regularisers), the batch sampler, an optimiser factory and a schedule,
callbacks and a seed. `NoRankEmbedder.fit` only builds these from its keywords (norank.components).

One step: take a P×K batch of preprocessed rows, embed it, gather embeddings across ranks (torchrun),
evaluate the objective, step the optimiser. Per-step values stay on the device and are averaged once
per epoch, so the loop does no host synchronisation beyond the finiteness check of the loss. Randomness
comes only from `seed`: the sampler and dropout have generators of their own and the global RNG is never
read or changed, so fits in parallel threads are independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from norank import distributed
from norank.callbacks import as_callbacks
from norank.encoders import seed_dropout
from norank.lazy import PageReleaser, take_rows
from norank.objective import Objective
from norank.preprocessing import IN_MEMORY_BYTES
from norank.validation import LazyArray

__all__ = [
    "BatchSampler",
    "EmbeddingModel",
    "Features",
    "NonFiniteLossError",
    "TrainResult",
    "Run",
    "adam",
    "fit_encoder",
    "sgd",
]

# An optimiser factory: the parameter groups of a run -> the optimiser over them.
OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]


class NonFiniteLossError(FloatingPointError, ValueError):
    """Training produced a NaN or infinite loss or parameter."""


class BatchSampler(Protocol):
    """What `fit_encoder` draws batches from: arrays of positions into the training rows, `len()` of them
    per epoch (`norank.sampling.ClassBalancedBatchSampler`; `set_epoch(e)`, if present, is called too)."""

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def __len__(self) -> int: ...


class EmbeddingModel(torch.nn.Module):
    """Encoder followed by the optional projection head: the space the loss is computed in."""

    def __init__(self, encoder, head=None):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x):
        z = self.encoder(x)
        return self.head(z) if self.head is not None else z


class Features:
    """Preprocessed rows of X (optionally only `indices`): computed once when they fit in memory, else per
    batch from the array, memory map or lazy array-like."""

    def __init__(self, X, preprocessor=None, indices=None, device="cpu", cache_bytes: int = IN_MEMORY_BYTES):
        self.X, self.pre, self.device = X, preprocessor, torch.device(device)
        self.indices = np.arange(len(X)) if indices is None else np.asarray(indices)
        self.releaser = PageReleaser(X)
        self.cache = None
        n_features = preprocessor.n_features_ if preprocessor is not None else int(np.prod(X.shape[1:]))
        in_memory = isinstance(X, np.ndarray) and not isinstance(X, np.memmap)
        if in_memory and len(self.indices) * n_features * 4 <= cache_bytes:
            self.cache = self._prepare(X if indices is None else X[self.indices])

    def __len__(self):
        return len(self.indices)

    def _prepare(self, rows) -> torch.Tensor:
        rows = self.pre.transform(rows) if self.pre is not None else np.asarray(rows, np.float32).reshape(len(rows), -1)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(self.device)

    def rows(self, positions: np.ndarray) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[torch.from_numpy(positions).to(self.device)]
        return self._prepare(take_rows(self.X, self.indices[positions], self.releaser))


@dataclass
class Run:
    """The state callbacks see and checkpoints keep: modules, optimiser, history, counters."""

    model: EmbeddingModel
    objective: Objective
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    history: dict = field(default_factory=dict)
    state: dict = field(default_factory=lambda: {"epoch": 0, "step": 0})
    stop_requested: bool = False


@dataclass
class TrainResult:
    encoder: torch.nn.Module
    head: torch.nn.Module | None
    objective: Objective
    history: dict


def adam(lr: float = 1e-3, weight_decay: float = 0.0) -> OptimizerFactory:
    """Optimiser factory: Adam over the given parameter groups (fused kernels where torch has them)."""
    return lambda groups: _fused(torch.optim.Adam, groups, lr=lr, weight_decay=weight_decay)


def sgd(lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 0.0) -> OptimizerFactory:
    """Optimiser factory: SGD with momentum over the given parameter groups."""
    return lambda groups: _fused(torch.optim.SGD, groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _fused(cls, groups, **kwargs) -> torch.optim.Optimizer:
    """The fused implementation: one kernel per step instead of one per tensor and operation (Adam's step
    took 40 % of an Olivetti training step on the CPU unfused); devices without it get the default."""
    try:
        return cls(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, **kwargs)


def fit_encoder(
    X: np.ndarray | LazyArray,
    labels: np.ndarray,
    *,
    encoder: torch.nn.Module,
    objective: Objective,
    sampler: BatchSampler,
    preprocessor: Any = None,
    indices: np.ndarray | None = None,
    head: torch.nn.Module | None = None,
    optimizer: OptimizerFactory | None = None,
    schedule: Callable[[int, int], float] | None = None,
    epochs: int = 30,
    callbacks: Sequence[Callable[[int, dict], bool | None]] = (),
    device: str | torch.device = "cpu",
    seed: int = 0,
    classes: np.ndarray | None = None,
) -> TrainResult:
    """Train `encoder` (and `head`, and the objective's own parameters) on X and return them with history.

    Parameters
    ----------
    X : array, memory map or lazy array-like of samples; `indices` selects the training rows of it.
    labels : int array, one mining label per training row (aligned with `indices` when given).
    sampler : yields arrays of positions into the training rows, one per batch; `set_epoch(e)` if present
        is called before each epoch, `len(sampler)` is the number of batches.
    preprocessor : fitted object with `transform(samples) -> rows` and `n_features_`, or None for rows.
    optimizer : factory `param_groups -> torch.optim.Optimizer` (default `adam()`); a group whose loss
        declares `lr_multiplier` (proxies) gets that multiple of the base rate.
    schedule : `factor(step, total_steps)` multiplying each group's base rate (default constant).
    callbacks : `f(epoch, logs) -> bool | None` after every epoch, or `norank.callbacks.Callback` objects.
    classes : the label values behind `labels` when they are codes (default: the labels' own values);
        torchrun ranks must agree on them.
    """
    device = torch.device(device)
    # Ranks given different data: one clear error on every rank, before the first training collective.
    distributed.check_agreement(
        classes,
        X.shape[1:],
        getattr(X, "dtype", None),
        len(sampler),
        labels=labels,
    )
    features = Features(X, preprocessor, indices, device)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    model = EmbeddingModel(encoder, head).to(device)
    seed_dropout(model, generator)
    objective = objective.to(device)
    run = Run(model, objective, _optimizer(optimizer, model, objective), generator)
    step = _Step(model, objective, run.optimizer, schedule or (lambda s, n: 1.0), epochs * len(sampler))
    _train(run, step, sampler, features, labels_t, epochs, as_callbacks(callbacks))
    return TrainResult(encoder, head, objective, run.history)


def _train(run: Run, step, sampler, features: Features, labels_t, epochs: int, callbacks: list) -> None:
    """The epoch loop: every callback sees every epoch's logs; any of them (on rank 0) can stop it."""
    for cb in callbacks:
        cb.on_train_begin(run)
    run.stop_requested = any(getattr(cb, "stopped", lambda: False)() for cb in callbacks)  # a resumed, stopped run
    while run.state["epoch"] < epochs and not run.stop_requested:
        epoch = run.state["epoch"]
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        run.model.train()
        logs = _run_epoch(step, sampler, features, labels_t, run)
        for key, value in logs.items():
            run.history.setdefault(key, []).append(value)
        run.state["epoch"] += 1
        stop = [bool(cb(epoch, logs)) for cb in callbacks]
        run.stop_requested = distributed.broadcast_flag(any(stop), labels_t.device)
    # A finite loss is checked at every step; the weights left by the last step are checked here.
    _check_parameters(run, run.history, run.state["epoch"] - 1)
    for cb in callbacks:
        cb.on_train_end(run)
    run.model.eval()


def _optimizer(factory, model, objective) -> torch.optim.Optimizer:
    groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    own = [p for p in objective.parameters() if p.requires_grad]
    if own:
        groups.append({"params": own, "lr_multiplier": float(getattr(objective.loss, "lr_multiplier", 1.0))})
    opt = (factory or adam())(groups)
    for group in opt.param_groups:
        group["base_lr"] = group["lr"] * group.get("lr_multiplier", 1.0)
    return opt


class _Step:
    """One optimiser step on one batch; returns the batch's detached terms."""

    def __init__(self, model, objective, optimizer, schedule, total_steps):
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.schedule, self.total_steps = schedule, max(int(total_steps), 1)
        self.rank, self.world = distributed.world()
        self.ddp = model
        if distributed.is_active():
            ids = [model_device(model).index] if model_device(model).type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def __call__(self, xb, yb, step: int, epoch: int) -> dict:
        factor = self.schedule(step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        z = distributed.gather_with_grad(self.ddp(xb))
        labels = distributed.gather(yb)
        inputs = distributed.gather(xb) if self.objective.needs_inputs else None
        total, terms = self.objective(z, labels, inputs)
        if not torch.isfinite(total):
            raise NonFiniteLossError(non_finite_message(terms, epoch))
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks; each rank back-propagates only into its own rows of the global
        # batch, so the world-size factor restores the global batch's gradient.
        (total * self.world if self.world > 1 else total).backward()
        try:
            self.optimizer.step()
        except RuntimeError as exc:  # Adam's step size overflows float32 before any NaN shows
            if "overflow" not in str(exc):
                raise
            raise NonFiniteLossError(non_finite_message(terms, epoch)) from None
        return terms


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def _run_epoch(step: _Step, sampler, features: Features, labels_t, run: Run) -> dict:
    sums: dict = {}
    n = 0
    epoch = run.state["epoch"]
    for positions in sampler:
        where = torch.from_numpy(np.asarray(positions)).to(labels_t.device)
        terms = step(features.rows(positions), labels_t[where], run.state["step"], epoch)
        for key, value in terms.items():
            sums[key] = sums[key] + value if key in sums else value
        run.state["step"] += 1
        n += 1
    logs = {key: float(value) / max(n, 1) for key, value in sums.items()}
    logs["lr"] = run.optimizer.param_groups[0]["lr"]
    return logs


def _check_parameters(run: Run, history: dict, epoch: int) -> None:
    """The last step can leave non-finite weights behind a finite loss (earlier ones show in the next loss)."""
    for p in (*run.model.parameters(), *run.objective.parameters()):
        if not torch.isfinite(p.detach()).all():
            last = {k: v[-1] for k, v in history.items() if v}
            raise NonFiniteLossError(non_finite_message(last, epoch))


def non_finite_message(terms: dict, epoch) -> str:
    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items() if k not in ("lr", "loss"))
    where = f"at epoch {epoch} ({shown})" if epoch is not None else "during training"
    return (
        f"The training loss or weights became non-finite {where}. Likely causes: a learning rate that is "
        "too high (try 10x lower), a margin too large for the distance, or unscaled input (use "
        "normalization='sample' or 'feature')."
    )
