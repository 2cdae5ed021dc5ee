"""Seeded class-balanced P×K batch sampler, aware of distributed ranks.

Each batch holds P classes × K samples, so every anchor has positives and negatives to mine. The batches
of an epoch are a pure function of (seed, epoch): resuming from a checkpoint or running on several ranks
reproduces them exactly. With several ranks, every rank draws the same global batch and keeps its own
disjoint slice of it.

Within an epoch each class's members are shuffled once and dealt out K at a time from a cursor (wrapping
around), so a class gives K distinct samples whenever it has K, every member is seen before any repeats,
and a batch costs a few vectorised numpy operations instead of one random draw per class (the per-class
draws took 4 ms of every 512-sample batch).
"""

from __future__ import annotations

import numpy as np

CLASS_SAMPLING = ("uniform", "sqrt", "proportional")


class ClassBalancedBatchSampler:
    """Yield index arrays of P×K samples.

    Parameters
    ----------
    labels : array of int, shape (n,)
        Class codes 0..C-1 of the training samples.
    classes_per_batch : int
        P, capped by the number of classes.
    samples_per_class : int
        K. A class with fewer than K samples repeats members (each as evenly as possible).
    n_batches : int or None
        Batches per epoch; default ceil(n / (P·K)), one pass over the data on average.
    class_sampling : {"uniform", "sqrt", "proportional"}
        How the P classes are drawn: every class equally often ("uniform", favours rare classes),
        ∝ sqrt(class size), or ∝ class size ("proportional", the data's own imbalance).
    seed : int
    num_replicas, rank : int
        Distributed training: rank r keeps positions r, r + num_replicas, … of each global batch.
    """

    def __init__(
        self,
        labels,
        classes_per_batch,
        samples_per_class,
        n_batches=None,
        class_sampling="uniform",
        seed=0,
        num_replicas=1,
        rank=0,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError("labels must be a non-empty 1-D array of class codes.")
        if class_sampling not in CLASS_SAMPLING:
            raise ValueError(f"class_sampling={class_sampling!r} is not supported; use one of {CLASS_SAMPLING}.")
        if samples_per_class < 1 or classes_per_batch < 1:
            raise ValueError("classes_per_batch and samples_per_class must be at least 1.")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank={rank} must lie in [0, num_replicas={num_replicas}).")
        classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
        self.codes = codes
        self.classes = classes
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.P = int(min(classes_per_batch, len(classes)))
        self.K = int(samples_per_class)
        self.batch_size = self.P * self.K
        if self.batch_size % num_replicas:
            raise ValueError(
                f"The global batch of {self.batch_size} samples does not split evenly over {num_replicas} ranks; "
                "choose batch_size and samples_per_class so that P×K is a multiple of the number of processes."
            )
        self.n_batches = int(n_batches) if n_batches else int(np.ceil(len(labels) / self.batch_size))
        weights = {"uniform": np.ones(len(classes)), "sqrt": np.sqrt(counts), "proportional": counts.astype(float)}
        self.class_p = weights[class_sampling] / weights[class_sampling].sum()
        self.class_sampling = class_sampling
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def global_batches(self):
        """Every global batch of the current epoch (the same on all ranks)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        # Members of each class, shuffled, laid out class after class: one permutation, one stable sort.
        shuffled = rng.permutation(len(self.codes))
        dealt = shuffled[np.argsort(self.codes[shuffled], kind="stable")]
        cursor = rng.integers(0, self.counts)  # each class starts its deal at a random member
        step = np.arange(self.K)
        for _ in range(self.n_batches):
            chosen = rng.choice(len(self.classes), size=self.P, replace=False, p=self.class_p)
            sizes = self.counts[chosen, None]
            slots = self.offsets[chosen, None] + (cursor[chosen, None] + step) % sizes
            cursor[chosen] += self.K
            yield dealt[slots.ravel()]

    def __iter__(self):
        for batch in self.global_batches():
            yield batch[self.rank :: self.num_replicas]
