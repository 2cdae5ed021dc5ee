"""`load_file`: a Dataset from a user's own .npy / .npz / .mat / .h5 / .hdf5 / .csv file."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from norank.datasets._base import DataPath, Dataset, encode_labels

X_KEYS = ("X", "images")
Y_KEYS = ("y", "target")
SUFFIXES = (".npy", ".npz", ".mat", ".h5", ".hdf5", ".csv")


def _pick(keys, wanted, defaults, what, path, required):
    """The key to read: ``wanted`` if given (must exist), else the first default present."""
    if wanted is not None:
        if wanted not in keys:
            raise ValueError(f"{path.name} has no {what} key {wanted!r}; keys present: {sorted(keys)}.")
        return wanted
    for key in defaults:
        if key in keys:
            return key
    if required:
        raise ValueError(
            f"{path.name} has none of the default {what} keys {list(defaults)}; keys present: "
            f"{sorted(keys)}. Pass {'x_key' if what == 'X' else 'y_key'}= to choose one."
        )
    return None


def _as_features(X, path):
    X = X if isinstance(X, np.ndarray) else np.asarray(X)  # keeps a np.memmap a memmap
    if X.dtype.kind not in "biuf":
        raise TypeError(
            f"X in {path.name} has dtype {X.dtype}, not numeric; store the features as numbers "
            "(labels go in a separate key / column)."
        )
    if X.ndim < 2:
        raise ValueError(f"X in {path.name} has shape {X.shape}; it must be (n_samples, d1, ...) with ndim >= 2.")
    return X


def _read_arrays(path, suffix):
    """Name -> array-like accessor for the keyed formats, plus the list of keys."""
    if suffix == ".npz":
        f = np.load(path, allow_pickle=False)
        return f, list(f.files), f.close
    if suffix == ".mat":
        import scipy.io

        try:
            f = scipy.io.loadmat(path)
        except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5 inside
            raise ValueError(f"{path.name} is a MATLAB v7.3 file; re-save it with save(..., '-v7') or as .h5.") from exc
        return f, [k for k in f if not k.startswith("__")], lambda: None
    import h5py

    f = h5py.File(path, "r")
    keys = []
    f.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None)
    return f, keys, f.close


def _text_or_numbers(arr):
    """Label-like arrays from HDF5 / MATLAB: bytes and MATLAB cell arrays become str arrays."""
    arr = np.asarray(arr)
    if arr.dtype.kind != "O":
        return arr
    flat = []
    for v in arr.ravel():
        if isinstance(v, bytes):  # h5py variable-length strings
            v = v.decode("utf-8")
        elif isinstance(v, np.ndarray):  # a MATLAB cell holds a 1-element char array
            v = str(v.ravel()[0]) if v.size else ""
        flat.append(str(v))
    return np.array(flat)


def _as_float(column):
    """The column as float64, or None when some cell is not a number (numpy parses column-wise).

    An empty cell is a missing value (NaN, as numpy's and pandas' CSV readers read it): it is never text, so
    a first row with an empty first cell stays a data row, and `fit` names the missing value itself.
    """
    try:
        return np.where(np.char.strip(column) == "", "nan", column).astype(np.float64)
    except ValueError:
        return None


def _column_index(y_key, header, width, path):
    """The label column: a header name, else an index (an int, or its text, as the CLI passes it)."""
    if header is not None and isinstance(y_key, str) and y_key in header:
        return header.index(y_key)
    index = y_key
    if isinstance(y_key, str) and re.fullmatch(r"[+-]?\d+", y_key.strip()):
        index = int(y_key)
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        if not -width <= index < width:
            raise ValueError(f"y_key={y_key!r} is out of range for {path.name}, which has {width} columns.")
        return int(index) % width
    present = header if header is not None else f"no header; use a column index 0..{width - 1}"
    raise ValueError(f"{path.name} has no label column {y_key!r}; columns: {present}.")


def _read_csv(path, y_key):
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise ValueError(f"{path.name} is empty; a CSV needs one row per sample.")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError(f"{path.name} has rows of different lengths; every row needs {width} cells.")
    cells = np.array(rows, dtype=str)
    # A header is a first row with a text cell above an all-numeric column.
    has_header = len(rows) > 1 and any(
        _as_float(cells[:1, c]) is None and _as_float(cells[1:, c]) is not None for c in range(width)
    )
    header = [c.strip() for c in rows[0]] if has_header else None
    body = cells[1:] if has_header else cells

    label_col = None if y_key is None else _column_index(y_key, header, width, path)
    feature_cols = [c for c in range(width) if c != label_col]
    if not feature_cols:
        raise ValueError(f"{path.name} has no feature columns besides the label column.")
    X = _as_float(body[:, feature_cols])
    if X is None:
        bad = next(c for c in feature_cols if _as_float(body[:, c]) is None)
        name = header[bad] if header is not None else bad
        raise TypeError(
            f"column {name!r} of {path.name} is not numeric; pass y_key={name!r} if it holds the labels, or remove it."
        )
    y = None
    if label_col is not None:
        empty = np.flatnonzero(np.char.strip(body[:, label_col]) == "")
        if len(empty):
            raise ValueError(
                f"data row {empty[0] + 1} of {path.name} has an empty label (column {label_col}); "
                "every sample needs a label: fill it in or drop the row."
            )
        y = _as_float(body[:, label_col])
        y = body[:, label_col] if y is None else y
    return X, y


def _checked_path(path: DataPath, x_key: str | None, mmap: bool) -> tuple[Path, str]:
    """(Path, lower-case suffix) of an existing file of a supported type; options that do not apply are refused."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}.")
    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unsupported file type {file.suffix!r} for {file.name}; use one of {', '.join(SUFFIXES)}.")
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {file}")
    if mmap and suffix != ".npy":
        raise ValueError(f"mmap=True needs a .npy file, got {suffix}; save X with np.save to memory-map it.")
    if suffix in (".npy", ".csv") and x_key is not None:
        raise ValueError(f"x_key is not used for {suffix} files; drop it.")
    return file, suffix


