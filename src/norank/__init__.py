"""norank: no-rank tensor decomposition by metric learning.

A labelled stack of tensors goes in; an encoder trained with a triplet loss (plus decorrelation and
uniformity penalties) comes out, giving embeddings on the unit sphere where Euclidean distance follows
class similarity. No rank to choose.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers and editors see the real objects; at run time they load on first use
    from norank.classifier import NoRankClassifier
    from norank.datasets import load
    from norank.estimator import NoRankEmbedder
    from norank.metrics import evaluate

__version__ = "0.1.0"

__all__ = ["NoRankEmbedder", "NoRankClassifier", "evaluate", "load", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import norank` stays cheap (no torch) until the estimator is asked for.
    if name == "NoRankEmbedder":
        from norank.estimator import NoRankEmbedder

        return NoRankEmbedder
    if name == "NoRankClassifier":
        from norank.classifier import NoRankClassifier

        return NoRankClassifier
    if name == "evaluate":
        from norank.metrics import evaluate

        return evaluate
    if name == "load":
        from norank.datasets import load

        return load
    raise AttributeError(f"module 'norank' has no attribute {name!r}")
