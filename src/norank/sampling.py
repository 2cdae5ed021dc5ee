"""Seeded class-balanced P×K batch sampler, aware of distributed ranks.

Each batch holds P classes × K samples, so every anchor has positives and negatives to mine. The batches
of an epoch are a pure function of (seed, epoch): resuming from a checkpoint or running on several ranks
reproduces them exactly. With several ranks, every rank draws the same global batch and keeps its own
disjoint slice of it.
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
        K. A class with fewer than K samples is drawn with replacement.
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
        order = np.argsort(labels, kind="stable")
        classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        self.members = [order[s : s + c] for s, c in zip(starts, counts)]
        self.classes = classes
        self.counts = counts
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
        for _ in range(self.n_batches):
            chosen = rng.choice(len(self.classes), size=self.P, replace=False, p=self.class_p)
            parts = []
            for c in chosen:
                members = self.members[c]
                parts.append(rng.choice(members, size=self.K, replace=len(members) < self.K))
            yield np.concatenate(parts)

    def __iter__(self):
        for batch in self.global_batches():
            yield batch[self.rank :: self.num_replicas]
