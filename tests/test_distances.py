"""pairwise_distances against torch.cdist, plus the gradient guarantees the losses rely on."""

import pytest
import torch

from norank.distances import pairwise_distances, pairwise_distances_between


def _points(n=12, m=5, seed=0):
    return torch.randn(n, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("squared", [True, False])
def test_matches_cdist(squared):
    z = _points()
    ref = torch.cdist(z, z)
    ref = ref**2 if squared else ref
    d = pairwise_distances(z, squared=squared)
    assert d.shape == (12, 12)
    torch.testing.assert_close(d, ref, atol=1e-10, rtol=1e-10)
    assert torch.all(torch.diagonal(d) == 0)
    assert torch.all(d >= 0)


@pytest.mark.parametrize("squared", [True, False])
def test_between_matches_cdist(squared):
    a, b = _points(7, 4, 1), _points(9, 4, 2)
    ref = torch.cdist(a, b)
    ref = ref**2 if squared else ref
    d = pairwise_distances_between(a, b, squared=squared)
    assert d.shape == (7, 9)
    torch.testing.assert_close(d, ref, atol=1e-10, rtol=1e-10)


def test_rounding_never_gives_negative_squared_distance():
    # Near-identical large vectors: the expansion ||a||²+||b||²−2ab cancels catastrophically.
    base = torch.full((1, 64), 1e3)
    z = base + 1e-6 * torch.randn(6, 64, generator=torch.Generator().manual_seed(0))
    assert torch.all(pairwise_distances(z) >= 0)
    assert torch.all(pairwise_distances_between(z, z) >= 0)


def test_plain_euclidean_gradient_finite_at_zero_distance():
    z = _points(6, 3)
    z = torch.cat([z, z[:2]]).requires_grad_(True)  # rows 6, 7 duplicate rows 0, 1
    pairwise_distances(z, squared=False).sum().backward()
    assert torch.all(torch.isfinite(z.grad))
    # The duplicated pair's own distance contributes no gradient (it sits at the kink).
    z2 = z.detach().clone().requires_grad_(True)
    pairwise_distances(z2, squared=False)[0, 6].backward()
    assert torch.all(z2.grad == 0)


@pytest.mark.parametrize("squared", [True, False])
def test_gradcheck(squared):
    z = _points(5, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: pairwise_distances(t, squared=squared), (z,))
    b = _points(4, 3, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, t: pairwise_distances_between(s, t, squared=squared), (z, b))


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        pairwise_distances(torch.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        pairwise_distances(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        pairwise_distances([[0.0, 1.0]])
    with pytest.raises(ValueError, match="same number of columns"):
        pairwise_distances_between(torch.zeros(3, 2), torch.zeros(3, 4))


def test_distance_names_and_shared_checks():
    from norank.distances import (
        DISTANCES,
        check_distance,
        check_label_tensor,
        check_matrix,
        distance_matrix,
    )

    z = _points()
    assert DISTANCES == ("euclidean", "squared")
    torch.testing.assert_close(distance_matrix(z, "squared"), pairwise_distances(z, squared=True))
    torch.testing.assert_close(distance_matrix(z), pairwise_distances(z, squared=False))
    with pytest.raises(ValueError, match="'euclidean', 'squared'"):
        check_distance("cosine")
    with pytest.raises(ValueError, match="at least 2 rows"):
        check_matrix("z", z[:1], min_rows=2)
    with pytest.raises(TypeError, match="torch.as_tensor"):
        check_label_tensor([0, 1], 2)
    with pytest.raises(TypeError, match="integer dtype"):
        check_label_tensor(torch.tensor([True, False]), 2)
    with pytest.raises(ValueError, match=r"shape \(3,\) to match the embeddings"):
        check_label_tensor(torch.tensor([0, 1]), 3)
