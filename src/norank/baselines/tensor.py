"""Tensor decompositions of the training stack: CP, Tucker and the t-SVD.

The stack (n, d1, ..., dk) is decomposed with the sample mode first; a sample's embedding is its row of
the sample-mode factor. New samples are embedded with the other factors held fixed, by least squares:

- CP:     X_(1) ≈ A · KR(B, C, ...)ᵀ          →  A_new = X_new_(1) · pinv(KR(B, C, ...)ᵀ)
- Tucker: X_(1) ≈ A · G_(1) · (B ⊗ C ⊗ ...)ᵀ  →  A_new = X_new_(1) · pinv(G_(1) · (B ⊗ C ⊗ ...)ᵀ)

where X_(1) is the sample-mode unfolding (row-major, as tensorly unfolds), KR the Khatri–Rao product and
⊗ the Kronecker product. A (n, d) stack is a matrix, so CP and Tucker become low-rank matrix
factorisations. Values are used as they are (no centring), as the decompositions are usually applied.

The t-SVD (Kilmer & Martin 2011) factors a third-order stack A (n, d1, d2) as U * S * Vᵀ under the
t-product, which is a matrix product of the frontal slices after an FFT along the last mode. A sample's
embedding is its t-product with the first r tubal right singular slices, A * V[:, :r, :] (r × d2 values).
"""

from __future__ import annotations

import numpy as np

from norank.baselines._base import Baseline, check_int, seed_of, store_params

_TOL = 1e-6


def gram_svd(matrix, n_eigenvecs=None, **kwargs):
    """Truncated SVD (U, S, Vᵀ) from the eigendecomposition of the smaller Gram matrix.

    The leading singular vectors of a wide unfolding (ABIDE: 111 × 67 710) cost one 111 × 111 eigenproblem
    instead of a full SVD; tensorly accepts it as its `svd` callable.
    """
    M = np.asarray(matrix)
    m, n = M.shape
    k = min(m, n) if n_eigenvecs is None else min(int(n_eigenvecs), m, n)
    if m <= n:
        evals, evecs = np.linalg.eigh(M @ M.T)
        order = np.argsort(evals)[::-1][:k]
        S = np.sqrt(np.clip(evals[order], 0.0, None))
        U = evecs[:, order]
        Vt = (U.T @ M) / np.where(S > 0, S, 1.0)[:, None]
    else:
        evals, evecs = np.linalg.eigh(M.T @ M)
        order = np.argsort(evals)[::-1][:k]
        S = np.sqrt(np.clip(evals[order], 0.0, None))
        Vt = evecs[:, order].T
        U = (M @ Vt.T) / np.where(S > 0, S, 1.0)[None, :]
    return U, S, Vt


def khatri_rao(matrices) -> np.ndarray:
    """Column-wise Kronecker product, rows in row-major order of (d1, d2, ...), matching X.reshape(n, -1)."""
    out = matrices[0]
    for M in matrices[1:]:
        out = (out[:, None, :] * M[None, :, :]).reshape(-1, out.shape[1])
    return out


