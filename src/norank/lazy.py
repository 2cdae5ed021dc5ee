"""Reading batches from inputs that stay on disk: memory maps and other lazy array-likes.

Rows are read in sorted, unique order (what h5py needs and what disks like best). Scattered rows of a
memory-mapped file are read with `pread` instead of through the map: touching one 3 kB row through the map
can bring a whole large page-cache folio (up to 2 MB) into the process, so a random batch of 512 rows from
a 1M × 784 file mapped about 1 GB. Sequential passes (transform) go through the map, and its pages are
handed back to the kernel every `RELEASE_BYTES`.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from norank.samplewise import work_dtype
from norank.validation import check_finite

RELEASE_BYTES = 256 * 1024**2


class PageReleaser:
    """Counts bytes read from a memory map and drops its resident pages past a budget; `rows` reads
    scattered rows of a file-backed map with pread when the layout allows it."""

    def __init__(self, X):
        self.map = getattr(X, "_mmap", None) if isinstance(X, np.memmap) else None
        self.read = 0
        self.file = _FileRows.of(X) if self.map is not None else None

    def rows(self, unique: np.ndarray) -> np.ndarray | None:
        """X[unique] read from the file, or None when this input cannot be read that way."""
        return self.file.read(unique) if self.file is not None else None

    def add(self, n_bytes: int) -> None:
        if self.map is None:
            return
        self.read += n_bytes
        if self.read >= RELEASE_BYTES:
            self.read = 0
            try:
                self.map.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):  # platforms without madvise keep their pages
                self.map = None


def take_rows(X, idx: np.ndarray, releaser: PageReleaser | None = None) -> np.ndarray:
    """X[idx] for arrays and lazy array-likes, as float32, or float64 for wide inputs (float64, wide integers),
    which the preprocessor centres before rounding; values of lazy inputs are checked here."""
    if isinstance(X, np.ndarray) and not isinstance(X, np.memmap):
        return X[idx]
    unique, inverse = np.unique(idx, return_inverse=True)
    block = releaser.rows(unique) if releaser is not None else None
    dtype = work_dtype(getattr(X, "dtype", np.float32))
    if block is None:
        try:
            block = np.asarray(X[unique], dtype=dtype)
        except (TypeError, IndexError, ValueError):
            block = np.stack([np.asarray(X[int(i)], dtype=dtype) for i in unique])
        if releaser is not None:
            releaser.add(block.nbytes)
    check_finite(block)
    return block[inverse]


class _FileRows:
    """Rows of a C-ordered memory map read straight from its file (runs of consecutive rows in one call)."""

    def __init__(self, path, first_byte: int, row_stride: int, dtype, row_shape):
        self.path, self.first_byte, self.row_stride = path, first_byte, row_stride
        self.dtype, self.row_shape = np.dtype(dtype), tuple(row_shape)
        self.row_bytes = int(np.prod(row_shape)) * self.dtype.itemsize
        self.fd: int | None = None

    @classmethod
    def of(cls, X: np.memmap):
        path = getattr(X, "filename", None)
        if not path or not hasattr(os, "preadv") or X.ndim < 1 or len(X) == 0:
            return None
        row = X[0]
        if not (row.flags.c_contiguous and X.strides[0] >= row.nbytes and X.dtype.isnative):
            return None
        try:  # where X's first byte lies in the file: map start + X's distance from the map's first byte
            base = np.frombuffer(X._mmap, np.uint8).ctypes.data  # type: ignore[attr-defined]  # numpy's own map
        except (TypeError, ValueError, BufferError):
            return None
        offset = int(getattr(X, "offset", 0) or 0)
        map_start = offset - offset % mmap.ALLOCATIONGRANULARITY
        return cls(path, map_start + X.ctypes.data - base, X.strides[0], X.dtype, X.shape[1:])

    def __getstate__(self):  # file descriptors do not travel to other processes
        return {**self.__dict__, "fd": None}

    def read(self, unique: np.ndarray) -> np.ndarray:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(unique), *self.row_shape), self.dtype)
        flat = out.reshape(len(unique), -1).view(np.uint8).reshape(len(unique), self.row_bytes)
        if self.row_stride == self.row_bytes:
            breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        else:
            breaks = np.arange(1, len(unique))
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(unique)], strict=True):
            want = (hi - lo) * self.row_bytes
            offset = self.first_byte + int(unique[lo]) * self.row_stride
            got = os.preadv(self.fd, [flat[lo:hi].data.cast("B")], offset)
            if got != want:
                raise OSError(f"short read from {self.path}: {got} of {want} bytes; the file changed or is truncated.")
        return out.astype(work_dtype(self.dtype), copy=False)

    def __del__(self):
        if self.fd is not None:
            os.close(self.fd)


class Rows:
    """A lazy view of rows `indices` of X with the slicing interface the preprocessor streams over."""

    def __init__(self, X, indices):
        self.X, self.indices = X, np.asarray(indices)
        self.shape = (len(self.indices), *X.shape[1:])
        self.releaser = PageReleaser(X)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, item):
        return take_rows(self.X, self.indices[item], self.releaser)
