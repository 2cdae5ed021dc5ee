"""torchrun agreement: ranks given different data fail fast, every rank with the same clear error.

Every rank draws the same global batch and embeds its own slice of it, so every rank must hold the same
data. The fingerprint comparison is tested in-process; the whole path (two gloo processes fitting a
NoRankEmbedder) in real processes with a deadline, so a hang fails instead of blocking the suite.
"""

import json
import multiprocessing
import os
import socket
import time
from datetime import timedelta

import numpy as np
import pytest

from norank.distributed import check_agreement, disagreement, fingerprint

BASE = dict(classes=[0, 1, 2, 3], sample_shape=(6, 5), dtype=np.float32, n_batches=3, labels=np.arange(12) % 4)


def test_identical_data_agrees():
    assert disagreement([fingerprint(**BASE), fingerprint(**{**BASE, "labels": np.arange(12) % 4})]) is None


@pytest.mark.parametrize(
    "change, field, values",
    [
        ({"classes": np.array([0, 1, 2, 4])}, "class labels", ("4 classes [0, 1, 2, 3]", "4 classes [0, 1, 2, 4]")),
        ({"classes": ["0", "1", "2", "3"]}, "class labels", ("[0, 1, 2, 3]", "['0', '1', '2', '3']")),
        ({"sample_shape": (6, 6)}, "sample shape", ("[6, 5]", "[6, 6]")),
        ({"dtype": np.float64}, "dtype", ("float32", "float64")),
        ({"n_batches": 4}, "batches per epoch", ("3", "4")),
        ({"labels": np.arange(11) % 4}, "per-sample labels", ("12 labels", "11 labels")),
        ({"labels": np.arange(12)[::-1] % 4}, "per-sample labels", ("12 labels", "12 labels")),
    ],
)
def test_the_message_names_the_field_and_every_rank_value(change, field, values):
    message = disagreement([fingerprint(**BASE), fingerprint(**BASE), fingerprint(**{**BASE, **change})])
    assert message.startswith("The 3 ranks of this distributed fit were given different data; they differ in")
    part = message.split(f"{field} (", 1)[1].split(")", 1)[0]
    ranks = part.split("; ")
    assert [r.split(":")[0] for r in ranks] == ["rank 0", "rank 1", "rank 2"]
    assert values[0] in ranks[0] and values[0] in ranks[1] and values[1] in ranks[2]
    assert ranks[0] != ranks[2]
    others = {"class labels", "sample shape", "dtype", "batches per epoch", "per-sample labels"} - {field}
    assert not any(f"{other} (" in message for other in others)
    assert "Give every rank the same X and y" in message


def test_long_label_sets_are_summarised_yet_compared_in_full():
    classes = np.arange(1000)
    other = classes.copy()
    other[500] = 5000  # differs only in the middle, which the summary does not show
    message = disagreement([fingerprint(**{**BASE, "classes": classes}), fingerprint(**{**BASE, "classes": other})])
    assert message is not None and "1000 classes [0, 1, 2, 3, 4, 5, 6, 7, …, 999] (digest" in message
    assert len(message) < 600


def test_outside_distributed_training_nothing_is_exchanged():
    # No process group exists here: any collective would raise.
    assert check_agreement(**BASE) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(rank: int, case: str):
    rng = np.random.default_rng(0)  # the same data on every rank, unless the case changes rank 1's
    y = np.repeat(np.arange(8), 12)
    X = (rng.normal(size=(8, 20))[y] * 2 + rng.normal(size=(len(y), 20))).astype(np.float32)
    if rank == 1 and case == "labels":
        y = np.where((y == 7) & (np.arange(len(y)) % 2 == 0), 8, y)  # class 7 split in two: another label set
    if rank == 1 and case == "samples":
        X, y = X[:-4], y[:-4]  # same batches per epoch (ceil(92 / 32) == ceil(96 / 32)), fewer samples
    if rank == 1 and case == "batches":
        keep = np.arange(len(y)) % 12 < 7  # 7 of each class: 2 batches per epoch where rank 0 has 3
        X, y = X[keep], y[keep]
    return X, y


def _rank(rank, world, port, out_dir, case):
    """One rank of a gloo job: fit, then record the outcome; an error exits with status 3."""
    import torch
    import torch.distributed as dist

    from norank import NoRankEmbedder

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    X, y = _data(rank, case)
    start = time.monotonic()
    outcome = {"error": None}
    try:
        NoRankEmbedder(epochs=1, hidden_layer_sizes=(16,), embedding_dim=8, batch_size=32, random_state=0).fit(X, y)
    except Exception as exc:  # recorded for the parent, which checks its type and text
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    outcome["seconds"] = time.monotonic() - start
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(outcome, fh)
    if outcome["error"]:
        os._exit(3)  # no teardown: a rank that failed must not wait for its peers
    dist.destroy_process_group()


def _run_job(tmp_path, case, deadline_s=240):
    """Two gloo ranks in fresh processes; returns (exit codes, outcomes). Killed and failed past the deadline."""
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, str(tmp_path), case)) for r in range(2)]
    for p in procs:
        p.start()
    end = time.monotonic() + deadline_s
    for p in procs:
        p.join(max(end - time.monotonic(), 0))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"{len(hung)} rank(s) still running after {deadline_s} s: the job hung"
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    return [p.exitcode for p in procs], outcomes


@pytest.mark.parametrize(
    "case, field",
    [
        ("labels", "class labels"),
        ("samples", "per-sample labels"),
        ("batches", "batches per epoch"),
    ],
)
def test_ranks_with_different_data_all_fail_fast_with_the_same_error(case, field, tmp_path):
    codes, outcomes = _run_job(tmp_path, case)
    assert codes == [3, 3], outcomes
    errors = [o["error"] for o in outcomes]
    assert errors[0] == errors[1], errors
    assert errors[0].startswith("ValueError: The 2 ranks of this distributed fit were given different data")
    assert f"{field} (rank 0: " in errors[0] and "Give every rank the same X and y" in errors[0]
    assert all(o["seconds"] < 30 for o in outcomes), outcomes  # before training, not after a timeout


@pytest.mark.parametrize("entry", ["module", "script"])
def test_torchrun_fit_from_the_command_line_saves_one_model_and_exits_0(entry, tmp_path):
    """`torchrun -m norank fit` and `torchrun --no-python norank fit` with two ranks: every rank exits 0
    (no rank tears the group down while rank 0 still saves), and rank 0 alone saves a model that loads."""
    import subprocess
    import sys
    from pathlib import Path

    from norank import NoRankEmbedder

    X, y = _data(0, "same")
    np.savez(tmp_path / "data.npz", X=X, y=y)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command = ["-m", "norank"] if entry == "module" else ["--no-python", str(Path(sys.executable).with_name("norank"))]
    options = ["--epochs", "2", "--hidden-layer-sizes", "16", "--embedding-dim", "8", "--random-state", "0"]
    out = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [*launch, *command, "fit", str(tmp_path / "data.npz"), "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("model saved to") == 1, run.stdout
    assert NoRankEmbedder.load(out).transform(X).shape == (len(X), 8)
