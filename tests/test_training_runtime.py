"""Distributed training on two gloo processes, and resuming a killed fit from its checkpoint."""

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from norank import NoRankEmbedder, distributed

PARAMS = dict(epochs=4, hidden_layer_sizes=(32,), embedding_dim=8, batch_size=32, samples_per_class=4, random_state=3)


def _data(n_classes=8, per_class=12, dim=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    X = (rng.normal(size=(n_classes, dim))[y] * 2 + rng.normal(size=(len(y), dim))).astype(np.float32)
    return X, y


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir, params):
    """Fit in a fresh process; with world > 1 as one rank of a gloo process group."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        X, y = _data()
        est = NoRankEmbedder(**params).fit(X, y)
        if rank == 0:
            name = "ddp" if world > 1 else "single"
            weights = {k: v.clone() for k, v in est.encoder_.state_dict().items()}
            torch.save(weights, os.path.join(out_dir, f"{name}.pt"))
            torch.save(est.history_, os.path.join(out_dir, f"{name}_history.pt"))
        distributed.wait_for_all()  # rank 1 must not tear the group down while rank 0 still saves
    finally:
        if world > 1:
            dist.destroy_process_group()


@pytest.mark.parametrize("extra", [{}, {"local_weight": 0.5, "global_weight": 0.5, "mining": "batch_hard"}])
def test_two_gloo_processes_match_single_process_training(tmp_path, extra):
    params = {**PARAMS, **extra}
    # Both sides run in fresh processes with one thread each, so nothing but the process count differs.
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path), params), nprocs=2, join=True)
    torch.multiprocessing.spawn(_worker, args=(1, 0, str(tmp_path), params), nprocs=1, join=True)
    ddp, single = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "single.pt")
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, atol=1e-5, rtol=0)
    history, single_history = torch.load(tmp_path / "ddp_history.pt"), torch.load(tmp_path / "single_history.pt")
    np.testing.assert_allclose(history["loss"], single_history["loss"], atol=1e-5)
    # The run must have learnt something, or equality would be trivial.
    assert single_history["loss"][-1] != single_history["loss"][0]
    assert not torch.equal(single[next(iter(single))], _initial_weights(params)[next(iter(single))])


def _initial_weights(params):
    return NoRankEmbedder(**{**params, "epochs": 1, "learning_rate": 1e-30}).fit(*_data()).encoder_.state_dict()


# The child trains with checkpoints; a callback arms a timer after the third epoch's checkpoint, which
# SIGKILLs the process a few milliseconds later, mid-epoch: a real kill of a real training process.
RESUME_SCRIPT = """
import os, signal, sys, threading
from norank import NoRankEmbedder
sys.path.insert(0, {tests!r})
from test_training_runtime import _data, RESUME_PARAMS
def arm(epoch, logs):
    if epoch == 2:
        threading.Timer(0.005, os.kill, (os.getpid(), signal.SIGKILL)).start()
X, y = _data(n_classes=10, per_class=40, dim=50, seed=1)
NoRankEmbedder(checkpoint_dir={ckpt!r}, callbacks=[arm], **RESUME_PARAMS).fit(X, y)
"""
RESUME_PARAMS = dict(epochs=8, hidden_layer_sizes=(64,), embedding_dim=16, batch_size=64, random_state=5)


def test_killed_fit_resumes_bitwise_equal_to_an_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "ckpt"
    script = RESUME_SCRIPT.format(tests=os.path.dirname(__file__), ckpt=str(ckpt))
    proc = subprocess.run([sys.executable, "-c", script], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    payload = torch.load(ckpt / "checkpoint.pt", weights_only=True)
    assert 3 <= payload["state"]["epoch"] < RESUME_PARAMS["epochs"]
    X, y = _data(n_classes=10, per_class=40, dim=50, seed=1)
    resumed = NoRankEmbedder(checkpoint_dir=str(ckpt), **RESUME_PARAMS).fit(X, y)
    fresh = NoRankEmbedder(**RESUME_PARAMS).fit(X, y)
    for name, value in fresh.encoder_.state_dict().items():
        assert torch.equal(resumed.encoder_.state_dict()[name], value), name
    assert resumed.n_epochs_ == fresh.n_epochs_ == RESUME_PARAMS["epochs"]
    # Epochs 0-2 were logged by the killed process; float32 loss values may differ in the last bits.
    for key, values in fresh.history_.items():
        np.testing.assert_allclose(resumed.history_[key], values, rtol=1e-6, atol=1e-9, err_msg=key)


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    X, y = _data()
    NoRankEmbedder(checkpoint_dir=str(tmp_path), **PARAMS).fit(X, y)
    with pytest.warns(RuntimeWarning, match="other settings"):
        other = NoRankEmbedder(checkpoint_dir=str(tmp_path), **{**PARAMS, "margin": 0.3}).fit(X, y)
    assert other.n_epochs_ == PARAMS["epochs"]
