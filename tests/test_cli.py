"""The `norank` command line: fit → embed → evaluate on files, one-line errors, help."""

import json
import subprocess
import sys

import numpy as np
import pytest

from norank import NoRankEmbedder
from norank.cli import main


def _run(argv):
    """Run the CLI in-process; returns its exit status (0 when it returned normally)."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    X = (rng.normal(size=(4, 6, 5))[y] * 3 + rng.normal(size=(60, 6, 5))).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "train.npz"
    np.savez(path, X=X, y=y)
    return path, X, y


def test_fit_embed_evaluate_round_trip(data_file, tmp_path, capsys):
    path, X, y = data_file
    model = tmp_path / "model"
    assert _run(["fit", str(path), "--out", str(model), "--epochs", "3", "--hidden-layer-sizes", "32,16",
                 "--embedding-dim", "8", "--random-state", "0", "--margin", "0.3"]) == 0
    est = NoRankEmbedder.load(model)
    assert est.hidden_layer_sizes == (32, 16) and est.margin == 0.3 and est.epochs == 3
    expected = NoRankEmbedder(epochs=3, hidden_layer_sizes=(32, 16), embedding_dim=8, random_state=0, margin=0.3).fit(X, y)
    out = tmp_path / "Z.npy"
    assert _run(["embed", str(model), str(path), "--out", str(out)]) == 0
    assert np.array_equal(np.load(out), expected.transform(X))
    capsys.readouterr()
    assert _run(["evaluate", str(model), str(path), "--out", str(tmp_path / "m.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"silhouette", "ari", "precision_at_1", "trustworthiness"} <= set(printed)
    assert json.loads((tmp_path / "m.json").read_text()) == printed


def test_fit_npy_with_separate_labels(data_file, tmp_path):
    _, X, y = data_file
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    assert _run(["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "m"),
                 "--epochs", "2", "--random-state", "0"]) == 0
    assert NoRankEmbedder.load(tmp_path / "m").n_epochs_ == 2


@pytest.mark.parametrize("argv, message", [
    (["fit", "missing.npz", "--out", "m"], "no such file"),
    (["fit", "{data}", "--out", "{tmp}/m", "--mining", "random"], "mining='random' is not supported"),
    (["fit", "{data}", "--out", "{tmp}/m", "--hidden-layer-sizes", "a,b"], "comma-separated integers"),
    (["fit", "no-such-dataset", "--out", "m"], "olivetti"),
    (["embed", "{tmp}", "{data}", "--out", "{tmp}/z.npy"], "not a norank model directory"),
])
def test_bad_input_gives_one_line_and_status_2(argv, message, data_file, tmp_path, capsys):
    argv = [a.format(data=data_file[0], tmp=tmp_path) for a in argv]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_module_entry_point_help_and_error_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "-m", "norank", "fit", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for flag in ("--out", "--margin", "--mining", "--diversity-weight", "--checkpoint-dir", "--labels"):
        assert flag in done.stdout
    bad = subprocess.run([sys.executable, "-m", "norank", "fit", str(tmp_path / "none.npz"), "--out", "m"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")
