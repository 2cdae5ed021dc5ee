"""Pair losses (SupCon, Multi-Similarity and its miner) against pytorch-metric-learning, values and
gradients in float64, and the prototypical loss against a brute-force loop."""

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from shared import GRAD_TOL, VALUE_TOL

from norank.losses import (
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    PrototypicalLoss,
    SupConLoss,
)

LABELS = {
    "balanced": [0, 1, 2, 3] * 3,
    "singleton": [0, 0, 0, 1, 1, 2, 3, 3],
    "two_classes": [0, 1] * 5,
    "one_class": [2] * 6,
    "all_singletons": [0, 1, 2, 3, 4, 5],
}


def _unit(n, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=1)


def _compare(ours, theirs, z, labels, *extra):
    """Equal values and embedding gradients of our loss and PML's on the same batch; returns ours."""
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    a, b = ours(z1, labels, *extra), theirs(z2, labels, *extra)
    torch.testing.assert_close(a, b, **VALUE_TOL)
    a.backward()
    b.backward()
    assert torch.all(torch.isfinite(z1.grad))
    torch.testing.assert_close(z1.grad, z2.grad, **GRAD_TOL)
    return a, z1.grad


@pytest.mark.parametrize("case", list(LABELS))
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_equals_pml(case, temperature):
    labels = torch.tensor(LABELS[case])
    loss, grad = _compare(
        SupConLoss(temperature), pml_losses.SupConLoss(temperature), _unit(len(labels), seed=1), labels
    )
    if case in ("one_class", "all_singletons"):  # no negative or no positive pair: an attached zero
        assert loss.item() == 0.0 and loss.requires_grad and torch.all(grad == 0)


def test_supcon_small_temperature_float32_is_finite_and_equals_pml():
    # τ = 0.005: similarities / τ span ±200, where exp overflows float32; the log-sum-exp must be shifted.
    labels = torch.tensor(LABELS["balanced"])
    z = _unit(len(labels), seed=2).float()
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ours, theirs = SupConLoss(0.005)(z1, labels), pml_losses.SupConLoss(0.005)(z2, labels)
    ours.backward()
    theirs.backward()
    assert torch.isfinite(ours) and torch.all(torch.isfinite(z1.grad))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-4, atol=1e-4)


def test_supcon_and_multi_similarity_take_index_tuples_like_pml():
    labels = torch.tensor(LABELS["balanced"])
    z = _unit(len(labels), seed=3)
    pairs = pml_miners.MultiSimilarityMiner(0.1)(z, labels)
    triplets = pml_miners.TripletMarginMiner(margin=0.5)(z, labels)
    assert pairs[0].numel() > 1 and triplets[0].numel() > 1
    for tuple_ in (pairs, triplets):
        _compare(SupConLoss(), pml_losses.SupConLoss(), z, labels, tuple_)
        _compare(MultiSimilarityLoss(), pml_losses.MultiSimilarityLoss(), z, labels, tuple_)
    with pytest.raises(ValueError, match="indices_tuple must be"):
        SupConLoss()(z, labels, (pairs[0],))


@pytest.mark.parametrize("case", list(LABELS))
@pytest.mark.parametrize(("alpha", "beta", "base"), [(2.0, 50.0, 0.5), (1.0, 10.0, 0.0)])
def test_multi_similarity_equals_pml(case, alpha, beta, base):
    labels = torch.tensor(LABELS[case])
    _compare(
        MultiSimilarityLoss(alpha, beta, base),
        pml_losses.MultiSimilarityLoss(alpha, beta, base),
        _unit(len(labels), seed=4),
        labels,
    )


def _pair_set(t):
    return set(zip(t[0].tolist(), t[1].tolist(), strict=True)), set(zip(t[2].tolist(), t[3].tolist(), strict=True))


@pytest.mark.parametrize("case", list(LABELS))
@pytest.mark.parametrize("epsilon", [0.1, 0.5])
def test_multi_similarity_miner_and_mined_loss_equal_pml(case, epsilon):
    labels = torch.tensor(LABELS[case])
    z = _unit(len(labels), seed=5)
    ours = MultiSimilarityMiner(epsilon)(z, labels)
    theirs = pml_miners.MultiSimilarityMiner(epsilon)(z, labels)
    assert _pair_set(ours) == _pair_set(theirs)
    assert all(t.dtype == torch.long for t in ours)
    pml_miner, pml_loss = pml_miners.MultiSimilarityMiner(epsilon), pml_losses.MultiSimilarityLoss()
    if all(len(t) <= 1 for t in theirs) and any(len(t) == 1 for t in theirs):
        return  # PML's loss ignores a single mined pair (documented difference)
    _compare(MultiSimilarityLoss(epsilon=epsilon), lambda t, y: pml_loss(t, y, pml_miner(t, y)), z, labels)


def test_multi_similarity_miner_keeps_a_subset_and_checks_inputs():
    labels = torch.tensor(LABELS["balanced"])
    noise = torch.randn(12, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    z = torch.nn.functional.normalize(torch.eye(6, dtype=torch.float64)[labels] + 0.5 * noise, dim=1)
    pos, neg = _pair_set(MultiSimilarityMiner(0.1)(z, labels))
    assert 0 < len(pos) < 24 and 0 < len(neg) < 108  # loosely clustered: some pairs are easy
    with pytest.raises(ValueError, match="epsilon"):
        MultiSimilarityMiner(float("nan"))
    with pytest.raises(TypeError, match="integer dtype"):
        MultiSimilarityMiner()(_unit(4), torch.zeros(4))


def _brute_prototypical(z, labels):
    """Snell et al.'s loss in the batch by loops: leave-one-out prototype for the sample's own class."""
    ys = labels.tolist()
    terms = []
    for i, y in enumerate(ys):
        mates = [j for j, yj in enumerate(ys) if yj == y and j != i]
        if not mates:
            continue
        logits = {}
        for k in sorted(set(ys)):
            members = mates if k == y else [j for j, yj in enumerate(ys) if yj == k]
            prototype = sum(z[j] for j in members) / len(members)
            logits[k] = -((z[i] - prototype) ** 2).sum()
        terms.append(torch.logsumexp(torch.stack(list(logits.values())), 0) - logits[y])
    return torch.stack(terms).mean() if terms else z.sum() * 0


@pytest.mark.parametrize("case", list(LABELS))
def test_prototypical_equals_brute_force(case):
    labels = torch.tensor(LABELS[case])
    z = _unit(len(labels), seed=7)
    loss, grad = _compare(PrototypicalLoss(), _brute_prototypical, z, labels)
    if case in ("one_class", "all_singletons"):
        assert loss.item() == 0.0 and torch.all(grad == 0)
    else:
        assert loss.item() > 0


def test_prototypical_prefers_clustered_batches_and_gradchecks():
    labels = torch.tensor(LABELS["balanced"])
    centres = torch.eye(6, dtype=torch.float64)[labels]
    clustered = torch.nn.functional.normalize(centres + 0.05 * _unit(12, seed=8), dim=1)
    assert PrototypicalLoss()(clustered, labels) < PrototypicalLoss()(_unit(12, seed=9), labels)
    z = _unit(8, dim=3, seed=10).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: PrototypicalLoss()(t, torch.tensor(LABELS["singleton"])), (z,))
    with pytest.raises(ValueError, match="no mined index tuple"):
        PrototypicalLoss()(z, torch.tensor(LABELS["singleton"]), (torch.tensor([0]),) * 3)
