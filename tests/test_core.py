"""The function-first training core: composable parts, callbacks, thread safety, numerics, checkpoints."""

import threading

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from norank import NoRankEmbedder
from norank.callbacks import fingerprint
from norank.encoders import build_encoder
from norank.losses import TripletLoss
from norank.objective import Objective
from norank.regularizers import Diversity
from norank.sampling import ClassBalancedBatchSampler
from norank.training import NonFiniteLossError, fit_encoder

FAST = dict(epochs=3, hidden_layer_sizes=(32,), embedding_dim=8, random_state=0, encoder="mlp", batch_size=32)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 30)) * 3
    y = np.repeat(np.arange(4), 20)
    return (centres[y] + rng.normal(size=(80, 30))).astype(np.float32), y


def _state(est):
    return {k: v.clone() for k, v in est.encoder_.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pml_loss_instance_trains_and_its_parameters_learn(blobs):
    X, y = blobs
    supcon = pml_losses.SupConLoss(temperature=0.1)
    est = NoRankEmbedder(loss=supcon, **FAST).fit(X, y)
    assert est.history_["SupConLoss"][-1] < est.history_["SupConLoss"][0]
    # A PML loss with parameters (ArcFace's class weights) is trained through the estimator; the caller's
    # instance is copied, never modified.
    arcface = pml_losses.ArcFaceLoss(num_classes=4, embedding_size=8)
    before = arcface.W.detach().clone()
    est = NoRankEmbedder(loss=arcface, **FAST).fit(X, y)
    assert torch.equal(arcface.W.detach(), before)
    assert not torch.equal(est.objective_.loss.W.detach(), before)


def test_pml_miner_feeds_the_loss(blobs):
    X, y = blobs
    est = NoRankEmbedder(
        loss=pml_losses.TripletMarginLoss(margin=0.2), miner=pml_miners.MultiSimilarityMiner(), **FAST
    ).fit(X, y)
    assert np.isfinite(est.transform(X)).all()


def test_callback_is_called_once_per_epoch_and_can_stop(blobs):
    X, y = blobs
    seen = []
    NoRankEmbedder(callbacks=[lambda epoch, logs: seen.append((epoch, dict(logs)))], **FAST).fit(X, y)
    assert [e for e, _ in seen] == [0, 1, 2]
    assert {"loss", "triplet", "active_fraction", "embedding_spread", "lr"} <= set(seen[0][1])
    est = NoRankEmbedder(callbacks=[lambda epoch, logs: epoch == 1], **{**FAST, "epochs": 10}).fit(X, y)
    assert est.n_epochs_ == 2


def test_fit_encoder_needs_no_estimator(blobs):
    """The core trains from explicit parts; its result matches the estimator's when the parts match."""
    X, y = blobs
    gen = torch.Generator().manual_seed(3)
    encoder = build_encoder("mlp", 30, (30,), (16,), 4, 0.0, False, generator=gen)
    sampler = ClassBalancedBatchSampler(y, 4, 8, seed=3)
    objective = Objective(TripletLoss(margin=0.5), regularizers=[(0.1, Diversity())])
    result = fit_encoder(X, y, encoder=encoder, objective=objective, sampler=sampler, epochs=4, seed=3)
    assert set(result.history) >= {"loss", "triplet", "diversity"} and len(result.history["loss"]) == 4
    z = result.encoder(torch.from_numpy(X))
    assert torch.allclose(z.norm(dim=1), torch.ones(len(X)), atol=1e-5)


def test_threads_give_the_sequential_results_and_leave_the_global_rng_alone(blobs):
    X, y = blobs
    params = {**FAST, "dropout": 0.3, "epochs": 4}
    sequential = [_state(NoRankEmbedder(**params).fit(X, y)) for _ in range(2)]
    before = torch.get_rng_state().clone()
    out = [None, None]

    def work(i):
        out[i] = _state(NoRankEmbedder(**params).fit(X, y))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.equal(before, torch.get_rng_state())
    assert _equal(out[0], sequential[0]) and _equal(out[1], sequential[1])


def test_divergence_on_the_last_step_is_caught(blobs):
    """A huge SGD step makes the weights non-finite behind a finite loss: the fit must not end silently."""
    X, y = blobs
    params = {**FAST, "optimizer": "sgd", "learning_rate": 1e30, "schedule": "constant", "epochs": 1}
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        NoRankEmbedder(**params).fit(X, y)


@pytest.mark.parametrize(
    "name, value",
    [
        ("learning_rate", float("inf")),
        ("schedule_tau", float("nan")),
        ("margin", float("inf")),
        ("schedule_kappa", float("nan")),
    ],
)
def test_non_finite_settings_are_refused(blobs, name, value):
    with pytest.raises(ValueError, match=name):
        NoRankEmbedder(**{**FAST, name: value}).fit(*blobs)


def test_fingerprint_covers_every_row_and_memmaps(tmp_path, blobs):
    X, y = blobs
    base = fingerprint({"a": 1}, X, y)
    late = X.copy()
    late[-1, -1] += 1e-3
    assert fingerprint({"a": 1}, late, y) != base
    assert fingerprint({"a": 2}, X, y) != base
    path = tmp_path / "x.npy"
    np.save(path, X)
    assert fingerprint({"a": 1}, np.load(path, mmap_mode="r"), y) == base


def test_checkpoint_of_other_data_is_not_reused(tmp_path, blobs):
    X, y = blobs
    NoRankEmbedder(checkpoint_dir=str(tmp_path), **FAST).fit(X, y)
    other = X.copy()
    other[40:] += 1.0  # differs only after the first rows
    with pytest.warns(RuntimeWarning, match="other settings or data"):
        est = NoRankEmbedder(checkpoint_dir=str(tmp_path), **FAST).fit(other, y)
    fresh = NoRankEmbedder(**FAST).fit(other, y)
    assert _equal(_state(est), _state(fresh))


def test_concurrent_fits_share_a_checkpoint_folder(tmp_path, blobs):
    X, y = blobs
    errors = []

    def work(seed):
        try:
            NoRankEmbedder(checkpoint_dir=str(tmp_path), **{**FAST, "random_state": seed, "epochs": 6}).fit(X, y)
        except Exception as exc:  # any failure of a worker is reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if not isinstance(e, Warning)], errors
    assert not list(tmp_path.glob("*.tmp"))


def test_early_stopping_scores_one_validation_sample_per_class_and_keeps_the_best_epoch(blobs):
    X, y = blobs  # 20 per class: validation_fraction=0.05 holds out one sample of each class
    scores = []
    est = NoRankEmbedder(
        validation_fraction=0.05,
        n_iter_no_change=2,
        callbacks=[lambda epoch, logs: scores.append(logs["val_knn_accuracy"])],
        **{**FAST, "epochs": 20},
    ).fit(X, y)
    assert scores == est.history_["val_knn_accuracy"] and len(scores) == est.n_epochs_
    best = int(np.argmax(scores))
    assert est.n_epochs_ <= 20 and (est.n_epochs_ == 20 or est.n_epochs_ - 1 - best == 2)


def test_the_signature_and_the_parameter_table_agree():
    """One table (norank.params) is what fit checks, the CLI offers and load validates: the estimator's
    keywords and their defaults must be exactly its entries."""
    import inspect

    from norank.params import PARAMETERS, check_params

    signature = inspect.signature(NoRankEmbedder).parameters
    assert list(signature) == list(PARAMETERS)
    for name, param in PARAMETERS.items():
        assert signature[name].default == param.default, name
    check_params(NoRankEmbedder().get_params())  # the defaults pass their own constraints


def test_transform_never_returns_non_finite_rows_silently(blobs):
    X, y = blobs
    est = NoRankEmbedder(**FAST).fit(X, y)
    with torch.no_grad():
        next(est.encoder_.parameters())[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="not finite"):
        est.transform(X)


def test_a_resumed_early_stopped_fit_stays_stopped(tmp_path, blobs):
    X, y = blobs
    params = {**FAST, "epochs": 40, "validation_fraction": 0.1, "n_iter_no_change": 1}
    first = NoRankEmbedder(checkpoint_dir=str(tmp_path), **params).fit(X, y)
    assert first.n_epochs_ < 40  # it stopped early
    again = NoRankEmbedder(checkpoint_dir=str(tmp_path), **params).fit(X, y)
    assert again.n_epochs_ == first.n_epochs_
    assert _equal(_state(again), _state(first))
