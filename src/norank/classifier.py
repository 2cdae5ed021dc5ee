"""`NoRankClassifier`: norank's embedding with a logistic regression on top, as one scikit-learn classifier.

The head was chosen by measurement (docs/defaults.md, "Classifier"): held-out 70/30 stratified splits of
digits and Olivetti, tuning seeds 100-102, the same embedding under each head. At the default 30 epochs,
1-NN, 5-NN, 10-NN, nearest class mean and logistic regression were equally accurate (digits 0.988-0.990,
Olivetti 0.992: at most one test sample apart), while the logistic regression's probabilities were the
best (held-out log-loss 0.030 against 0.12-0.15 on digits, 0.049 against 0.08-0.14 on Olivetti), and a
probability per class is what `predict_proba` is for. The price, measured on a weaker embedding (5
epochs): 1-NN was then about one point more accurate (digits 0.983 against 0.974, Olivetti 0.986 against
0.969). Weak regularisation (C = 1000) suits unit-norm embeddings: Olivetti's log-loss was 1.03 at C = 1,
0.25 at C = 10, 0.086 at C = 100 and 0.049 at C = 1000, at the same accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from norank.estimator import NoRankEmbedder
from norank.validation import LazyArray, check_X

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

HEAD = "logistic"
HEAD_C = 1000.0  # inverse l2 strength of the head (module docstring)
HEAD_MAX_ITER = 2000
_CHUNK = 8192  # samples embedded at once


class NoRankClassifier(ClassifierMixin, NoRankEmbedder):
    r"""Classify tensors in norank's learned embedding.

    `fit` trains the embedding exactly as `NoRankEmbedder` does (every keyword, same defaults), then a
    multinomial logistic regression (C = 1000, lbfgs) on the unit-norm training embeddings; `predict`,
    `predict_proba` and `decision_function` embed new samples and apply it. At the defaults, nearest
    neighbours and nearest class mean classified as accurately on held-out data, with worse probabilities;
    on a weaker embedding (few epochs) 1-NN was about a point more accurate (docs/defaults.md,
    "Classifier"). `transform` still returns the embedding, and `save` / `load` keep the head beside it in
    the same two files (safetensors + JSON, no pickle).

    Parameters
    ----------
    \*\*params
        Every keyword of :class:`norank.NoRankEmbedder`, with the same defaults.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in `fit`, in the caller's dtype (sorted).
    coef_ : ndarray of shape (1, embedding_dim) for two classes, else (n_classes, embedding_dim)
        Weights of the logistic head on the embedding.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    The fitted attributes of :class:`norank.NoRankEmbedder` (encoder_, history_, ...).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from norank import NoRankClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NoRankClassifier(epochs=5, random_state=0).fit(X[:1000], y[:1000])
    >>> clf.predict(X[1000:1003]).shape
    (3,)
    """

    def fit(self, X: ArrayLike | LazyArray, y: ArrayLike) -> Self:
        """Train the embedding on (X, y), then the logistic head on the training embeddings; returns self."""
        from sklearn.linear_model import LogisticRegression

        if y is not None:
            check_classification_targets(y)  # continuous targets are a regression, not classes
        super().fit(X, y)
        # The head sorts the labels as fit did (np.unique), so its rows follow classes_.
        head = LogisticRegression(C=HEAD_C, max_iter=HEAD_MAX_ITER).fit(self._embed(X), y)
        # C order, as load gives them back: the same layout gives bitwise the same products.
        self.coef_ = np.ascontiguousarray(head.coef_, dtype=np.float64)
        self.intercept_ = np.ascontiguousarray(head.intercept_, dtype=np.float64)
        return self

    def _embed(self, X: ArrayLike | LazyArray) -> NDArray[np.float64]:
        """The head's input: X embedded with the encoder's weights in float64.

        In float32 the encoder's products round differently for different batch sizes (about 1e-7), and the
        head's weights magnify that to about 1e-6 in the logits; in float64 a sample's logits no longer
        depend on which other samples are predicted with it.
        """
        import torch
        from torch.func import functional_call

        check_is_fitted(self, "encoder_")
        X, lazy = check_X(X, estimator_name=type(self).__name__)
        if tuple(X.shape[1:]) != self.input_shape_:
            return self.transform(X).astype(np.float64)  # raises the embedder's own error for the wrong shape
        state = {k: v.double() if v.is_floating_point() else v for k, v in self.encoder_.state_dict().items()}
        out = np.empty((len(X), self.embedding_dim), np.float64)
        self.encoder_.eval()
        with torch.inference_mode():
            for start in range(0, len(X), _CHUNK):
                chunk = check_X(np.asarray(X[start : start + _CHUNK]))[0] if lazy else X[start : start + _CHUNK]
                rows = torch.from_numpy(self.preprocessor_.transform(chunk)).to(self.device_, torch.float64)
                out[start : start + len(rows)] = functional_call(self.encoder_, state, (rows,)).cpu().numpy()
        return out

    def decision_function(self, X: ArrayLike | LazyArray) -> NDArray[np.float64]:
        """Logits of the head: shape (n,) for two classes (positive favours classes_[1]), else (n, n_classes)."""
        check_is_fitted(self, "coef_")
        scores = self._embed(X) @ self.coef_.T + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X: ArrayLike | LazyArray) -> NDArray[np.float64]:
        """Probability of each class in classes_ order, shape (n, n_classes); rows sum to 1."""
        from scipy.special import expit, softmax

        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = expit(scores)
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict(self, X: ArrayLike | LazyArray) -> np.ndarray:
        """The most probable class of each sample, in the dtype of classes_."""
        scores = self.decision_function(X)
        best = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[best]

    def score(self, X: ArrayLike | LazyArray, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of `predict(X)` against y (scikit-learn's classifier score, not the embedder's precision@1)."""
        return float(ClassifierMixin.score(self, X, y, sample_weight=sample_weight))

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the embedding and the head to the folder `path` (config.json + weights.safetensors),
        atomically, as `NoRankEmbedder.save` does."""
        from norank.persistence import save_model

        check_is_fitted(self, "coef_")
        arrays = {"coef_": self.coef_, "intercept_": self.intercept_}
        return save_model(self, path, head=({"kind": HEAD, "C": HEAD_C}, arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> NoRankClassifier:
        """Read a classifier written by `save`, every field and tensor shape checked first."""
        from norank.persistence import HeadSpec, load_model

        return load_model(cls, path, device, head=HeadSpec(_head_shapes, _restore_head))


def _head_shapes(config: Any, params: dict, fitted: dict) -> dict:
    """The head's arrays as the saved head config and class count imply them."""
    from norank.model_schema import _want

    _want(
        isinstance(config, dict) and config.get("kind") == HEAD and set(config) == {"kind", "C"},
        f"head must be {{'kind': {HEAD!r}, 'C': ...}}",
    )
    rows = 1 if len(fitted["classes_"]) == 2 else len(fitted["classes_"])
    return {"coef_": (("F64",), (rows, params["embedding_dim"])), "intercept_": (("F64",), (rows,))}


def _restore_head(est: Any, config: dict, arrays: dict) -> None:
    est.coef_, est.intercept_ = arrays["coef_"], arrays["intercept_"]