class _Decomposition(Baseline):
    """What CP and Tucker share: their parameters and name, the tensorly call, and the projector P with
    A_new = X_new.reshape(n, -1) @ P."""

    prefix = "decomposition"  # the name is f"{prefix}_r{rank}"

    def __init__(self, rank=10, n_iter_max=100, tol=_TOL, init="svd", random_state=0):
        store_params(self, locals())

    @property
    def name(self):
        return f"{self.prefix}_r{self.rank}"

    def _decompose(self, decomposition, X, rank):
        """(weights or core, float64 factors) of a tensorly `decomposition` with this baseline's settings."""
        if self.init not in ("svd", "random"):
            raise ValueError(f"init={self.init!r} is not supported; use 'svd' or 'random'.")
        first, factors = decomposition(
            X,
            rank,
            n_iter_max=check_int(self.n_iter_max, "n_iter_max"),
            init=self.init,
            svd=gram_svd,
            tol=self.tol,
            random_state=seed_of(self.random_state),
        )
        return first, [np.asarray(f, dtype=np.float64) for f in factors]

    def _set_loadings(self, loadings, n_components):
        """Keep the loadings L (a sample is its embedding · L) and their pseudo-inverse, the projector."""
        self.loadings_ = loadings
        self.projector_ = np.linalg.pinv(loadings)
        self.n_components_ = n_components

    def _transform(self, X):
        return X.reshape(len(X), -1) @ self.projector_

    def reconstruction_error(self, X) -> float:
        """Relative Frobenius error ‖X − A_X · L‖ / ‖X‖ of samples rebuilt from their embedding A_X and the
        fitted loadings L (the least-squares best for these factors, also for held-out samples)."""
        Z = self.transform(X).astype(np.float64)
        flat = np.asarray(X, dtype=np.float64).reshape(len(Z), -1)
        return float(np.linalg.norm(flat - Z @ self.loadings_) / np.linalg.norm(flat))


class CPBaseline(_Decomposition):
    """CP (PARAFAC) by alternating least squares (tensorly `parafac`) of rank `rank`; embedding = the
    sample-mode factor (weights folded in), held-out samples by least squares against the fixed factors.

    Parameters
    ----------
    rank : int, default=10
    n_iter_max : int, default=100
    tol : float, default=1e-6
        Stop when the reconstruction error changes by less than this between iterations.
    init : {"svd", "random"}, default="svd"
        "svd": leading singular vectors of each unfolding (seeded random columns fill a rank larger than
        a mode); "random": seeded uniform factors.
    random_state : int, default=0

    Attributes
    ----------
    factors_ : list of (d_i, rank) arrays, the non-sample factors.
    sample_factor_ : (n_train, rank) array, tensorly's sample-mode factor times the CP weights.
    loadings_ : (rank, d1·…·dk) array, KR(factors_)ᵀ: a sample is rebuilt as its embedding · loadings_.
    projector_ : (d1·…·dk, rank) array, pinv(loadings_).
    """

    prefix = "cp"

    def _fit(self, X, y):
        from tensorly.decomposition import parafac

        rank = check_int(self.rank, "rank")
        weights, factors = self._decompose(parafac, X, rank)
        self.sample_factor_ = factors[0] * np.asarray(weights, dtype=np.float64)[None, :]
        self.factors_ = factors[1:]
        self._set_loadings(khatri_rao(self.factors_).T, rank)  # (rank, d1·…·dk)


class TuckerBaseline(_Decomposition):
    """Tucker by higher-order orthogonal iteration (tensorly `tucker`) with rank `rank` in every mode
    (capped by the mode's size); embedding = the sample-mode factor, held-out samples by least squares
    against the fixed core and non-sample factors.

    Parameters
    ----------
    rank : int, default=10
    n_iter_max : int, default=100
    tol : float, default=1e-6
    init : {"svd", "random"}, default="svd"
    random_state : int, default=0

    Attributes
    ----------
    core_ : core tensor of shape ranks_.
    factors_ : list of (d_i, r_i) arrays, the non-sample factors (orthonormal columns).
    sample_factor_ : (n_train, r_0) array.
    loadings_ : (r_0, d1·…·dk) array, G_(1) · (B ⊗ C ⊗ …)ᵀ.
    projector_ : (d1·…·dk, r_0) array, pinv(loadings_).
    """

    prefix = "tucker"

    def _fit(self, X, y):
        from tensorly.decomposition import tucker

        self.ranks_ = tuple(min(check_int(self.rank, "rank"), s) for s in X.shape)
        core, factors = self._decompose(tucker, X, list(self.ranks_))
        self.core_ = np.asarray(core, dtype=np.float64)
        self.sample_factor_ = factors[0]
        self.factors_ = factors[1:]
        # G ×_2 B ×_3 C … unfolded along the sample mode is G_(1) · (B ⊗ C ⊗ …)ᵀ.
        loadings = self.core_
        for mode, factor in enumerate(self.factors_, start=1):
            loadings = np.moveaxis(np.tensordot(factor, loadings, axes=(1, mode)), 0, mode)
        self._set_loadings(loadings.reshape(self.ranks_[0], -1), self.ranks_[0])


