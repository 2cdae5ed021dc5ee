"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from norank import NoRankEmbedder


# A short training keeps the ~45 checks fast; every code path (validation, training, transform) still runs.
@parametrize_with_checks([NoRankEmbedder(epochs=2, hidden_layer_sizes=(16,), embedding_dim=8, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
