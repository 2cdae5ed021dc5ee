"""Build the training core's parts from `NoRankEmbedder`'s keywords.

The estimator validates its parameters once (norank.params), then this module turns them into explicit
parts — a validation split, a fitted preprocessor, the encoder, the objective, the sampler, an optimiser
factory, a schedule and callbacks — which `norank.training.fit_encoder` trains. Nothing here reads an
estimator: every function takes the parameter dict.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from norank import distributed
from norank.callbacks import Checkpoint, EarlyStopping, ProgressBar, fingerprint
from norank.encoders import build_encoder, build_head
from norank.lazy import Rows
from norank.losses import make_loss
from norank.objective import Objective
from norank.preprocessing import TensorPreprocessor
from norank.regularizers import Diversity, GlobalPreservation, LocalPreservation, Uniformity
from norank.sampling import ClassBalancedBatchSampler
from norank.schedules import schedule_factor
from norank.splits import stratified_split, stratified_subset
from norank.training import Features, adam, sgd

RUNTIME_ONLY = ("verbose", "checkpoint_dir", "device", "callbacks")  # settings that leave the weights alone
EARLY_STOPPING_REFERENCES = 2000  # training rows the validation rows are classified against, each epoch


@dataclass
class Plan:
    """Everything `fit_encoder` needs, plus what the estimator keeps (preprocessor, encoder kind)."""

    kwargs: dict
    preprocessor: TensorPreprocessor
    kind: str
    selection: dict = field(default_factory=dict)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use device='cpu'.")
    return torch.device(device)


def seed_of(random_state) -> int:
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def plan_training(
    p: dict, X, classes: np.ndarray, codes: np.ndarray, lazy: bool, kind: str, seed: int, selection: dict | None = None
) -> Plan:
    """The parts of one fit of the encoder `kind` on (X, codes) under parameters `p`; `classes` are the
    label values behind the codes (ranks of a torchrun fit must agree on them)."""
    device = resolve_device(p["device"])
    train_idx, val_idx = validation_split(codes, p["validation_fraction"], seed)
    pre = TensorPreprocessor(
        p["normalization"],
        p["symmetric"],
        p["fisher_z"],
        n_components=p["pca_components"],
        tangent_metric=p["tangent_metric"],
    )
    pre.fit(Rows(X, train_idx) if lazy or len(val_idx) else X)
    n_classes = int(codes.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    encoder = build_encoder(
        kind,
        pre.n_features_,
        pre.input_shape_,
        tuple(np.atleast_1d(p["hidden_layer_sizes"])),
        p["embedding_dim"],
        p["dropout"],
        p["layer_norm"],
        generator=generator,
        device=device,
    )
    head = build_head(p["embedding_dim"], generator=generator, device=device) if p["projection_head"] else None
    train_codes = codes[train_idx]
    sampler = make_sampler(p, train_codes, seed)
    callbacks = make_callbacks(p, X, codes, pre, train_idx, val_idx, device, seed)
    kwargs = dict(
        labels=train_codes,
        encoder=encoder,
        head=head,
        objective=make_objective(p, n_classes, generator),
        sampler=sampler,
        preprocessor=pre,
        indices=train_idx,
        optimizer=make_optimizer(p),
        schedule=make_schedule(p),
        epochs=p["epochs"],
        callbacks=callbacks,
        device=device,
        seed=seed,
        classes=classes,
    )
    return Plan(kwargs, pre, kind, selection or {})


def validation_split(codes: np.ndarray, fraction: float, seed: int):
    if fraction <= 0:
        return np.arange(len(codes)), np.empty(0, np.int64)
    train, val = stratified_split(codes, fraction, np.random.default_rng(seed), min_train=2, min_test=0)
    if len(val) == 0:
        raise ValueError(
            f"validation_fraction={fraction} holds out no sample (each class keeps at least 2 for training), so "
            "early stopping has nothing to score; raise validation_fraction or set it to 0."
        )
    return train, val


def make_objective(p: dict, n_classes: int, generator: torch.Generator) -> Objective:
    # The caller's loss and miner objects are copied, never trained in place (scikit-learn's rule for params).
    loss, miner = copy.deepcopy(p["loss"]), copy.deepcopy(p["miner"])
    name = loss if isinstance(loss, str) else None
    if name is not None:
        loss = make_loss(
            name,
            n_classes=n_classes,
            embedding_dim=p["embedding_dim"],
            margin=p["margin"],
            distance=p["distance"],
            mining=p["mining"],
            generator=generator,
        )
    regularizers = [
        (p["diversity_weight"], Diversity()),
        (p["uniformity_weight"], Uniformity(p["uniformity_t"])),
        (p["local_weight"], LocalPreservation(p["local_neighbors"])),
        (p["global_weight"], GlobalPreservation()),
    ]
    return Objective(loss, miner, regularizers, name=name)


def make_sampler(p: dict, train_codes: np.ndarray, seed: int) -> ClassBalancedBatchSampler:
    """P×K batches; with fewer classes than batch_size // samples_per_class, K grows so batches keep their
    size."""
    rank, world = distributed.world()
    n_classes = len(np.unique(train_codes))
    classes_per_batch = min(max(2, p["batch_size"] // p["samples_per_class"]), n_classes)
    samples_per_class = max(p["samples_per_class"], p["batch_size"] // classes_per_batch)
    return ClassBalancedBatchSampler(
        train_codes,
        classes_per_batch,
        samples_per_class,
        class_sampling=p["class_sampling"],
        seed=seed,
        num_replicas=world,
        rank=rank,
    )


def make_optimizer(p: dict):
    if p["optimizer"] == "sgd":
        return sgd(p["learning_rate"], p["momentum"], p["weight_decay"])
    return adam(p["learning_rate"], p["weight_decay"])


def make_schedule(p: dict):
    name, tau, kappa = p["schedule"], p["schedule_tau"], p["schedule_kappa"]
    return lambda step, total: schedule_factor(name, step, total, tau, kappa)


def make_callbacks(p: dict, X, codes, pre, train_idx, val_idx, device, seed: int) -> list:
    callbacks: list = []
    if len(val_idx):
        share = min(1.0, EARLY_STOPPING_REFERENCES / len(train_idx))
        ref_idx = train_idx[stratified_subset(codes[train_idx], share, seed, min_per_class=1)]
        val, refs = Features(X, pre, val_idx, device), Features(X, pre, ref_idx, device)
        callbacks.append(
            EarlyStopping(
                lambda: val.rows(np.arange(len(val))),
                codes[val_idx],
                lambda: refs.rows(np.arange(len(refs))),
                codes[ref_idx],
                p["n_iter_no_change"],
            )
        )
    if p["checkpoint_dir"] is not None:
        settings = {k: v for k, v in p.items() if k not in RUNTIME_ONLY}
        callbacks.append(Checkpoint(p["checkpoint_dir"], fingerprint(settings, X, codes)))
    if p["verbose"]:
        callbacks.append(ProgressBar(p["epochs"]))
    return [*callbacks, *(p["callbacks"] or ())]


def warn_if_collapsed(history: dict) -> None:
    spread = history.get("embedding_spread")
    if spread and spread[-1] < 1e-3:
        warnings.warn(
            "The embeddings collapsed to a point (mean pairwise distance < 1e-3); raise diversity_weight or "
            "uniformity_weight, or lower the learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )
