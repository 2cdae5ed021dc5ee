"""Functional connectivity: ROI time series -> Ledoit-Wolf correlation matrices.

This is the estimate behind the ABIDE matrices (nilearn's ``ConnectivityMeasure(kind="correlation")``
defaults): each ROI series is z-scored, a Ledoit-Wolf shrunk covariance is fitted, and the covariance
is rescaled to a correlation. Shrinkage keeps the matrices well conditioned even when there are fewer
time points than ROIs, and constant (all-zero) ROIs get correlation 0 instead of NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from norank.datasets._base import DataPath, Dataset, find_file

TIMESERIES_FILE = "abide_pcp_cpac_filtnoglobal_ho_timeseries_sample.npz"


def connectivity_from_timeseries(series_list: Sequence[ArrayLike] | np.ndarray) -> np.ndarray:
    """Correlation matrices of a list of (T_k, R) time series, shape (n, R, R), float32.

    ``series_list`` may be a list of 2-D arrays (time points may differ per subject) or one 3-D array
    (n, T, R). Columns with zero variance are left at zero, so their correlations are 0.
    """
    from sklearn.covariance import ledoit_wolf

    if isinstance(series_list, np.ndarray) and series_list.ndim == 2:
        raise ValueError("got one 2-D array; pass a list of (T, R) arrays, e.g. [series], or a 3-D (n, T, R) array.")
    series = list(series_list)
    if not series:
        raise ValueError("series_list is empty; pass at least one (T, R) time-series array.")
    out = None
    for k, s in enumerate(series):
        x = np.asarray(s)
        if x.ndim != 2:
            raise ValueError(f"series {k} has shape {x.shape}; each must be 2-D (time points, ROIs).")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"series {k} has dtype {x.dtype}; time series must be numeric.")
        if out is None:
            out = np.empty((len(series), x.shape[1], x.shape[1]), dtype=np.float32)
        if x.shape[1] != out.shape[1]:
            raise ValueError(f"series {k} has {x.shape[1]} ROIs but series 0 has {out.shape[1]}; all must match.")
        if x.shape[0] < 2:
            raise ValueError(f"series {k} has {x.shape[0]} time point(s); a correlation needs at least 2.")
        x = x.astype(np.float64)  # a copy: the caller's array is never touched
        x -= x.mean(axis=0)
        std = x.std(axis=0, ddof=1)
        std[std < np.finfo(np.float64).eps] = 1.0  # constant ROI: stays all zeros
        x /= std
        cov = ledoit_wolf(x)[0]
        var = np.diag(cov)  # zero only when every ROI is constant
        inv_sd = np.divide(1.0, np.sqrt(var), out=np.zeros_like(var), where=var > 0)
        corr = cov * inv_sd[:, None] * inv_sd[None, :]
        np.fill_diagonal(corr, 1.0)
        out[k] = corr
    assert out is not None  # series is not empty
    return out


def triu_to_matrices(triu: ArrayLike, n_rois: int) -> np.ndarray:
    """Rebuild symmetric (n, R, R) matrices with unit diagonal from strict upper triangles (n, R(R-1)/2)."""
    triu = np.asarray(triu)
    if triu.ndim != 2 or triu.shape[1] != n_rois * (n_rois - 1) // 2:
        raise ValueError(f"expected shape (n, {n_rois * (n_rois - 1) // 2}) for {n_rois} ROIs, got {triu.shape}.")
    iu, ju = np.triu_indices(n_rois, k=1)
    M = np.zeros((len(triu), n_rois, n_rois), dtype=np.float32)
    M[:, iu, ju] = triu
    M[:, ju, iu] = triu
    M[:, np.arange(n_rois), np.arange(n_rois)] = 1.0
    return M


def load_abide_timeseries_sample(data_dir: DataPath | None = None) -> Dataset:
    """The 20-subject ABIDE time-series sample (one subject per site), as connectivity matrices.

    Reads ``abide_pcp_cpac_filtnoglobal_ho_timeseries_sample.npz`` from ``data_dir`` or
    ``$NORANK_DATA_DIR`` (no online fallback: the sample exists only as a local file). ``X`` holds
    ``connectivity_from_timeseries`` of the raw series; ``meta["timeseries"]`` keeps the series
    themselves (an object array of (T_k, 111) float32 arrays) and ``meta["index_in_corr_file"]`` the
    row of each subject in the full ABIDE file.
    """
    path = find_file(TIMESERIES_FILE, data_dir)
    if path is None:
        raise FileNotFoundError(
            f"{TIMESERIES_FILE} was not found; set NORANK_DATA_DIR (or pass data_dir) to a folder holding it."
        )
    with np.load(path) as f:
        ts, offsets = f["timeseries"], f["offsets"]
        series = [ts[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]
        dx = f["dx_group"]
        meta = {key: f[key].copy() for key in ("site", "sub_id", "file_id", "index_in_corr_file")}
    holder = np.empty(len(series), dtype=object)
    holder[:] = series
    meta["timeseries"] = holder
    return Dataset(
        name="abide-timeseries-sample",
        X=connectivity_from_timeseries(series),
        y=(dx == 1).astype(np.int64),  # DX_GROUP 1 = autism
        target_names=np.array(["control", "ASD"]),
        meta=meta,
        description="ABIDE PCP (C-PAC, filt_noglobal, HO atlas): 20 subjects, one per site, "
        "Ledoit-Wolf correlations computed from the raw ROI time series.",
    )
