"""Miners against pytorch-metric-learning's miners and brute-force loops over small batches."""

import itertools

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from norank import triplet_kernels
from norank.distances import pairwise_distances
from norank.mining import (
    MINERS,
    TripletMiner,
    active_anchor_fraction,
    active_fraction,
    all_triplets,
    batch_hard_triplets,
    hard_triplets,
    margin_triplet_loss,
    margin_triplets,
    mine,
    semihard_triplets,
)


def _batch(n_classes=5, per_class=4, dim=6, seed=0, singletons=0):
    """Unit-norm float64 embeddings with shuffled P×K labels (plus optional one-sample classes)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    labels = torch.cat([labels, torch.arange(n_classes, n_classes + singletons)])
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    z = torch.nn.functional.normalize(torch.randn(labels.numel(), dim, generator=g, dtype=torch.float64), dim=1)
    return z, labels


def _triples(t):
    return set(zip(*(x.tolist() for x in t), strict=True))


def _brute_pairs(labels):
    b = len(labels)
    for a, p in itertools.product(range(b), repeat=2):
        if a != p and labels[a] == labels[p] and any(labels[n] != labels[a] for n in range(b)):
            yield a, p, [n for n in range(b) if labels[n] != labels[a]]


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs) == 3
    for x, y in zip(ours, theirs, strict=True):
        assert x.dtype == torch.long
        assert torch.equal(x, y.long())


@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("kind", ["all", "hard", "semihard", "easy"])
def test_margin_triplets_equal_pml(kind, power):
    z, labels = _batch(singletons=2)
    distance = LpDistance(power=power)
    dist = distance(z)  # the very matrix PML's miner computes internally
    margin = 0.3 if power == 2 else 0.15
    ours = margin_triplets(dist, labels, margin, kind)
    theirs = TripletMarginMiner(margin=margin, type_of_triplets=kind, distance=distance)(z, labels)
    assert ours[0].numel() > 0
    _assert_same(ours, theirs)


@pytest.mark.parametrize("budget", [None, 64])
@pytest.mark.parametrize("kind", ["all", "hard", "semihard", "easy"])
def test_fused_margin_loss_equals_pml_miner_and_loss(kind, budget, monkeypatch):
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.reducers import MeanReducer

    if budget:
        monkeypatch.setattr(triplet_kernels, "ELEMENT_BUDGET", budget)  # many blocks
    z, labels = _batch(n_classes=6, per_class=5, singletons=2)
    z_ours, z_theirs = z.clone().requires_grad_(), z.clone().requires_grad_()
    distance = LpDistance(power=2, normalize_embeddings=False)  # z is unit-norm already; same graph as ours
    loss, count = margin_triplet_loss(pairwise_distances(z_ours, squared=True), labels, 0.3, kind)
    triplets = TripletMarginMiner(margin=0.3, type_of_triplets=kind, distance=distance)(z_theirs, labels)
    theirs = TripletMarginLoss(margin=0.3, distance=distance, reducer=MeanReducer())(z_theirs, labels, triplets)
    assert count == triplets[0].numel() > 0
    torch.testing.assert_close(loss, theirs)
    loss.backward()
    theirs.backward()
    torch.testing.assert_close(z_ours.grad, z_theirs.grad)


def test_fused_margin_loss_without_triplets_is_a_zero_with_a_graph():
    z = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=1).requires_grad_()
    loss, count = margin_triplet_loss(pairwise_distances(z, squared=True), torch.tensor([0, 0, 1, 1]), 10.0, "easy")
    assert count == 0 and loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(z.grad) == 0


@pytest.mark.parametrize("power", [1, 2])
def test_all_triplets_equal_pml(power):
    z, labels = _batch(seed=1, singletons=1)
    distance = LpDistance(power=power)
    theirs = TripletMarginMiner(margin=0.2, type_of_triplets="all", distance=distance)(z, labels)
    _assert_same(all_triplets(distance(z), labels, 0.2), theirs)


def test_all_triplets_strict_on_the_margin():
    # d(a,p) − d(a,n) + margin == 0 exactly (dyadic values): zero loss, so not in all_triplets,
    # but inside TripletMarginMiner's "all" (gap <= margin).
    dist = torch.tensor([[0.0, 0.25, 0.5], [0.25, 0.0, 0.5], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 0, 1])
    assert (0, 1, 2) not in _triples(all_triplets(dist, labels, 0.25))
    assert (0, 1, 2) in _triples(margin_triplets(dist, labels, 0.25, "all"))


@pytest.mark.parametrize("power", [1, 2])
def test_batch_hard_equals_pml(power):
    z, labels = _batch(seed=2, singletons=2)
    distance = LpDistance(power=power)
    theirs = BatchHardMiner(distance=distance)(z, labels)
    ours = batch_hard_triplets(distance(z), labels)
    assert ours[0].numel() == 20
    _assert_same(ours, theirs)


def _brute_closest(dist, labels, semihard):
    d, y = dist.tolist(), labels.tolist()
    out = []
    for a, p, negs in _brute_pairs(y):
        pool = [n for n in negs if d[a][n] > d[a][p]] if semihard else negs
        if pool:
            best = min(pool, key=lambda n: (d[a][n], n))
        else:  # semi-hard fallback: every negative is closer than the positive
            best = max(negs, key=lambda n: (d[a][n], -n))
        out.append((a, p, best))
    return out


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("squared", [True, False])
def test_semihard_and_hard_equal_brute_force(seed, squared):
    z, labels = _batch(seed=seed, singletons=1)
    dist = pairwise_distances(z, squared=squared)
    for miner, semihard in ((semihard_triplets, True), (hard_triplets, False)):
        ours = list(zip(*(x.tolist() for x in miner(dist, labels, 0.2)), strict=True))
        assert ours == _brute_closest(dist, labels, semihard)


def test_semihard_fallback_takes_farthest_closer_negative():
    # 1-D points: class 0 at 0 and 10, class 1 at 1, 2, 3. For anchor 0 (positive 10) every negative is
    # closer than the positive, so the fallback picks the farthest of them, the point at 3 (index 4).
    x = torch.tensor([[0.0], [10.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1])
    dist = pairwise_distances(x)
    got = {(a, p): n for a, p, n in _triples(semihard_triplets(dist, labels, 0.2))}
    assert got[(0, 1)] == 4
    assert got[(1, 0)] == 2  # from 10, the points 1, 2, 3 are all closer than 0: farthest is 1 (index 2)
    # From 1, the positive 2 is at squared distance 1; the negative 0 ties it (not farther), so the
    # closest strictly farther negative is 10 (index 1).
    assert got[(2, 3)] == 1
    assert list(zip(*(x.tolist() for x in semihard_triplets(dist, labels, 0.2)), strict=True)) == _brute_closest(
        dist, labels, True
    )


@pytest.mark.parametrize("budget", [1, 7, 64, 2**24])
def test_chunk_budget_does_not_change_results_two_classes(monkeypatch, budget):
    z, labels = _batch(n_classes=2, per_class=12, seed=4)
    dist = pairwise_distances(z)
    reference = {name: MINERS[name](dist, labels, 0.3) for name in MINERS}
    reference["margin_semihard"] = margin_triplets(dist, labels, 0.3, "semihard")
    monkeypatch.setattr(triplet_kernels, "ELEMENT_BUDGET", budget)
    for name in MINERS:
        _assert_same(MINERS[name](dist, labels, 0.3), reference[name])
    _assert_same(margin_triplets(dist, labels, 0.3, "semihard"), reference["margin_semihard"])


def test_blocks_respect_the_budget(monkeypatch):
    monkeypatch.setattr(triplet_kernels, "ELEMENT_BUDGET", 640)
    blocks = triplet_kernels.blocks(1984, 64)
    assert all((b.stop - b.start) * 64 <= 640 for b in blocks)
    assert list(range(1984)) == [i for b in blocks for i in range(1984)[b]]
    monkeypatch.setattr(triplet_kernels, "ELEMENT_BUDGET", 10)  # budget below one row: one pair at a time
    assert len(triplet_kernels.blocks(5, 64)) == 5


@pytest.mark.parametrize("threshold", [0, 10**9])
@pytest.mark.parametrize("n_classes", [2, 6])
def test_semihard_sort_and_scan_paths_agree_with_brute_force(monkeypatch, threshold, n_classes):
    # threshold 0 forces the per-row sort, 10**9 the budgeted scan; both must equal the loop.
    monkeypatch.setattr(triplet_kernels, "SORT_FACTOR", threshold)
    monkeypatch.setattr(triplet_kernels, "ELEMENT_BUDGET", 50)
    z, labels = _batch(n_classes=n_classes, per_class=24 // n_classes, seed=8, singletons=1)
    dist = pairwise_distances(z)
    ours = list(zip(*(x.tolist() for x in semihard_triplets(dist, labels, 0.2)), strict=True))
    assert ours == _brute_closest(dist, labels, True)
    x = torch.tensor([[0.0], [10.0], [1.0], [2.0], [3.0]], dtype=torch.float64)  # the fallback batch
    d = pairwise_distances(x)
    y = torch.tensor([0, 0, 1, 1, 1])
    assert list(zip(*(t.tolist() for t in semihard_triplets(d, y, 0.2)), strict=True)) == _brute_closest(d, y, True)
    # Small integer points: exact distances with many ties, which go to the lowest index.
    g = torch.Generator().manual_seed(9)
    x = torch.randint(0, 4, (15, 1), generator=g).double()
    y = torch.randint(0, 3, (15,), generator=g)
    d = pairwise_distances(x)
    for miner, semihard in ((semihard_triplets, True), (hard_triplets, False)):
        assert list(zip(*(t.tolist() for t in miner(d, y, 0.2)), strict=True)) == _brute_closest(d, y, semihard)


def test_anchors_without_positive_or_negative_are_skipped():
    z, labels = _batch(n_classes=3, per_class=3, seed=6, singletons=3)
    dist = pairwise_distances(z)
    singles = {i for i, y in enumerate(labels.tolist()) if labels.tolist().count(y) == 1}
    for name in MINERS:
        a, p, n = MINERS[name](dist, labels, 1.0)
        assert a.numel() > 0
        assert not singles & set(a.tolist())
        assert torch.all(labels[a] == labels[p]) and torch.all(a != p) and torch.all(labels[a] != labels[n])
    one_class = torch.zeros(6, dtype=torch.long)
    for name in MINERS:
        out = mine(pairwise_distances(z[:6]), one_class, name, 0.2)
        assert all(t.numel() == 0 and t.dtype == torch.long for t in out)


def test_mining_builds_no_graph():
    z, labels = _batch()
    z.requires_grad_(True)
    dist = pairwise_distances(z)
    for name in MINERS:
        assert not any(t.requires_grad for t in mine(dist, labels, name, 0.2))


def test_active_anchor_fraction_brute_force():
    z, labels = _batch(seed=7, singletons=2)
    dist = pairwise_distances(z)
    for name in MINERS:
        for margin in (0.0, 0.1, 1.0):
            t = mine(dist, labels, name, margin)
            eligible = {a for a, _, _ in _brute_pairs(labels.tolist())}
            active = {a for a, p, n in _triples(t) if dist[a, p] - dist[a, n] + margin > 0}
            assert active_anchor_fraction(dist, *t, margin, labels) == pytest.approx(len(active) / len(eligible))
    # Well separated classes with a small margin: nothing left to learn.
    centres = torch.eye(3, dtype=torch.float64).repeat_interleave(3, dim=0)
    y = torch.arange(3).repeat_interleave(3)
    d = pairwise_distances(
        centres + 1e-3 * torch.randn(9, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    assert active_anchor_fraction(d, *hard_triplets(d, y, 0.1), 0.1, y) == 0.0
    assert active_anchor_fraction(d, *hard_triplets(d, y, 0.1), 3.0, y) == 1.0
    assert active_anchor_fraction(d, *hard_triplets(d, y, 0.1), 0.1, torch.arange(9)) == 0.0


def test_bad_input():
    z, labels = _batch()
    dist = pairwise_distances(z)
    with pytest.raises(ValueError, match="'semihard'"):
        mine(dist, labels, "semi-hard", 0.2)
    with pytest.raises(ValueError, match="kind must be one of"):
        margin_triplets(dist, labels, 0.2, "medium")
    with pytest.raises(ValueError, match="square"):
        semihard_triplets(dist[:, :3], labels, 0.2)
    with pytest.raises(ValueError, match="shape"):
        hard_triplets(dist, labels[:-1], 0.2)
    with pytest.raises(TypeError, match="integer dtype"):
        all_triplets(dist, labels.double(), 0.2)
    with pytest.raises(ValueError, match="margin"):
        batch_hard_triplets(dist, labels, -0.1)
    with pytest.raises(TypeError, match="pairwise_distances"):
        hard_triplets(dist.tolist(), labels, 0.2)
    with pytest.raises(ValueError, match="diverged"):
        semihard_triplets(dist * float("nan"), labels, 0.2)


def test_all_triplets_are_exactly_the_positive_loss_triplets_float32():
    z, labels = _batch(n_classes=6, per_class=5, seed=10)
    dist = pairwise_distances(z.float())
    for margin in (0.05, 0.3):
        a, p, n = all_triplets(dist, labels, margin)
        losses = torch.relu((dist[a, p] + margin) - dist[a, n])
        assert torch.all(losses > 0)
        every = {
            t
            for t in itertools.product(range(30), repeat=3)
            if labels[t[0]] == labels[t[1]] and t[0] != t[1] and labels[t[0]] != labels[t[2]]
        }
        left_out = torch.tensor(sorted(every - _triples((a, p, n))))
        assert torch.all((dist[left_out[:, 0], left_out[:, 1]] + margin) - dist[left_out[:, 0], left_out[:, 2]] <= 0)


@pytest.mark.parametrize("distance", ["euclidean", "squared"])
@pytest.mark.parametrize("kind", list(MINERS))
def test_triplet_miner_object_equals_functional_miners(kind, distance):
    z, labels = _batch(singletons=2, seed=11)
    margin = 0.4
    miner = TripletMiner(kind, margin=margin, distance=distance)
    dist = pairwise_distances(z, squared=distance == "squared")
    expected = MINERS[kind](dist, labels, margin)
    assert expected[0].numel() > 0
    _assert_same(miner(z.clone().requires_grad_(True), labels), expected)
    _assert_same(miner.mine_matrix(dist, labels), expected)
    assert not any(t.requires_grad for t in miner(z.clone().requires_grad_(True), labels))


def test_triplet_miner_checks_settings_once_and_inputs_per_call():
    with pytest.raises(ValueError, match="'semihard', 'hard', 'batch_hard', 'all'"):
        TripletMiner("semi-hard")
    with pytest.raises(ValueError, match="'euclidean', 'squared'"):
        TripletMiner(distance="cosine")
    with pytest.raises(ValueError, match="margin"):
        TripletMiner(margin=float("inf"))
    miner = TripletMiner()
    z, labels = _batch()
    with pytest.raises(ValueError, match="2-D"):
        miner(z[0], labels)
    with pytest.raises(TypeError, match="integer dtype"):
        miner(z, labels.float())
    with pytest.raises(ValueError, match="shape"):
        miner(z, labels[:-1])
    assert repr(miner) == "TripletMiner(kind='semihard', margin=2.0, distance='euclidean')"


def test_active_fraction_tensor_equals_float_version():
    z, labels = _batch(seed=12, singletons=2)
    dist = pairwise_distances(z)
    for name in MINERS:
        t = mine(dist, labels, name, 0.3)
        value = active_fraction(dist, *t, 0.3, labels)
        assert value.ndim == 0 and value.item() == pytest.approx(active_anchor_fraction(dist, *t, 0.3, labels))
    empty = torch.empty(0, dtype=torch.long)
    assert active_fraction(dist, empty, empty, empty, 0.3, torch.arange(len(labels))).item() == 0.0