def _read_keyed(path, suffix, x_key, y_key):
    """(X, raw labels or None, the file's target_names or None) from a .npz / .mat / .h5 file."""
    store, keys, close = _read_arrays(path, suffix)
    try:
        xk = _pick(keys, x_key, X_KEYS, "X", path, required=True)
        yk = _pick(keys, y_key, Y_KEYS, "y", path, required=False)
        X = np.asarray(store[xk])  # h5py datasets are read here, before the file closes
        y_raw = None if yk is None else _text_or_numbers(store[yk])
        names = _text_or_numbers(store["target_names"]).ravel() if "target_names" in keys else None
    finally:
        close()
    return X, y_raw, names


def load_file(path: DataPath, x_key: str | None = None, y_key: str | int | None = None, mmap: bool = False) -> Dataset:
    """Load a labelled (or unlabelled) tensor stack from a file.

    Parameters
    ----------
    path : str or Path
        ``.npy`` (one array, X only), ``.npz``, ``.mat`` (MATLAB v7 and older), ``.h5`` / ``.hdf5``
        or ``.csv`` (numeric table, one row per sample).
    x_key, y_key : str, optional
        Keys of X and y in keyed files. Defaults: X from ``X`` or ``images``, y from ``y`` or
        ``target``; no y key means an unlabelled Dataset (``y=None``). For ``.csv``, ``y_key`` is the
        label column, by header name or index (an int, or its text such as ``"-1"``, which is how the
        CLI's ``--y-key`` reaches a file without a header; a header name wins over an index); all other
        columns are features. A header is a first row with a text cell above a numeric column; empty
        cells are missing values (NaN), never header text.
    mmap : bool, default=False
        ``.npy`` only: memory-map X read-only instead of reading it (out-of-core training); X then
        keeps its stored dtype.

    Returns
    -------
    Dataset
        String (or any non 0..C-1) labels are encoded to 0..C-1; ``target_names`` keeps the
        original values (or the file's ``target_names`` when y indexes it).
    """
    path, suffix = _checked_path(path, x_key, mmap)
    names = None
    if suffix == ".npy":
        if y_key is not None:
            raise ValueError(".npy files hold X only; store X and y together in a .npz to load labels.")
        X, y_raw = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False), None
    elif suffix == ".csv":
        X, y_raw = _read_csv(path, y_key)
    else:
        X, y_raw, names = _read_keyed(path, suffix, x_key, y_key)

    X = _as_features(X, path)
    if not mmap:
        X = X.astype(np.float32, copy=False)
    if y_raw is None:
        y, target_names = None, np.array([], dtype=str)
    else:
        y, target_names = encode_labels(y_raw, names)
        if len(y) != len(X):
            raise ValueError(f"{path.name}: y has {len(y)} labels but X has {len(X)} samples; they must match.")
    return Dataset(name=path.stem, X=X, y=y, target_names=target_names, meta={}, description=f"Loaded from {path}.")
