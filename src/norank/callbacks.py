"""Per-epoch hooks of the training core: user callbacks, early stopping, checkpoints, the progress bar.

One mechanism: after every epoch the core calls each callback as ``f(epoch, logs)``; ``logs`` holds the
epoch's loss terms and diagnostics (early stopping adds ``val_knn_accuracy`` to them and to history); a
callback that returns True stops training. A plain function is a callback. The built-in ones also see the
run at its start and end (`Callback`), which is how a checkpoint restores a run and early stopping restores
the best weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from norank import distributed

CHECKPOINT_FILE = "checkpoint.pt"
_HASH_CHUNK_BYTES = 64 * 1024**2


class Callback:
    """Base of the built-in callbacks; plain functions ``f(epoch, logs) -> bool | None`` work as they are."""

    def on_train_begin(self, run) -> None:
        pass

    def __call__(self, epoch: int, logs: dict) -> bool | None:
        return None

    def on_train_end(self, run) -> None:
        pass


class _Function(Callback):
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, epoch, logs):
        return self.fn(epoch, logs)


def as_callbacks(callbacks) -> list[Callback]:
    out = []
    for cb in callbacks or ():
        if not callable(cb):
            raise TypeError(f"callback {cb!r} is not callable; pass functions f(epoch, logs) -> bool | None.")
        out.append(cb if isinstance(cb, Callback) else _Function(cb))
    return out


class EarlyStopping(Callback):
    """Stop when the held-out 1-NN accuracy has not improved for `patience` epochs, then restore the best
    weights. `rows()` gives the preprocessed validation rows and `references()` a sample of training rows;
    each validation row is classified by its nearest reference, so one validation sample per class is
    enough (leave-one-out scoring inside the validation part needs two)."""

    def __init__(self, rows, labels, references, reference_labels, patience: int = 10):
        self.rows, self.labels, self.patience = rows, np.asarray(labels), int(patience)
        self.references, self.reference_labels = references, np.asarray(reference_labels)

    def on_train_begin(self, run):
        self.run = run
        run.state.setdefault("early_stopping", {"best": -1.0, "stale": 0, "best_state": None})

    def __call__(self, epoch, logs):
        from norank.metrics import knn_accuracy

        encoder = self.run.model.encoder
        encoder.eval()
        with torch.no_grad():
            z, refs = encoder(self.rows()).cpu().numpy(), encoder(self.references()).cpu().numpy()
        encoder.train()
        score = knn_accuracy(refs, self.reference_labels, z, self.labels)
        logs["val_knn_accuracy"] = score
        self.run.history.setdefault("val_knn_accuracy", []).append(score)
        state = self.run.state["early_stopping"]
        if score > state["best"]:
            state.update(best=score, stale=0)
            state["best_state"] = {k: v.detach().clone() for k, v in self.run.model.state_dict().items()}
        else:
            state["stale"] += 1
        state["stopped"] = state["stale"] >= self.patience  # kept by a checkpoint: a resumed fit stays stopped
        return state["stopped"]

    def stopped(self) -> bool:
        return bool(self.run.state["early_stopping"].get("stopped", False))

    def on_train_end(self, run):
        best = run.state["early_stopping"]["best_state"]
        if best is not None:
            run.model.load_state_dict(best)


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the named loss terms (main process only)."""

    def __init__(self, epochs: int):
        self.epochs = int(epochs)
        self.bar = None

    def on_train_begin(self, run):
        if distributed.is_main_process():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, initial=run.state["epoch"], desc="norank fit", unit="epoch")

    def __call__(self, epoch, logs):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k != "lr"})

    def on_train_end(self, run):
        if self.bar is not None:
            self.bar.close()


def fingerprint(params: dict, X, labels) -> str:
    """Digest of the settings and of every value of the data (memory maps and lazy inputs read in chunks, one
    pass), so a checkpoint resumes only the same run on the same data."""
    digest = hashlib.blake2b(json.dumps(params, sort_keys=True, default=repr).encode(), digest_size=32)
    digest.update(repr((tuple(X.shape), str(getattr(X, "dtype", "")))).encode())
    row_bytes = max(int(np.prod(X.shape[1:])) * 8, 1)
    step = max(1, _HASH_CHUNK_BYTES // row_bytes)
    for start in range(0, len(X), step):
        digest.update(np.ascontiguousarray(np.asarray(X[start : start + step])).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(labels)).tobytes())
    return digest.hexdigest()


class Checkpoint(Callback):
    """The run's state on disk after every epoch; a later fit with the same fingerprint resumes from it.

    Each writer saves under a unique temporary name and renames it into place, so concurrent fits sharing
    a folder never trip over each other's files and a kill never leaves a torn checkpoint."""

    def __init__(self, directory, fingerprint: str):
        self.dir = Path(directory)
        self.fingerprint = fingerprint

    def on_train_begin(self, run):
        self.run = run
        path = self.dir / CHECKPOINT_FILE
        if not path.is_file():
            return
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as exc:  # a foreign or damaged file: start afresh rather than fail
            warnings.warn(
                f"Ignoring unreadable checkpoint {path} ({exc}); training from scratch.", RuntimeWarning, stacklevel=2
            )
            return
        if not isinstance(payload, dict) or payload.get("fingerprint") != self.fingerprint:
            warnings.warn(
                f"The checkpoint in {self.dir} belongs to other settings or data; training from scratch "
                "(it is overwritten; use another checkpoint_dir to keep it).",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        run.model.load_state_dict(payload["model"])
        run.objective.load_state_dict(payload["objective"])
        run.optimizer.load_state_dict(payload["optimizer"])
        run.history.update({k: list(v) for k, v in payload["history"].items()})
        run.state.update(payload["state"])
        run.generator.set_state(payload["generator"])

    def __call__(self, epoch, logs):
        if not distributed.is_main_process():
            return
        run = self.run
        payload = {
            "fingerprint": self.fingerprint,
            "model": run.model.state_dict(),
            "objective": run.objective.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "history": run.history,
            "state": run.state,
            "generator": run.generator.get_state(),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=CHECKPOINT_FILE + ".", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
            os.replace(tmp, self.dir / CHECKPOINT_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
