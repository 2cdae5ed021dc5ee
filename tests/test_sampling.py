"""The P×K sampler against brute-force counts: batch composition, coverage, class frequencies, ranks."""

import numpy as np
import pytest

from norank.sampling import ClassBalancedBatchSampler


def _labels():
    rng = np.random.default_rng(0)
    return rng.permutation(np.repeat(np.arange(6), [2, 5, 8, 12, 20, 40]))


def test_every_batch_holds_p_distinct_classes_of_k_samples():
    y = _labels()
    sampler = ClassBalancedBatchSampler(y, 3, 4, seed=1)
    for batch in sampler:
        assert len(batch) == 12
        blocks = y[batch].reshape(3, 4)
        assert (blocks == blocks[:, :1]).all()  # K samples of one class per block
        assert len(set(blocks[:, 0])) == 3  # P distinct classes
        for block, rows in zip(blocks, batch.reshape(3, 4), strict=True):
            n_members = np.sum(y == block[0])
            assert len(set(rows)) == min(4, n_members)  # distinct whenever the class has K members


def test_members_are_dealt_evenly_before_repeating():
    y = _labels()
    sampler = ClassBalancedBatchSampler(y, 6, 4, n_batches=50, seed=2)
    seen = np.concatenate(list(sampler))
    for c in np.unique(y):
        counts = np.bincount(seen[y[seen] == c], minlength=len(y))[y == c]
        assert counts.max() - counts.min() <= 1  # a cyclic deal: no member twice before all once


@pytest.mark.parametrize("mode", ["uniform", "sqrt", "proportional"])
def test_class_frequencies_follow_the_sampling_weights(mode):
    y = _labels()
    sampler = ClassBalancedBatchSampler(y, 1, 2, n_batches=6000, class_sampling=mode, seed=3)
    drawn = np.bincount(y[np.concatenate(list(sampler))[::2]], minlength=6) / 6000
    sizes = np.bincount(y).astype(float)
    weights = {"uniform": np.ones(6), "sqrt": np.sqrt(sizes), "proportional": sizes}[mode]
    np.testing.assert_allclose(drawn, weights / weights.sum(), atol=0.02)


def test_epochs_are_reproducible_and_differ():
    y = _labels()
    a, b = ClassBalancedBatchSampler(y, 3, 4, seed=5), ClassBalancedBatchSampler(y, 3, 4, seed=5)
    first = [x.copy() for x in a]
    assert all(np.array_equal(u, v) for u, v in zip(first, b, strict=True))
    a.set_epoch(1)
    assert not all(np.array_equal(u, v) for u, v in zip(first, a, strict=True))


def test_ranks_split_the_global_batch():
    y = _labels()
    ranks = [ClassBalancedBatchSampler(y, 3, 4, seed=7, num_replicas=2, rank=r) for r in (0, 1)]
    whole = ClassBalancedBatchSampler(y, 3, 4, seed=7)
    for g, r0, r1 in zip(whole, *ranks, strict=True):
        np.testing.assert_array_equal(np.sort(np.concatenate([r0, r1])), np.sort(g))
