"""Datasets: real benchmark loaders, simulated image sets and a generic file loader.

``load(name)`` returns a :class:`Dataset` (``X`` float32 of shape (n, d1, ..., dk), ``y`` int64 in
0..C-1, ``target_names``, per-sample ``meta``). Real sets read the local copies documented in
docs/datasets.md from ``data_dir`` or ``$NORANK_DATA_DIR`` and fall back to the online fetchers.
"""

from __future__ import annotations

from norank.datasets._base import DataPath, Dataset, RandomState
from norank.datasets.connectivity import connectivity_from_timeseries, load_abide_timeseries_sample, triu_to_matrices
from norank.datasets.files import load_file
from norank.datasets.real import load_abide, load_digits, load_lfw, load_olivetti
from norank.datasets.simulated import make_crystal, make_galaxy

NAMES = ("olivetti", "lfw", "abide", "digits", "galaxy", "crystal", "galaxy-hard", "crystal-hard")
SIMULATED = ("galaxy", "crystal", "galaxy-hard", "crystal-hard")

__all__ = [
    "NAMES",
    "Dataset",
    "connectivity_from_timeseries",
    "load",
    "load_abide",
    "load_abide_timeseries_sample",
    "load_digits",
    "load_file",
    "load_lfw",
    "load_olivetti",
    "make_crystal",
    "make_galaxy",
    "triu_to_matrices",
]


def load(name: str, data_dir: DataPath | None = None, *, random_state: RandomState = 42) -> Dataset:
    """Load a named dataset.

    Parameters
    ----------
    name : {"olivetti", "lfw", "abide", "digits", "galaxy", "crystal", "galaxy-hard", "crystal-hard"}
    data_dir : str or Path, optional
        Folder holding the local copies (file names in docs/datasets.md); ``$NORANK_DATA_DIR`` is
        searched next. Real sets missing from both are downloaded by sklearn / nilearn, with a warning.
    random_state : int, None or numpy Generator, default=42
        Seed of the simulated sets; the real sets involve no randomness and do not use it.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> from norank.datasets import load
    >>> load("galaxy").X.shape
    (500, 64, 64)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {', '.join(NAMES)}; got {type(name).__name__}.")
    key = name.strip().lower()
    if key not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}.")
    if key in SIMULATED:
        make = make_galaxy if key.startswith("galaxy") else make_crystal
        return make(hard=key.endswith("-hard"), random_state=random_state)
    loader = {"olivetti": load_olivetti, "lfw": load_lfw, "abide": load_abide, "digits": load_digits}[key]
    return loader(data_dir)
