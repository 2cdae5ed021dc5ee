"""Symmetric positive-definite matrices → tangent-space vectors at a reference mean (pyRiemann).

Why: covariance and correlation matrices lie on the cone of SPD matrices, where entry-wise differences
are distorted; the logarithmic map at a mean of the training matrices flattens the cone around that
mean, so linear models and distances on the resulting vectors respect its geometry (Varoquaux et al.
2010, Barachant et al. 2013; Dadi et al. 2019 found it the best connectome representation). Each matrix
becomes the upper triangle of its log-mapped matrix, diagonal included, with √2 weights off the diagonal
(pyRiemann's `upper`), so Euclidean norms of the vectors equal Frobenius norms in the tangent space.

Regularisation. A region whose signal is constant has an all-zero row and column (nothing to correlate),
which makes the matrix singular; its diagonal entry is set to the mean of the matrix's other diagonal
entries (1 for correlation matrices), the value the Ledoit–Wolf path of
`norank.datasets.connectivity_from_timeseries` gives such a region, so the region reads as unit variance
and uncorrelated. Nothing else is changed: a matrix that is still not positive definite (not symmetric,
a negative eigenvalue, or a condition number above 1e10, as for sample covariances of fewer time points
than regions) is refused, since adding ε·I to a rank-deficient matrix makes its log eigenvalues depend
on ε alone. ABIDE's matrices (Ledoit–Wolf correlations) are positive definite as stored: their constant
regions already carry a unit diagonal.
"""

from __future__ import annotations

import numpy as np

METRICS = ("riemann", "logeuclid", "euclid")
# Riemannian (affine-invariant) by measurement: on ABIDE (tuning seeds 100-104, docs/defaults.md) it gave
# tangent_logistic a higher ROC-AUC than the log-Euclidean metric on every seed (0.737 against 0.710, the
# same accuracy); it is also Dadi et al.'s and nilearn's reference. Its mean costs ~17x the log-Euclidean one
# (9.8 s against 0.6 s of CPU for 610 ABIDE matrices).
DEFAULT_METRIC = "riemann"
MAX_CONDITION = 1e10  # beyond this the smallest log eigenvalue is dominated by rounding
CHUNK_BYTES = 64 * 1024**2  # float64 matrices mapped per chunk
MEAN_IN_MEMORY_BYTES = 2 * 1024**3  # larger training stacks are averaged by streaming over chunks
_SYM_RTOL = 1e-5
_RIEMANN_TOL, _RIEMANN_MAXITER = 10e-9, 50  # pyRiemann's mean_riemann defaults


def _ops():
    """pyRiemann's matrix functions under their 0.11+ names, or the older `utils` ones."""
    try:
        from pyriemann.geometry.base import expm, invsqrtm, logm, sqrtm
        from pyriemann.geometry.mean import gmean
        from pyriemann.geometry.tangentspace import tangent_space
    except ImportError:  # pyRiemann < 0.11. (In 0.12 the deprecated alias utils.mean.mean_covariance
        # ignores its `metric` and always returns the Riemannian mean, so it is used only before 0.11.)
        from pyriemann.utils.base import expm, invsqrtm, logm, sqrtm
        from pyriemann.utils.mean import mean_covariance as gmean
        from pyriemann.utils.tangentspace import tangent_space
    return gmean, tangent_space, logm, expm, sqrtm, invsqrtm


def check_metric(metric, name: str = "tangent_metric") -> str:
    """`metric` when it is one of METRICS; one error naming the choices otherwise."""
    if metric not in METRICS:
        raise ValueError(f"{name}={metric!r} is not supported; use one of {METRICS}.")
    return metric


def check_matrix_shape(shape) -> int:
    """R for samples of shape (R, R); one error naming the fix otherwise."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(
            f"normalization='tangent' needs a stack of symmetric positive-definite matrices (n, R, R); got "
            f"samples of shape {shape}. Pass covariance or correlation matrices (time series go through "
            "norank.datasets.connectivity_from_timeseries first), or use normalization='feature'."
        )
    return shape[0]


def chunk_rows(n_rois: int) -> int:
    """Matrices per chunk, so one chunk of float64 matrices stays near CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (8 * n_rois * n_rois))


def regularize_spd(C, offset: int = 0) -> np.ndarray:
    """A float64 copy of the (n, R, R) stack with constant regions given a diagonal; SPD checked.

    `offset` is the index of C[0] in the caller's stack, so errors name the caller's sample.
    """
    C = np.array(C, dtype=np.float64)  # always a copy: the caller's array is never modified
    check_matrix_shape(C.shape[1:])
    if not np.isfinite(C).all():
        k = offset + int(np.flatnonzero(~np.isfinite(C).all(axis=(1, 2)))[0])
        raise ValueError(f"Matrix {k} contains NaN or infinity; replace them (np.nan_to_num) or drop that sample.")
    asym = np.abs(C - C.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = asym > _SYM_RTOL * np.maximum(np.abs(C).max(axis=(1, 2)), np.finfo(np.float64).tiny)
    if bad.any():
        raise ValueError(
            f"Matrix {offset + int(np.flatnonzero(bad)[0])} is not symmetric; normalization='tangent' needs "
            "symmetric positive-definite matrices (covariances or correlations)."
        )
    C = 0.5 * (C + C.transpose(0, 2, 1))
    _fill_constant_regions(C, offset)
    eig = np.linalg.eigvalsh(C)
    bad = eig[:, 0] <= eig[:, -1] / MAX_CONDITION
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Matrix {offset + k} is not positive definite (eigenvalues from {eig[k, 0]:.3g} to {eig[k, -1]:.3g}); "
            "pass shrunk estimates, e.g. Ledoit-Wolf correlations from "
            "norank.datasets.connectivity_from_timeseries or sklearn.covariance.LedoitWolf."
        )
    return C


