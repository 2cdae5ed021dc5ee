"""Regularisers against brute-force loops and SciPy; the term objects against their functions."""

import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from norank import losses
from norank.regularizers import (
    REGULARIZERS,
    Diversity,
    GlobalPreservation,
    LocalPreservation,
    Uniformity,
    diversity_loss,
    global_preservation_loss,
    local_preservation_loss,
    uniformity_loss,
)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _batch(n_classes=4, per_class=4, dim=6, seed=0):
    g = _gen(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    z = torch.nn.functional.normalize(torch.randn(labels.numel(), dim, generator=g, dtype=torch.float64), dim=1)
    return z, labels


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
        terms = [
            math.exp(-t * sum((a - b) ** 2 for a, b in zip(rows[i], rows[j], strict=True)))
            for i, j in itertools.combinations(range(len(rows)), 2)
        ]
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
    assert local_preservation_loss(0.1 * z, x).item() == pytest.approx(local_preservation_loss(z, x).item(), rel=1e-6)
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


def test_terms_equal_their_functions_and_carry_names():
    g = _gen(11)
    x = torch.randn(9, 5, generator=g, dtype=torch.float64)
    z = torch.randn(9, 3, generator=g, dtype=torch.float64)
    cases = [
        (Diversity(), diversity_loss(z), "diversity", False),
        (Uniformity(t=0.5), uniformity_loss(z, 0.5), "uniformity", False),
        (LocalPreservation(n_neighbors=3), local_preservation_loss(z, x, 3), "local", True),
        (GlobalPreservation(), global_preservation_loss(z, x), "global", True),
    ]
    for term, expected, name, needs_inputs in cases:
        assert term.name == name and term.needs_inputs is needs_inputs
        assert torch.equal(term(z, inputs=x if needs_inputs else None), expected)
        assert REGULARIZERS[name] is type(term)
        assert pickle.loads(pickle.dumps(term)) == term
        assert repr(term).startswith(type(term).__name__)
    assert Uniformity(t=0.5) != Uniformity(t=2.0)


def test_terms_check_settings_once_and_need_inputs():
    with pytest.raises(ValueError, match="t must be"):
        Uniformity(t=0)
    with pytest.raises(ValueError, match="n_neighbors"):
        LocalPreservation(n_neighbors=0)
    with pytest.raises(ValueError, match="inputs"):
        GlobalPreservation()(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="inputs"):
        LocalPreservation()(torch.zeros(4, 2), None)


def test_old_names_reexported_from_losses():
    for name in ("diversity_loss", "uniformity_loss", "local_preservation_loss", "global_preservation_loss"):
        assert getattr(losses, name) is globals()[name]
