"""Losses against pytorch-metric-learning (values and gradients, float64) and brute-force loops: the
triplet family, the class-vector family (Proxy-Anchor, ArcFace) and the registry."""

import math
import pickle

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.reducers import MeanReducer
from shared import GRAD_TOL, VALUE_TOL

from norank.distances import pairwise_distances
from norank.losses import (
    LOSSES,
    ArcFaceLoss,
    MultiSimilarityLoss,
    ProxyAnchorLoss,
    TripletLoss,
    make_loss,
    triplet_margin_loss,
)
from norank.mining import (
    MINERS,
    active_anchor_fraction,
    all_triplets,
    hard_triplets,
    semihard_triplets,
)

# Edge-case label sets: a one-sample class, two classes, one class only, no two samples alike.
EDGE_LABELS = {
    "singleton": [0, 0, 0, 1, 1, 2, 3, 3],
    "two_classes": [0, 1] * 5,
    "one_class": [2] * 6,
    "all_singletons": [0, 1, 2, 3, 4, 5],
}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _batch(n_classes=4, per_class=4, dim=6, seed=0):
    g = _gen(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    z = torch.nn.functional.normalize(torch.randn(labels.numel(), dim, generator=g, dtype=torch.float64), dim=1)
    return z, labels


def _unit(n, dim=6, seed=0):
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=_gen(seed), dtype=torch.float64), dim=1)


def assert_same_as_pml(ours, theirs, z, labels, *extra):
    """Equal values and embedding gradients of two losses on the same batch; returns both losses."""
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    a, b = ours(z1, labels, *extra), theirs(z2, labels, *extra)
    torch.testing.assert_close(a, b, **VALUE_TOL)
    a.backward()
    b.backward()
    torch.testing.assert_close(z1.grad, z2.grad, **GRAD_TOL)
    return a, b


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("miner", [all_triplets, semihard_triplets, hard_triplets])
def test_triplet_loss_equals_pml(squared, miner):
    z, labels = _batch(seed=1)
    margin = 0.4 if squared else 0.2
    ours_z = z.clone().requires_grad_(True)
    dist = pairwise_distances(ours_z, squared=squared)
    triplets = miner(dist, labels, margin)
    assert triplets[0].numel() > 0
    ours = triplet_margin_loss(dist, *triplets, margin)
    ours.backward()

    their_z = z.clone().requires_grad_(True)
    pml = pml_losses.TripletMarginLoss(
        margin=margin, distance=LpDistance(power=2 if squared else 1, normalize_embeddings=False), reducer=MeanReducer()
    )
    theirs = pml(their_z, labels, triplets)
    theirs.backward()
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(ours_z.grad, their_z.grad, atol=1e-8, rtol=1e-7)


def test_triplet_loss_without_triplets_is_a_connected_zero():
    z = _batch()[0].requires_grad_(True)
    dist = pairwise_distances(z, squared=False)
    empty = torch.empty(0, dtype=torch.long)
    loss = triplet_margin_loss(dist, empty, empty, empty, 0.2)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(z.grad == 0)


def test_triplet_loss_gradcheck():
    z, labels = _batch(n_classes=3, per_class=2, dim=3, seed=2)
    triplets = all_triplets(pairwise_distances(z), labels, 0.5)
    for squared in (True, False):

        def fn(t, squared=squared):
            return triplet_margin_loss(pairwise_distances(t, squared=squared), *triplets, 0.5)

        assert torch.autograd.gradcheck(fn, (z.clone().requires_grad_(True),))


def test_triplet_loss_bad_input():
    dist = pairwise_distances(_batch()[0])
    idx = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="equal length"):
        triplet_margin_loss(dist, idx, idx, idx[:1], 0.2)
    with pytest.raises(ValueError, match="margin"):
        triplet_margin_loss(dist, idx, idx, idx, float("nan"))
    with pytest.raises(TypeError, match="dist"):
        triplet_margin_loss(dist[0], idx, idx, idx, 0.2)


@pytest.mark.parametrize("present", ["all", "some"])
def test_proxy_anchor_equals_pml(present):
    n_classes, dim = 6, 8
    g = _gen(10)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 5, 5]) if present == "all" else torch.tensor([0, 0, 2, 2, 2, 5])
    z = torch.randn(labels.numel(), dim, generator=g, dtype=torch.float64)
    ours = ProxyAnchorLoss(n_classes, dim, margin=0.1, alpha=32.0, generator=g).double()
    theirs = pml_losses.ProxyAnchorLoss(n_classes, dim, margin=0.1, alpha=32.0)
    theirs.proxies.data = ours.proxies.detach().clone()
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    loss_ours, loss_theirs = ours(z1, labels), theirs(z2, labels)
    torch.testing.assert_close(loss_ours, loss_theirs, atol=1e-9, rtol=1e-9)
    loss_ours.backward()
    loss_theirs.backward()
    torch.testing.assert_close(z1.grad, z2.grad, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(ours.proxies.grad, theirs.proxies.grad, atol=1e-9, rtol=1e-7)


def test_proxy_anchor_seeded_init_and_gradcheck():
    a = ProxyAnchorLoss(5, 4, generator=_gen(0))
    b = ProxyAnchorLoss(5, 4, generator=_gen(0))
    c = ProxyAnchorLoss(5, 4, generator=_gen(1))
    assert torch.equal(a.proxies, b.proxies) and not torch.equal(a.proxies, c.proxies)
    assert a.proxies.std().item() == pytest.approx(math.sqrt(2 / 5), rel=0.5)  # Kaiming fan-out scale
    loss_fn = ProxyAnchorLoss(4, 3, alpha=4.0, generator=_gen(2)).double()
    z = torch.randn(6, 3, generator=_gen(3), dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 3, 3])
    assert torch.autograd.gradcheck(lambda t: loss_fn(t, labels), (z,))


