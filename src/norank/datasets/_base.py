"""The `Dataset` record and small helpers shared by the loaders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

ENV_VAR = "NORANK_DATA_DIR"

DataPath = str | os.PathLike[str]  # a file or folder, as a str or a Path
RandomState = int | np.random.Generator | None  # a seed, a Generator (advanced by the draw) or None


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled stack of tensors.

    Attributes
    ----------
    name : str
    X : ndarray of shape (n, d1, ..., dk)
        float32, except for a memory-mapped ``.npy`` file, which keeps its stored dtype.
    y : ndarray of shape (n,), int64 in 0..C-1, or None for an unlabelled file.
    target_names : ndarray of str, shape (C,)
        ``target_names[y[i]]`` names the class of sample ``i``; empty when ``y`` is None.
    meta : dict of str -> ndarray of shape (n,) (or (n, ...))
        Per-sample side information (ABIDE: site, sex, age, sub_id, file_id); may be empty.
    description : str
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    target_names: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.y is not None and len(self.y) != n:
            raise ValueError(f"y has {len(self.y)} entries but X has {n} samples; they must match.")
        for key, value in self.meta.items():
            if len(value) != n:
                raise ValueError(f"meta[{key!r}] has {len(value)} entries but X has {n} samples.")

    @property
    def n_classes(self) -> int:
        return 0 if self.y is None else len(self.target_names)

    def __repr__(self) -> str:
        labels = "unlabelled" if self.y is None else f"{self.n_classes} classes"
        return f"Dataset(name={self.name!r}, X={self.X.shape} {self.X.dtype}, {labels})"


def encode_labels(y_raw: ArrayLike, names: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Map any 1-D label array to int64 codes 0..C-1 and the matching class names.

    When ``names`` is given and ``y_raw`` holds integers indexing it (as in files that store
    ``target`` plus ``target_names``), the names follow the codes; otherwise the sorted unique
    values, as strings, are the names.
    """
    y_raw = np.asarray(y_raw)
    if y_raw.ndim == 2 and 1 in y_raw.shape:  # MATLAB and HDF5 often store labels as a column
        y_raw = y_raw.ravel()
    if y_raw.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y_raw.shape}; pass one label per sample.")
    if y_raw.dtype.kind == "f":
        if np.isnan(y_raw).any():
            raise ValueError("labels contain NaN; drop the unlabelled samples or load without y_key.")
        if np.all(y_raw == np.round(y_raw)):
            y_raw = y_raw.astype(np.int64)
    elif y_raw.dtype.kind == "b":
        y_raw = y_raw.astype(np.int64)
    elif y_raw.dtype.kind == "S":
        y_raw = np.char.decode(y_raw, "utf-8")
    elif y_raw.dtype.kind == "O":
        y_raw = np.array([str(v) for v in y_raw])
    elif y_raw.dtype.kind not in "iuU":
        raise TypeError(f"labels of dtype {y_raw.dtype} are not supported; use integers or strings.")
    if y_raw.dtype.kind == "U":
        y_raw = np.char.strip(y_raw)
    uniq, codes = np.unique(y_raw, return_inverse=True)
    if names is not None and y_raw.dtype.kind in "iu":
        names = np.asarray(names).astype(str)
        if uniq.min() >= 0 and uniq.max() < len(names):
            return codes.astype(np.int64), names[uniq]
    return codes.astype(np.int64), uniq.astype(str)


def candidate_dirs(data_dir: DataPath | None) -> list[Path]:
    """Folders to look in, in order: the explicit ``data_dir``, then ``$NORANK_DATA_DIR``."""
    dirs = []
    for d in (data_dir, os.environ.get(ENV_VAR) or None):
        if d is not None and Path(d) not in dirs:
            dirs.append(Path(d).expanduser())
    return dirs


def find_file(file_name: str, data_dir: DataPath | None) -> Path | None:
    """Path of ``file_name`` in the first folder that holds it, or None."""
    for d in candidate_dirs(data_dir):
        if (d / file_name).is_file():
            return d / file_name
    return None


def as_rng(random_state: RandomState) -> np.random.Generator:
    """A numpy Generator from an int, None or a Generator (never the global state)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be an int, None or a numpy Generator, got {type(random_state).__name__}.")
