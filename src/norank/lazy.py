"""Reading batches from inputs that stay on disk: memory maps and other lazy array-likes.

Rows are read in sorted, unique order (what h5py needs and what disks like best). Pages of a memory map
that were read are handed back to the kernel every `RELEASE_BYTES`, so a pass over a file larger than
memory keeps the process's resident set small instead of mapping the whole file in.
"""

from __future__ import annotations

import mmap

import numpy as np

from norank.validation import check_finite

RELEASE_BYTES = 256 * 1024**2


class PageReleaser:
    """Counts bytes read from a memory map and drops its resident pages past a budget."""

    def __init__(self, X):
        self.map = getattr(X, "_mmap", None) if isinstance(X, np.memmap) else None
        self.read = 0

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
    """X[idx] as float32, for arrays and lazy array-likes; values of lazy inputs are checked here."""
    if isinstance(X, np.ndarray) and not isinstance(X, np.memmap):
        return X[idx]
    unique, inverse = np.unique(idx, return_inverse=True)
    try:
        block = np.asarray(X[unique], dtype=np.float32)
    except (TypeError, IndexError, ValueError):
        block = np.stack([np.asarray(X[int(i)], dtype=np.float32) for i in unique])
    check_finite(block)
    if releaser is not None:
        releaser.add(block.nbytes)
    return block[inverse]


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
