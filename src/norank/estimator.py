"""`NoRankEmbedder`: the no-rank metric-learning decomposition as a scikit-learn estimator.

`fit` validates the input, fits the preprocessing on the training samples, and runs the training loop
(`norank.training`); `transform` maps new samples to unit-norm float32 embeddings; `save` / `load` keep
weights in safetensors and everything else in JSON, so loading never unpickles anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from norank.lazy import PageReleaser
from norank.validation import LazyArray, check_dtype, check_finite, check_labels, check_X

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

_TRANSFORM_CHUNK = 8192


class NoRankEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn an embedding of labelled tensors where Euclidean distance follows class similarity.

    An encoder (an MLP with ReLU, or for images a small conv net, ℓ2-normalised output) is trained with a
    triplet loss on mined triplets, optionally plus decorrelation (diversity), uniformity and geometry
    penalties. No rank is chosen: the embedding size only bounds the capacity. The defaults were chosen
    by held-out measurement (docs/defaults.md); the paper's recipe, SGD with a Robbins–Monro schedule, a
    squared-distance margin, the diversity term and the MLP, is `optimizer="sgd",
    schedule="robbins_monro", learning_rate=0.05, distance="squared", margin=0.5, diversity_weight=0.1,
    encoder="mlp"`.

    Parameters
    ----------
    embedding_dim : int, default=64
        Size m of the embedding (rows of `transform` lie on the unit sphere of R^m).
    hidden_layer_sizes : tuple of int, default=(512,)
        Widths of the hidden ReLU layers of the MLP.
    encoder : {"auto", "mlp", "conv", "transformer"}, default="auto"
        "auto" uses the MLP, except for 2-D images (n, H, W), at least 16 pixels a side, that are not
        symmetric matrices: there it decides before training, without trial fits, from the training images
        themselves (norank.selection): when a bag of local features (tile power spectra, intensity
        quantiles) classifies a subsample clearly better by leave-one-out 1-NN than the pixels do, the
        data needs translation invariance and the conv encoder is trained; otherwise the MLP
        (`encoder_kind_`, `encoder_selection_` holds both scores). "conv" needs 2-D images; "transformer"
        tokenises image rows (or feature patches).
    dropout : float, default=0.0
    layer_norm : bool, default=False
        LayerNorm after each hidden linear layer.
    projection_head : bool, default=False
        Train the loss on g(f(x)) with a small head g; embeddings are f(x).
    loss : str or callable, default="triplet"
        A name in `norank.losses.LOSSES`, that is "triplet" (mined by `mining` with margin `margin`),
        "supcon", "multi_similarity", "prototypical", "proxy_anchor" or "arcface", or any callable
        ``(embeddings, labels) -> scalar tensor`` such as a pytorch-metric-learning loss instance; a loss
        with parameters (proxies, class weights) has them trained too, on a copy (`objective_`). For many
        classes, triplet or supcon: at 10k classes the per-class losses (proxy_anchor, arcface) cost 5-6x
        more per epoch and scored lower (`benchmarks/bench_losses.py`). A model trained with a loss object
        can be pickled but not saved with `save` (named losses only).
    miner : callable or None, default=None
        ``miner(embeddings, labels) -> indices tuple`` passed to the loss (pytorch-metric-learning's
        convention); None lets the loss mine (triplet) or use every pair.
    margin : float, default=2.0
        Triplet margin α, in units of `distance`. Euclidean distances on the unit sphere lie in [0, 2],
        so the default margin is never met: every mined triplet keeps pulling its class together and
        pushing the others away, which gave the best held-out scores (docs/defaults.md).
    distance : {"euclidean", "squared"}, default="euclidean"
    mining : {"semihard", "hard", "batch_hard", "all"}, default="semihard"
    diversity_weight : float, default=0.0
        λ1, weight of the decorrelation penalty against dimensional collapse; within noise of 0 on held-out
        scores at the default margin, so off by default.
    uniformity_weight : float, default=0.0
        λ2, weight of the uniformity penalty log E exp(−t‖z_i − z_j‖²). Off by default: any weight we
        measured (0.01–0.2) lowered held-out ARI on Olivetti and LFW (docs/defaults.md).
    uniformity_t : float, default=2.0
    local_weight, global_weight : float, default=0.0
        λ3, λ4: local (input-space neighbours stay close) and global (pairwise distances stay correlated)
        geometry preservation; they trade class separation for trustworthiness and continuity.
    local_neighbors : int, default=5
    optimizer : {"adam", "sgd"}, default="adam"
    learning_rate : float, default=0.001
    momentum : float, default=0.9
        SGD momentum (ignored by Adam).
    weight_decay : float, default=0.0
    schedule : {"cosine", "robbins_monro", "constant"}, default="cosine"
        Cosine decay to 0 over all steps, or Robbins–Monro, or constant.
    schedule_tau, schedule_kappa : float, default=100.0, 0.75
        Robbins–Monro η_t = η0 / (1 + t/τ)^κ over optimiser steps t.
    epochs : int, default=30
        Passes over the data (an epoch is ceil(n / batch_size) P×K batches).
    batch_size : int, default=128
        Samples per batch, P×K with P = batch_size // samples_per_class classes.
    samples_per_class : int, default=4
        K, samples of each class in a batch; raised to batch_size // n_classes when there are fewer
        classes than batch_size // samples_per_class, so batches keep their size.
    class_sampling : {"uniform", "sqrt", "proportional"}, default="uniform"
        How batch classes are drawn; "uniform" over-samples rare classes (imbalance-aware).
    normalization : {"sample", "feature", "tangent", "none"}, default="sample"
        Per-sample z-score ("patient-wise"), per-feature standardisation, the tangent space of SPD
        matrices (connectomes) at a training-fitted reference mean (norank.tangent), or none.
    tangent_metric : {"riemann", "logeuclid", "euclid"}, default="riemann"
        Metric of the reference mean and logarithmic map of normalization="tangent" (riemann gave the
        higher ROC-AUC on ABIDE's tuning splits: docs/defaults.md, "Tangent space").
    symmetric : bool or "auto", default="auto"
        Use the strict upper triangle of symmetric (n, R, R) matrices.
    fisher_z : bool, default=False
        Fisher z = artanh(r) of the upper triangle (correlation matrices).
    pca_components : int or None, default=None
        Project the (vectorised) training rows onto this many leading principal components before
        normalisation and the encoder; the projection is fitted on the training samples and saved with
        the model. A regulariser for wide inputs with few samples, with a cost to measure: on ABIDE
        (6105 features, ~610 training samples) 200 components raised held-out 1-NN accuracy on random
        70/30 splits but lowered it on sites left out of training, whose variance the training
        components miss (docs/defaults.md, "ABIDE"). Works with the MLP and transformer encoders, not
        the conv encoder (the pixel grid is gone).
    validation_fraction : float, default=0.0
        Stratified share held out for early stopping: after each epoch its samples are classified by their
        nearest training sample (at most 2000 of them) in the embedding, and the best epoch's weights are kept.
    n_iter_no_change : int, default=10
        Epochs without validation improvement before stopping (with `validation_fraction` > 0).
    callbacks : list of callables or None, default=None
        Each ``f(epoch, logs) -> bool | None`` is called after every epoch with that epoch's loss terms and
        diagnostics; returning True stops training. Not saved with the model.
    checkpoint_dir : str or None, default=None
        Save a checkpoint each epoch and resume from it when `fit` is run again with the same settings.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        1 shows a progress bar with the named loss terms.

    Attributes
    ----------
    classes_ : ndarray of the class labels seen in `fit`.
    n_features_in_ : int, number of values per sample.
    input_shape_ : tuple, shape of one sample.
    history_ : dict of per-epoch lists: every loss term, the share of anchors with an active triplet,
        the mean pairwise embedding distance in a batch (0 means collapse), the learning rate, and the
        validation precision@1 when used.
    n_epochs_ : int, epochs run.
    encoder_ : torch.nn.Module.
    encoder_kind_ : str, the encoder trained ("auto" resolved).
    encoder_selection_ : dict, each candidate's selection score under encoder="auto" (None when there
        was no choice to make), empty otherwise.
    preprocessor_ : norank.preprocessing.TensorPreprocessor.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from norank import NoRankEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> Z = NoRankEmbedder(epochs=5, random_state=0).fit(X, y).transform(X)
    >>> Z.shape
    (1797, 64)
    """

    # One keyword per line would run to 40 lines: the signature keeps its compact layout.
    # fmt: off
    def __init__(
        self,
        *,
        embedding_dim=64, hidden_layer_sizes=(512,), encoder="auto", dropout=0.0, layer_norm=False,
        projection_head=False, loss="triplet", miner=None, margin=2.0, distance="euclidean", mining="semihard",
        diversity_weight=0.0, uniformity_weight=0.0, uniformity_t=2.0, local_weight=0.0, global_weight=0.0,
        local_neighbors=5, optimizer="adam", learning_rate=0.001, momentum=0.9, weight_decay=0.0, schedule="cosine",
        schedule_tau=100.0, schedule_kappa=0.75, epochs=30, batch_size=128, samples_per_class=4,
        class_sampling="uniform", normalization="sample", tangent_metric="riemann", symmetric="auto", fisher_z=False,
        pca_components=None, validation_fraction=0.0, n_iter_no_change=10, callbacks=None, checkpoint_dir=None,
        device="auto", random_state=None, verbose=0,
    ):
    # fmt: on
        # Every keyword stored as given, nothing else (scikit-learn's contract); checked at fit.
        given = dict(locals())
        del given["self"]
        for name, value in given.items():
            setattr(self, name, value)

    # -- scikit-learn plumbing -----------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.embedding_dim

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, X: ArrayLike | LazyArray, y: ArrayLike) -> Self:
        """Train the encoder on samples X (n, d1, ..., dk) with class labels y; returns self."""
        from norank.components import plan_training, seed_of, warn_if_collapsed
        from norank.training import fit_encoder

        self._check_params()
        X, lazy = check_X(X)
        classes, codes, _ = check_labels(y, len(X))
        seed = seed_of(self.random_state)  # drawn once: every random choice of this fit derives from it
        kind, selection = self.encoder, dict[str, Any]()
        if kind == "auto":
            from norank.selection import describe, select_encoder

            kind, selection = select_encoder(
                X, codes, symmetric=self.symmetric, pca_components=self.pca_components, random_state=seed
            )
            if self.verbose:
                from norank import distributed

                if distributed.is_main_process():
                    print(describe(kind, selection))
        plan = plan_training(self.get_params(), X, classes, codes, lazy, kind, seed, selection)
        result = fit_encoder(X, **plan.kwargs)
        warn_if_collapsed(result.history)
        self.encoder_kind_ = kind
        self.encoder_selection_ = selection
        self.classes_ = classes
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        self.preprocessor_ = plan.preprocessor
        self.encoder_ = result.encoder
        self.head_ = result.head
        self.objective_ = result.objective
        self.device_ = plan.kwargs["device"]
        self.history_ = result.history
        self.n_epochs_ = len(result.history["loss"])
        return self

    def _check_params(self) -> None:
        from norank.params import check_params

        check_params(self.get_params())

    # -- embedding -----------------------------------------------------------------------------------
    def transform(self, X: ArrayLike | LazyArray) -> NDArray[np.float32]:
        """Unit-norm float32 embeddings of X, shape (n, embedding_dim)."""
        import torch

        check_is_fitted(self, "encoder_")
        X, lazy = check_X(X)
        shape = tuple(X.shape[1:])
        if shape != self.input_shape_:
            if len(shape) == 1 and len(self.input_shape_) == 1:
                raise ValueError(
                    f"X has {shape[0]} features, but {type(self).__name__} is expecting {self.input_shape_[0]} "
                    "features as input."
                )
            raise ValueError(
                f"X has samples of shape {shape}, but {type(self).__name__} was fitted on samples of shape "
                f"{self.input_shape_}; pass tensors of the training shape."
            )
        self.encoder_.eval()
        out = np.empty((len(X), self.embedding_dim), np.float32)
        releaser = PageReleaser(X)
        with torch.inference_mode():
            for start in range(0, len(X), _TRANSFORM_CHUNK):
                chunk = X[start : start + _TRANSFORM_CHUNK]
                if lazy:
                    chunk = np.asarray(chunk)  # its own dtype: the preprocessor centres float64 in float64
                    check_dtype(chunk.dtype)
                    check_finite(chunk)
                    releaser.add(chunk.nbytes)
                rows = torch.from_numpy(self.preprocessor_.transform(chunk)).to(self.device_)
                out[start : start + len(rows)] = self.encoder_(rows).cpu().numpy()
        if not np.isfinite(out).all():  # e.g. weights damaged after fit: never hand back NaN rows silently
            from norank.training import NonFiniteLossError

            bad = int(np.flatnonzero(~np.isfinite(out).all(1))[0])
            raise NonFiniteLossError(
                f"The embedding of sample {bad} is not finite: the model's weights are damaged (non-finite); "
                "fit it again, or load it from a saved copy."
            )
        return out

    def score(self, X: ArrayLike | LazyArray, y: ArrayLike) -> float:
        """Leave-one-out precision@1 of the embeddings of X: the share of samples whose nearest other sample
        shares their label (samples alone in their class are not queries)."""
        from norank.metrics import precision_at_1

        return precision_at_1(self.transform(X), y)

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to the folder `path` (config.json + weights.safetensors), atomically:
        a kill at any instant leaves the previous model there or this one, whole. A loss or miner given as
        an object cannot be saved (TypeError before anything is written): use a named one, or pickle."""
        from norank.persistence import save_model

        check_is_fitted(self, "encoder_")
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> NoRankEmbedder:
        """Read a model written by `save`, checking every field and tensor shape before building anything.
        Raises ValueError for anything that is not a whole, consistent norank model."""
        from norank.persistence import load_model

        return load_model(cls, path, device)