def test_proxy_anchor_bad_labels():
    loss_fn = ProxyAnchorLoss(3, 4, generator=_gen(0))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss_fn(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="class vectors have 4"):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positive integer"):
        ProxyAnchorLoss(0, 4)


def test_proxy_anchor_one_class_batch_has_finite_gradients():
    # One class only: its negative term is empty (the old loss back-propagated NaN into the proxies).
    ours = ProxyAnchorLoss(4, 6, generator=_gen(3)).double()
    theirs = pml_losses.ProxyAnchorLoss(4, 6)
    theirs.proxies.data = ours.proxies.detach().clone()
    labels = torch.tensor(EDGE_LABELS["one_class"])
    assert_same_as_pml(ours, theirs, _unit(6, seed=4), labels)
    assert torch.all(torch.isfinite(ours.proxies.grad))
    torch.testing.assert_close(ours.proxies.grad, theirs.proxies.grad, **GRAD_TOL)


@pytest.mark.parametrize("mining", list(MINERS))
@pytest.mark.parametrize("distance", ["euclidean", "squared"])
def test_triplet_loss_object_equals_functions_and_pml(mining, distance):
    z, labels = _batch(n_classes=4, per_class=3, seed=5)
    margin = 0.3 if distance == "squared" else 0.2
    squared = distance == "squared"
    loss_fn = TripletLoss(margin=margin, distance=distance, mining=mining)
    triplets = MINERS[mining](pairwise_distances(z, squared=squared), labels, margin)
    assert triplets[0].numel() > 0
    pml = pml_losses.TripletMarginLoss(
        margin=margin, reducer=MeanReducer(), distance=LpDistance(power=2 if squared else 1, normalize_embeddings=False)
    )
    assert_same_as_pml(loss_fn, lambda t, y: pml(t, y, triplets), z, labels)
    dist = pairwise_distances(z, squared=squared)
    assert loss_fn.stats["active_fraction"].item() == pytest.approx(
        active_anchor_fraction(dist, *triplets, margin, labels), abs=1e-12
    )
    assert loss_fn.stats["embedding_spread"].item() == pytest.approx(torch.cdist(z, z).mean().item(), rel=1e-9)
    assert all(t.ndim == 0 and not t.requires_grad for t in loss_fn.stats.values())


def test_triplet_loss_uses_given_triplets_and_refuses_pairs():
    z, labels = _batch(seed=6)
    given = hard_triplets(pairwise_distances(z), labels, 0.2)
    loss_fn = TripletLoss(margin=0.2, distance="squared", mining="semihard")
    pml = pml_losses.TripletMarginLoss(
        margin=0.2, reducer=MeanReducer(), distance=LpDistance(power=2, normalize_embeddings=False)
    )
    assert_same_as_pml(loss_fn, pml, z, labels, given)
    mined = semihard_triplets(pairwise_distances(z), labels, 0.2)
    assert not torch.equal(loss_fn(z, labels, given), loss_fn(z, labels, mined))
    with pytest.raises(ValueError, match="anchors, positives, negatives"):
        loss_fn(z, labels, (*given, given[0]))


@pytest.mark.parametrize("case", ["one_class", "all_singletons"])
def test_triplet_loss_without_triplets_is_an_attached_zero(case):
    labels = torch.tensor(EDGE_LABELS[case])
    z = _unit(len(labels), seed=7).requires_grad_(True)
    loss_fn = TripletLoss()
    loss = loss_fn(z, labels)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(z.grad == 0)
    assert loss_fn.stats["active_fraction"].item() == 0.0


