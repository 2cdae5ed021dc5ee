"""Every `NoRankEmbedder` keyword in one declarative table: default, what it accepts, help text.

One table serves three readers, so they cannot drift apart: `fit` checks the estimator's parameters
against it once (scikit-learn's `_parameter_constraints` is the model), the CLI builds one `norank fit`
option per entry from it, and `load` validates a saved config against it before building anything.
Parameters that name a part (`loss`, `encoder`, `mining`, ...) read the part's own registry, so a new
loss is accepted everywhere by registering it once.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _registry(spec: str) -> Callable[[], tuple]:
    """Lazy names of a registry 'module:NAME', read when checked (registries import torch)."""
    module, attr = spec.split(":")
    return lambda: tuple(getattr(importlib.import_module(module), attr))


def _read(text: str, cast: Callable[[str], Any], what: str):
    try:
        return cast(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {what}.") from None


class Constraint:
    """What one parameter accepts: `check` raises one clear error, `parse` reads CLI text."""

    def check(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        return text

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Constraint):
    options: tuple = ()
    registry: Callable[[], tuple] | None = None
    objects: str = ""  # non-empty: a callable object is accepted too; the text says what it is called with

    def names(self) -> tuple:
        return tuple(self.options) + (self.registry() if self.registry else ())

    def check(self, name, value):
        if self.objects and callable(value) and not isinstance(value, str):
            return
        names = self.names()
        if isinstance(value, str) and value in names:
            return
        if not isinstance(value, str) and any(value is o or (type(value) is type(o) and value == o) for o in names):
            return
        extra = f", or a callable {self.objects}" if self.objects else ""
        raise ValueError(f"{name}={value!r} is not supported; use one of {names}{extra}.")

    def parse(self, text):
        lowered = {"true": True, "false": False, "none": None}
        for option in self.names():
            if not isinstance(option, str) and text.lower() in lowered and lowered[text.lower()] is option:
                return option
        return text

    def describe(self):
        return " | ".join(str(o) for o in self.names()) + (" | object" if self.objects else "")


@dataclass(frozen=True)
class Integer(Constraint):
    low: int = 1
    high: int | None = None

    def check(self, name, value):
        bound = f" between {self.low} and {self.high}" if self.high is not None else f" >= {self.low}"
        if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}={value!r} must be an integer{bound}.")
        if int(value) < self.low or (self.high is not None and int(value) > self.high):
            raise ValueError(f"{name}={value!r} must be an integer{bound}.")

    def parse(self, text):
        return _read(text, int, "an integer")

    def describe(self):
        return f"int >= {self.low}" if self.high is None else f"int in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Real(Constraint):
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # why the interval is what it is, appended to the error

    def interval(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"

    def check(self, name, value):
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}={value!r} must be a finite number in {self.interval()}.")
        v = float(value)
        above = v > self.low if self.low_open else v >= self.low
        inside = above and (v < self.high if self.high_open else v <= self.high)
        if not math.isfinite(v) or not inside:
            raise ValueError(f"{name}={value!r} must be a finite number in {self.interval()}{self.note}.")

    def parse(self, text):
        return _read(text, float, "a number")

    def describe(self):
        return f"float in {self.interval()}"


@dataclass(frozen=True)
class Boolean(Constraint):
    def check(self, name, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}={value!r} must be True or False.")

    def parse(self, text):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r}: give true or false.")
        return text.lower() == "true"

    def describe(self):
        return "true | false"


@dataclass(frozen=True)
class Sizes(Constraint):
    """A tuple of positive layer widths (an int is one layer)."""

    def check(self, name, value):
        sizes = (value,) if isinstance(value, numbers.Integral) else value
        ok = isinstance(sizes, (tuple, list)) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) and int(s) > 0 for s in sizes
        )
        if not ok:
            raise ValueError(f"{name}={value!r} must be a tuple of positive integers, e.g. (512,) or (1024, 256).")

    def parse(self, text):
        try:
            return tuple(int(v) for v in re.split(r"[,\s]+", text.strip("()[] ")) if v)
        except ValueError:
            raise ValueError(f"{text!r}: give comma-separated integers, e.g. 512,256.") from None

    def describe(self):
        return "ints, comma-separated"


@dataclass(frozen=True)
class Optional(Constraint):
    inner: Constraint = field(default_factory=Boolean)

    def check(self, name, value):
        if value is not None:
            self.inner.check(name, value)

    def parse(self, text):
        return None if text.lower() in ("none", "null") else self.inner.parse(text)

    def describe(self):
        return f"{self.inner.describe()} | none"


@dataclass(frozen=True)
class Anything(Constraint):
    """A runtime-only value checked where it is used (a seed, a folder, a list of callbacks)."""

    what: str = "value"
    test: Callable[[Any], bool] = lambda v: True
    reader: Callable[[str], Any] = str
    error: type = TypeError

    def check(self, name, value):
        if not self.test(value):
            raise self.error(f"{name}={value!r} must be {self.what}.")

    def parse(self, text):
        return None if text.lower() in ("none", "null") else _read(text, self.reader, self.what)

    def describe(self):
        return self.what


def _is_seed(v) -> bool:
    return (
        v is None
        or isinstance(v, np.random.RandomState)
        or (isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and 0 <= int(v) < 2**32)
    )


def _is_device(v) -> bool:
    return isinstance(v, str) and (v in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", v) is not None)


def _is_callbacks(v) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and all(callable(f) for f in v))


@dataclass(frozen=True)
class Param:
    default: Any
    constraint: Constraint
    help: str
    cli: bool = True  # an option of `norank fit`
    saved: bool = True  # part of a saved model's config (runtime-only values are not)


_NAMES = "norank.losses:LOSSES"
PARAMETERS: dict[str, Param] = {
    "embedding_dim": Param(64, Integer(1), "Size m of the embedding (rows lie on the unit sphere of R^m)."),
    "hidden_layer_sizes": Param((512,), Sizes(), "Widths of the hidden ReLU layers of the MLP."),
    "encoder": Param(
        "auto",
        Choice(("auto",), _registry("norank.encoders:ENCODERS")),
        "auto, mlp, conv or transformer; auto decides from the data (see the docstring).",
    ),
    "dropout": Param(0.0, Real(0.0, 1.0, high_open=True), "Dropout after each hidden layer."),
    "layer_norm": Param(False, Boolean(), "LayerNorm after each hidden linear layer."),
    "projection_head": Param(False, Boolean(), "Train the loss on g(f(x)) with a small head g."),
    "loss": Param(
        "triplet",
        Choice((), _registry(_NAMES), objects="(embeddings, labels) -> scalar tensor"),
        "The metric-learning loss: a name or any callable (embeddings, labels) -> scalar tensor.",
    ),
    "miner": Param(
        None,
        Optional(Choice((), None, objects="(embeddings, labels) -> index tuple")),
        "A miner object whose index tuples the loss consumes (None: the loss's own mining).",
        cli=False,
    ),
    "margin": Param(2.0, Real(0.0), "Triplet margin alpha, in units of `distance`."),
    "distance": Param(
        "euclidean", Choice((), _registry("norank.distances:DISTANCES")), "Distance of the triplet loss."
    ),
    "mining": Param("semihard", Choice((), _registry("norank.mining:MINERS")), "Triplet mining in each batch."),
    "diversity_weight": Param(0.0, Real(0.0), "lambda1, decorrelation penalty against dimensional collapse."),
    "uniformity_weight": Param(0.0, Real(0.0), "lambda2, uniformity penalty on the sphere."),
    "uniformity_t": Param(2.0, Real(0.0, low_open=True), "Temperature t of the uniformity penalty."),
    "local_weight": Param(0.0, Real(0.0), "lambda3, input-space neighbours stay close."),
    "global_weight": Param(0.0, Real(0.0), "lambda4, pairwise distances stay correlated with the input's."),
    "local_neighbors": Param(5, Integer(1), "Neighbours of the local term."),
    "optimizer": Param("adam", Choice(("adam", "sgd")), "Optimiser."),
    "learning_rate": Param(0.001, Real(0.0, low_open=True), "Base learning rate eta0."),
    "momentum": Param(0.9, Real(0.0, 1.0, high_open=True), "SGD momentum (ignored by Adam)."),
    "weight_decay": Param(0.0, Real(0.0), "L2 weight decay."),
    "schedule": Param(
        "cosine",
        Choice((), _registry("norank.schedules:SCHEDULES")),
        "Learning-rate schedule: cosine, robbins_monro or constant.",
    ),
    "schedule_tau": Param(100.0, Real(0.0, low_open=True), "Robbins-Monro tau (steps)."),
    "schedule_kappa": Param(
        0.75, Real(0.5, 1.0, low_open=True, note=" (the Robbins–Monro conditions)"), "Robbins-Monro kappa in (0.5, 1]."
    ),
    "epochs": Param(30, Integer(1), "Passes over the data."),
    "batch_size": Param(128, Integer(4), "Samples per P x K batch."),
    "samples_per_class": Param(4, Integer(2), "K, samples of each class in a batch."),
    "class_sampling": Param(
        "uniform",
        Choice((), _registry("norank.sampling:CLASS_SAMPLING")),
        "How batch classes are drawn: uniform, sqrt or proportional.",
    ),
    "normalization": Param(
        "sample",
        Choice((), _registry("norank.preprocessing:NORMALIZATIONS")),
        "Per-sample z-score, per-feature standardisation, tangent space or none.",
    ),
    "tangent_metric": Param(
        "riemann",
        Choice((), _registry("norank.tangent:METRICS")),
        "Metric of the reference mean and log map of normalization='tangent'.",
    ),
    "symmetric": Param("auto", Choice(("auto", True, False)), "Keep the upper triangle of symmetric matrices."),
    "fisher_z": Param(False, Boolean(), "Fisher z = artanh(r) of the upper triangle."),
    "pca_components": Param(None, Optional(Integer(1)), "Project rows onto this many principal components."),
    "validation_fraction": Param(0.0, Real(0.0, 0.5, high_open=True), "Share held out for early stopping."),
    "n_iter_no_change": Param(10, Integer(1), "Epochs without validation improvement before stopping."),
    "callbacks": Param(
        None,
        Anything("a list of callables f(epoch, logs) -> bool | None", _is_callbacks),
        "Called after every epoch; True stops training.",
        cli=False,
        saved=False,
    ),
    "checkpoint_dir": Param(
        None,
        Anything("a folder path or None", lambda v: v is None or isinstance(v, (str, os.PathLike))),
        "Save a checkpoint each epoch and resume from it.",
        saved=False,
    ),
    "device": Param(
        "auto",
        Anything("'auto', 'cpu', 'cuda' or 'cuda:N'", _is_device, error=ValueError),
        "auto, cpu, cuda or cuda:N.",
    ),
    "random_state": Param(
        None, Anything("None, an integer in [0, 2**32) or a RandomState", _is_seed, int), "Seed of every random choice."
    ),
    "verbose": Param(0, Integer(0), "1 shows a progress bar.", saved=False),
}


def check_params(params: dict) -> None:
    """Check every parameter against the table, then the rules that tie several together."""
    for name, param in PARAMETERS.items():
        param.constraint.check(name, params[name])
    if params["batch_size"] < 2 * params["samples_per_class"]:
        raise ValueError(
            f"batch_size={params['batch_size']} holds fewer than 2 classes of samples_per_class="
            f"{params['samples_per_class']}; raise batch_size or lower samples_per_class."
        )
    if params["pca_components"] is not None and params["encoder"] == "conv":
        raise ValueError(
            "encoder='conv' needs the pixel grid, which pca_components replaces by principal components; "
            "use encoder='mlp' with pca_components, or pca_components=None with the conv encoder."
        )
    if params["fisher_z"] and params["symmetric"] is False:
        raise ValueError("fisher_z=True applies to symmetric correlation matrices; pass symmetric=True or 'auto'.")
