"""Loss terms against pytorch-metric-learning and brute-force loops; gradients checked in float64."""

import itertools
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.reducers import MeanReducer
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from norank.distances import pairwise_distances
from norank.losses import (
    ProxyAnchorLoss,
    diversity_loss,
    global_preservation_loss,
    local_preservation_loss,
    triplet_margin_loss,
    uniformity_loss,
)
from norank.mining import all_triplets, hard_triplets, semihard_triplets


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _batch(n_classes=4, per_class=4, dim=6, seed=0):
    g = _gen(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.numel(), generator=g)]
    z = torch.nn.functional.normalize(torch.randn(labels.numel(), dim, generator=g, dtype=torch.float64), dim=1)
    return z, labels


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
        margin=margin, distance=LpDistance(power=2 if squared else 1, normalize_embeddings=False),
        reducer=MeanReducer())
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
        fn = lambda t: triplet_margin_loss(pairwise_distances(t, squared=squared), *triplets, 0.5)  # noqa: E731
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


def _brute_diversity(z):
    z = z.tolist()
    b, m = len(z), len(z[0])
    cols = [[row[k] for row in z] for k in range(m)]
    means = [sum(c) / b for c in cols]
    total = 0.0
    for i, j in itertools.permutations(range(m), 2):
        cov = sum((cols[i][s] - means[i]) * (cols[j][s] - means[j]) for s in range(b))
        vi = sum((v - means[i]) ** 2 for v in cols[i])
        vj = sum((v - means[j]) ** 2 for v in cols[j])
        total += (cov / math.sqrt(vi * vj)) ** 2
    return total / (m * (m - 1))


def test_diversity_equals_brute_force():
    z = torch.randn(10, 5, generator=_gen(3), dtype=torch.float64)
    z[:, 3] = 0.5 * z[:, 0] + 0.1 * z[:, 3]  # some real correlation
    assert diversity_loss(z).item() == pytest.approx(_brute_diversity(z), rel=1e-6)
    # Collapse onto a line: every pair of dimensions perfectly correlated.
    line = torch.randn(10, 1, generator=_gen(4), dtype=torch.float64) * torch.tensor([[1.0, -2.0, 3.0]])
    assert diversity_loss(line).item() == pytest.approx(1.0, rel=1e-6)


def test_diversity_constant_dimension_is_finite():
    z = torch.randn(8, 4, generator=_gen(5), dtype=torch.float64)
    z[:, 2] = 0.7
    z.requires_grad_(True)
    loss = diversity_loss(z)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(z.grad))
    # The constant column contributes 0; the others keep their brute-force correlations.
    keep = z.detach()[:, [0, 1, 3]]
    assert loss.item() == pytest.approx(_brute_diversity(keep) * 6 / 12, rel=1e-5)
    constant = torch.ones(8, 4, dtype=torch.float64, requires_grad=True)
    diversity_loss(constant).backward()
    assert torch.all(torch.isfinite(constant.grad))


def test_uniformity_equals_brute_force_and_is_stable():
    z = _batch(seed=6)[0]
    rows = z.tolist()
    for t in (0.5, 2.0):
        terms = [math.exp(-t * sum((a - b) ** 2 for a, b in zip(rows[i], rows[j])))
                 for i, j in itertools.combinations(range(len(rows)), 2)]
        assert uniformity_loss(z, t=t).item() == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-9)
    # Large t: naive exp underflows to 0 and log(0) = -inf; logsumexp stays finite.
    far = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    naive = torch.log(torch.exp(-500.0 * pdist_t(far) ** 2).mean()).item()
    assert naive == -math.inf
    value = uniformity_loss(far, t=500.0).item()
    assert math.isfinite(value)
    assert value == pytest.approx(-500.0 * 2.0 + math.log(2 / 3), rel=1e-9)  # two pairs at 2, one at 4


def pdist_t(x):
    i, j = torch.triu_indices(len(x), len(x), offset=1)
    return (x[i] - x[j]).norm(dim=1)


def _brute_local(z, x, k):
    z, x = np.asarray(z), np.asarray(x)
    b = len(z)
    near = []
    for i in range(b):
        dx = [(np.sum((x[i] - x[j]) ** 2), j) for j in range(b) if j != i]
        for _, j in sorted(dx)[:k]:
            near.append(np.sum((z[i] - z[j]) ** 2))
    everyone = [np.sum((z[i] - z[j]) ** 2) for i in range(b) for j in range(b) if i != j]
    return np.mean(near) / np.mean(everyone)


def test_local_preservation_equals_brute_force():
    g = _gen(7)
    x = torch.randn(12, 9, generator=g, dtype=torch.float64)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64)
    for k in (1, 5):
        assert local_preservation_loss(z, x, k).item() == pytest.approx(_brute_local(z, x, k), rel=1e-6)
    assert local_preservation_loss(z, x, 50).item() == pytest.approx(_brute_local(z, x, 11), rel=1e-6)
    # Scale-free: shrinking the embedding cannot lower it.
    assert local_preservation_loss(0.1 * z, x).item() == pytest.approx(local_preservation_loss(z, x).item(),
                                                                        rel=1e-6)
    # An embedding that copies the input keeps neighbours closer than random pairs.
    assert local_preservation_loss(x, x).item() < local_preservation_loss(z, x).item()


def test_global_preservation_equals_pearson():
    g = _gen(8)
    x = torch.randn(12, 9, generator=g, dtype=torch.float64)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64)
    r = pearsonr(pdist(x.numpy()), pdist(z.numpy())).statistic
    assert global_preservation_loss(z, x).item() == pytest.approx(1 - r, rel=1e-6)
    assert global_preservation_loss(3.0 * x, x).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("term", ["diversity", "uniformity", "local", "global"])
def test_gradcheck_and_finite_gradients(term):
    g = _gen(9)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    fns = {
        "diversity": diversity_loss,
        "uniformity": uniformity_loss,
        "local": lambda t: local_preservation_loss(t, x, 2),
        "global": lambda t: global_preservation_loss(t, x),
    }
    z = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fns[term], (z,))
    # Collapsed batch (all rows equal): gradients must stay finite.
    collapsed = torch.ones(7, 3, dtype=torch.float64, requires_grad=True)
    fns[term](collapsed).backward()
    assert torch.all(torch.isfinite(collapsed.grad))


def test_small_batch_errors():
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity_loss(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 2 embedding dimensions"):
        diversity_loss(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="n_neighbors"):
        local_preservation_loss(torch.zeros(4, 2), torch.zeros(4, 3), 0)
    with pytest.raises(ValueError, match="same number of rows"):
        global_preservation_loss(torch.zeros(4, 2), torch.zeros(5, 3))


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
    with pytest.raises(ValueError, match="proxies have 4"):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positive integer"):
        ProxyAnchorLoss(0, 4)