def test_triplet_loss_checks_settings_and_inputs():
    with pytest.raises(ValueError, match="'euclidean', 'squared'"):
        TripletLoss(distance="cosine")
    with pytest.raises(ValueError, match="'semihard'"):
        TripletLoss(mining="semi-hard")
    with pytest.raises(ValueError, match="margin"):
        TripletLoss(margin=-1.0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        TripletLoss()(_unit(4), torch.tensor([0, 0, 1]))
    with pytest.raises(TypeError, match="integer dtype"):
        TripletLoss()(_unit(4), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert "margin=0.5" in repr(TripletLoss(margin=0.5))


def _arcface_pair(n_classes=6, dim=6, seed=8, margin=28.6, scale=64.0):
    ours = ArcFaceLoss(n_classes, dim, margin_degrees=margin, scale=scale, generator=_gen(seed)).double()
    theirs = pml_losses.ArcFaceLoss(n_classes, dim, margin=margin, scale=scale)
    theirs.W.data = ours.weight.detach().T.clone()
    return ours, theirs


@pytest.mark.parametrize("case", ["balanced", *EDGE_LABELS])
@pytest.mark.parametrize(("margin", "scale"), [(28.6, 64.0), (10.0, 8.0)])
def test_arcface_equals_pml(case, margin, scale):
    labels = torch.arange(4).repeat(3) if case == "balanced" else torch.tensor(EDGE_LABELS[case])
    ours, theirs = _arcface_pair(margin=margin, scale=scale)
    assert_same_as_pml(ours, theirs, _unit(len(labels), seed=9), labels)
    torch.testing.assert_close(ours.weight.grad, theirs.W.grad.T, **GRAD_TOL)


def test_arcface_both_branches_and_finite_gradient_at_the_weight():
    ours, theirs = _arcface_pair(n_classes=3, dim=4, margin=40.0)
    w = torch.nn.functional.normalize(ours.weight.detach(), dim=1)
    # Sample 0 points away from its class weight (θ = π: the linear branch), sample 1 right at it
    # (θ = 0, where acos has an infinite derivative), sample 2 in between.
    z = torch.stack([-w[0], w[1], torch.nn.functional.normalize(w[2] + w[0], dim=0)])
    labels = torch.tensor([0, 1, 2])
    z1 = z.clone().requires_grad_(True)
    loss = ours(z1, labels)
    torch.testing.assert_close(loss, theirs(z.clone(), labels), **VALUE_TOL)
    loss.backward()
    assert torch.all(torch.isfinite(z1.grad)) and torch.all(torch.isfinite(ours.weight.grad))


def test_class_vector_losses_check_inputs():
    for cls in (ProxyAnchorLoss, ArcFaceLoss):
        loss_fn = cls(3, 4, generator=_gen(0))
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            loss_fn(_unit(2, 4), torch.tensor([0, 3]))
        with pytest.raises(ValueError, match="no mined index tuple"):
            loss_fn(_unit(2, 4), torch.tensor([0, 1]), (torch.tensor([0]),) * 3)
        assert len(list(loss_fn.parameters())) == 1 and loss_fn.lr_multiplier > 0
    with pytest.raises(ValueError, match="margin_degrees"):
        ArcFaceLoss(3, 4, margin_degrees=180.0)
    assert torch.equal(ArcFaceLoss(3, 4, generator=_gen(1)).weight, ArcFaceLoss(3, 4, generator=_gen(1)).weight)


def test_registry_builds_each_name_with_norank_settings():
    assert list(LOSSES) == ["triplet", "proxy_anchor", "supcon", "multi_similarity", "arcface", "prototypical"]
    settings = {
        "n_classes": 5,
        "embedding_dim": 4,
        "margin": 0.7,
        "distance": "squared",
        "mining": "hard",
        "generator": _gen(0),
    }
    built = {name: make_loss(name, **settings) for name in LOSSES}
    for name, loss_fn in built.items():
        assert isinstance(loss_fn, LOSSES[name]) and loss_fn.name == name
        pickle.loads(pickle.dumps(loss_fn))
    assert (built["triplet"].margin, built["triplet"].distance, built["triplet"].mining) == (0.7, "squared", "hard")
    assert built["proxy_anchor"].proxies.shape == built["arcface"].weight.shape == (5, 4)
    assert isinstance(built["multi_similarity"], MultiSimilarityLoss) and built["multi_similarity"].epsilon == 0.1
    with pytest.raises(ValueError, match="'triplet', 'proxy_anchor', 'supcon', 'multi_similarity'"):
        make_loss("contrastive")
    with pytest.raises(ValueError, match="n_classes and embedding_dim"):
        make_loss("arcface")


# Losses defined as 0 on a batch without negatives or without positives (the others are positive there).
# multi_similarity as make_loss builds it mines pairs, and its miner keeps none when either kind is absent.
DEFINED_ZERO = {
    "one_class": {"triplet", "supcon", "prototypical", "multi_similarity"},
    "all_singletons": {"triplet", "supcon", "prototypical", "multi_similarity"},
}


@pytest.mark.parametrize("case", list(EDGE_LABELS))
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_finite_on_edge_batches(name, case):
    labels = torch.tensor(EDGE_LABELS[case])
    loss_fn = make_loss(name, n_classes=6, embedding_dim=6, margin=0.5, generator=_gen(2)).double()
    z = _unit(len(labels), seed=10).requires_grad_(True)
    loss = loss_fn(z, labels)
    assert loss.ndim == 0 and loss.requires_grad and math.isfinite(loss.item())
    loss.backward()
    assert torch.all(torch.isfinite(z.grad))
    assert all(torch.all(torch.isfinite(p.grad)) for p in loss_fn.parameters())
    if name in DEFINED_ZERO.get(case, ()):
        assert loss.item() == 0.0 and torch.all(z.grad == 0)
    elif case in DEFINED_ZERO:
        assert loss.item() > 0.0