def _fill_constant_regions(C, offset: int) -> None:
    """In place: a zero row (and column) gets the mean of the other diagonal entries on its diagonal."""
    zero = ~np.any(C != 0, axis=2)  # (n, R): rows without a single non-zero entry
    for k in np.flatnonzero(zero.any(axis=1)):
        diag = np.diagonal(C[k])
        if zero[k].all():
            raise ValueError(
                f"Matrix {offset + k} is all zeros: every region is constant, so it has no tangent vector; "
                "drop that sample."
            )
        idx = np.flatnonzero(zero[k])
        C[k, idx, idx] = diag[~zero[k]].mean()


def _chunks(X, n_rois: int):
    """(offset, regularised float64 chunk) over the stack; X may be lazy (memory-mapped, Rows)."""
    step = chunk_rows(n_rois)
    for start in range(0, len(X), step):
        yield start, regularize_spd(np.asarray(X[start : start + step]), start)


def fit_reference(X, metric: str = DEFAULT_METRIC, memory_bytes: int = MEAN_IN_MEMORY_BYTES) -> np.ndarray:
    """The `metric` mean of the training matrices (after regularisation): the tangent-space reference.

    Stacks up to `memory_bytes` (as float64) are averaged by pyRiemann's `gmean` at once; larger ones by
    streaming over chunks with the same algorithms (exact for "euclid" and "logeuclid"; pyRiemann's
    Riemannian gradient descent, its tolerance and step rule, for "riemann").
    """
    check_metric(metric)
    n_rois = check_matrix_shape(X.shape[1:])
    if len(X) < 1:
        raise ValueError("normalization='tangent' needs at least one training matrix to fit its reference.")
    gmean, _, logm, expm, _, _ = _ops()
    if len(X) * n_rois * n_rois * 8 <= memory_bytes:
        return np.asarray(gmean(np.concatenate([c for _, c in _chunks(X, n_rois)]), metric=metric), np.float64)
    if metric == "logeuclid":
        return expm(_stream_sum(X, n_rois, logm) / len(X))
    mean = _stream_sum(X, n_rois, lambda c: c) / len(X)  # also pyRiemann's start for the Riemannian mean
    return _stream_riemann(X, n_rois, mean) if metric == "riemann" else mean


def _stream_sum(X, n_rois: int, fn) -> np.ndarray:
    total = np.zeros((n_rois, n_rois))
    for _, chunk in _chunks(X, n_rois):
        total += fn(chunk).sum(axis=0)
    return total


def _stream_riemann(X, n_rois: int, M) -> np.ndarray:
    """pyRiemann's mean_riemann gradient descent, its step rule and stopping rule, over chunks."""
    _, _, logm, expm, sqrtm, invsqrtm = _ops()
    nu, tau = 1.0, np.finfo(np.float64).max
    for _ in range(_RIEMANN_MAXITER):
        M12, Mm12 = sqrtm(M), invsqrtm(M)
        J = _stream_sum(X, n_rois, lambda c, W=Mm12: logm(W @ c @ W)) / len(X)
        M = M12 @ expm(nu * J) @ M12
        crit = np.linalg.norm(J, ord="fro")
        h = nu * crit
        nu, tau = (0.95 * nu, h) if h < tau else (0.5 * nu, tau)
        if crit <= _RIEMANN_TOL or nu <= _RIEMANN_TOL:
            break
    return M


def tangent_vectors(X, reference, metric: str = DEFAULT_METRIC) -> np.ndarray:
    """(n, R(R+1)/2) float64 tangent vectors of the (regularised) matrices at `reference`, chunk by chunk."""
    check_metric(metric)
    n_rois = check_matrix_shape(X.shape[1:])
    reference = np.asarray(reference, np.float64)
    if reference.shape != (n_rois, n_rois):
        raise ValueError(
            f"The reference matrix has shape {reference.shape} but the matrices are {n_rois} x {n_rois}; "
            "pass matrices shaped like the training data."
        )
    _, tangent_space, *_ = _ops()
    out = np.empty((len(X), n_rois * (n_rois + 1) // 2), np.float64)
    for start, chunk in _chunks(X, n_rois):
        out[start : start + len(chunk)] = tangent_space(chunk, reference, metric=metric)
    return out
