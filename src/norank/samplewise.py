"""Per-sample numerics on chunks of a tensor stack: working precision, chunk sizes, symmetry, z-scores.

Shared by the preprocessor and the readers of memory maps: each works chunk by chunk so a stack of any
size is read once with bounded memory, and in the precision its values need (float64 for wide inputs, so
an offset far above the spread survives until centring).
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 4096  # most samples per chunk
_CHUNK_BYTES = 4 * 1024**2  # float64 bytes per chunk of samples, however large each sample is (cache-sized)
_SYMMETRY_RTOL = 1e-5  # asymmetry allowed in a "symmetric" matrix, relative to its largest absolute entry


def chunk_rows(values_per_sample: int) -> int:
    """Samples per chunk: at most CHUNK_ROWS, and about _CHUNK_BYTES of float64 values."""
    return max(1, min(CHUNK_ROWS, _CHUNK_BYTES // (8 * max(1, values_per_sample))))


def work_dtype(dtype) -> type:
    """float64 for inputs whose values float32 cannot hold exactly (float64, 32- and 64-bit integers), else
    float32: float64 data is centred before anything rounds it to float32."""
    dtype = np.dtype(dtype)
    wide = dtype.itemsize >= 8 if dtype.kind == "f" else dtype.kind in "iu" and dtype.itemsize >= 4
    return np.float64 if wide else np.float32


def asymmetric_samples(block) -> np.ndarray:
    """Positions in `block` (n, R, R) of the matrices that are not symmetric, each judged against its own
    largest absolute entry (so the decision does not depend on the data's scale)."""
    A = np.asarray(block, dtype=np.float64)
    gap = np.abs(A - A.transpose(0, 2, 1)).max((1, 2))
    return np.flatnonzero(gap > _SYMMETRY_RTOL * np.abs(A).max((1, 2)))


def first_asymmetric(X) -> int | None:
    """Index of the first sample of the square-matrix stack X that is not symmetric (None: all are);
    every sample is read, chunk by chunk."""
    step = chunk_rows(X.shape[1] * X.shape[2])
    for start in range(0, len(X), step):
        bad = asymmetric_samples(X[start : start + step])
        if len(bad):
            return start + int(bad[0])
    return None


def looks_symmetric(X) -> bool:
    """True when X is a stack of square matrices that are all symmetric."""
    if len(getattr(X, "shape", ())) != 3 or X.shape[1] != X.shape[2] or X.shape[1] < 2:
        return False
    return first_asymmetric(X) is None


def _standardise_wide(rows) -> np.ndarray:
    """Per-row z-scores in float64, after dividing each row by its largest absolute value: no square then
    overflows or underflows at any scale, and a constant row becomes exactly zero."""
    rows = np.array(rows, dtype=np.float64)  # a copy: changed in place
    peak = np.maximum(rows.max(1), -rows.min(1))[:, None]
    rows /= np.where(peak > 0, peak, 1.0)
    rows -= rows.mean(1, keepdims=True)
    std = np.sqrt(np.einsum("ij,ij->i", rows, rows) / rows.shape[1])[:, None]
    rows /= np.where(std > 0, std, 1.0)
    return rows


def standardise_samples(rows, out=None) -> np.ndarray:
    """Each row z-scored by its own mean and std, into `out` (float32; a new array when None).

    float32 rows are centred twice (the second pass removes the rounding error of the first mean, so a
    constant row becomes exactly zero and an offset far above the spread cancels); rows whose sum of squares
    overflows or underflows float32, and all wider rows, take the scale-free float64 path. No epsilon decides
    what counts as constant.
    """
    out = np.empty(rows.shape, np.float32) if out is None else out
    if rows.dtype != np.float32:
        out[...] = _standardise_wide(rows)
        return out
    centred = rows - rows.mean(1, keepdims=True)
    centred -= centred.mean(1, keepdims=True)
    with np.errstate(over="ignore", under="ignore"):
        squares = np.einsum("ij,ij->i", centred, centred)
    ok = np.isfinite(squares) & (squares > 1e-30)
    np.multiply(centred, (1.0 / np.sqrt(np.where(ok, squares, 1.0) / rows.shape[1]))[:, None], out=out)
    if not ok.all():
        out[~ok] = _standardise_wide(rows[~ok])
    return out