def as_third_order(X: np.ndarray) -> np.ndarray:
    """(n, d) → (n, d, 1); (n, d1, d2) unchanged; (n, d1, d2, …, dk) → (n, d1, d2·…·dk)."""
    if X.ndim == 2:
        return X[:, :, None]
    return X.reshape(X.shape[0], X.shape[1], -1)


def t_svd(A: np.ndarray):
    """Economy t-SVD of a real third-order tensor A (n1, n2, n3): A = U * S * Vᵀ.

    Returns real U (n1, p, n3), S (p, p, n3) f-diagonal and V (n2, p, n3), p = min(n1, n2). Each frontal
    slice of the FFT along mode 3 gets its own SVD; slices past n3 // 2 are the complex conjugates of
    their mirror, so the inverse FFT is real.
    """
    n1, n2, n3 = A.shape
    p = min(n1, n2)
    A_hat = np.fft.fft(A, axis=2)
    U_hat = np.zeros((n1, p, n3), complex)
    S_hat = np.zeros((p, p, n3), complex)
    V_hat = np.zeros((n2, p, n3), complex)
    for k in range(n3 // 2 + 1):
        u, s, vh = np.linalg.svd(A_hat[:, :, k], full_matrices=False)
        U_hat[:, :, k], V_hat[:, :, k] = u, vh.conj().T
        S_hat[:, :, k] = np.diag(s)
    for k in range(n3 // 2 + 1, n3):
        U_hat[:, :, k] = U_hat[:, :, n3 - k].conj()
        S_hat[:, :, k] = S_hat[:, :, n3 - k].conj()
        V_hat[:, :, k] = V_hat[:, :, n3 - k].conj()
    return tuple(np.fft.ifft(T, axis=2).real for T in (U_hat, S_hat, V_hat))


def t_product(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """t-product A * B of (n1, n2, n3) and (n2, l, n3): slice-wise matrix products in the Fourier domain."""
    A_hat = np.fft.fft(A, axis=2)
    B_hat = np.fft.fft(B, axis=2)
    return np.fft.ifft(np.einsum("ijk,jlk->ilk", A_hat, B_hat), axis=2).real


class TSVDBaseline(Baseline):
    """Tensor SVD (t-product, Kilmer–Martin) of the training stack; embedding = A * V[:, :rank, :]
    flattened (rank × d2 values per sample), held-out samples with the same V.

    A (n, d) stack is read as (n, d, 1), which makes the t-SVD the matrix SVD (embedding X · V[:, :rank]);
    stacks of order above three are folded to (n, d1, d2·…·dk).

    Parameters
    ----------
    rank : int, default=10
        Tubal rank kept, capped by min(n_train, d1).
    random_state : int, default=0
        Unused (the t-SVD is deterministic); kept so every baseline takes one.

    Attributes
    ----------
    V_ : (d1, rank, d2) array, the leading tubal right singular slices.
    singular_tubes_ : (rank, d2) array, the leading diagonal tubes of S.
    """

    name = "tsvd"

    def __init__(self, rank=10, random_state=0):
        store_params(self, locals())

    def _fit(self, X, y):
        A = as_third_order(X)
        self.rank_ = min(check_int(self.rank, "rank"), A.shape[0], A.shape[1])
        _, S, V = t_svd(A)
        self.singular_tubes_ = np.einsum("iik->ik", S)[: self.rank_]
        self.V_ = np.ascontiguousarray(V[:, : self.rank_, :])
        self.n_components_ = self.rank_ * A.shape[2]

    def _transform(self, X):
        return t_product(as_third_order(X), self.V_).reshape(len(X), -1)
