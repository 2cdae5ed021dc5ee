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
    assert (
        _run(
            [
                "fit",
                str(path),
                "--out",
                str(model),
                "--epochs",
                "3",
                "--hidden-layer-sizes",
                "32,16",
                "--embedding-dim",
                "8",
                "--random-state",
                "0",
                "--margin",
                "0.3",
            ]
        )
        == 0
    )
    est = NoRankEmbedder.load(model)
    assert est.hidden_layer_sizes == (32, 16) and est.margin == 0.3 and est.epochs == 3
    expected = NoRankEmbedder(epochs=3, hidden_layer_sizes=(32, 16), embedding_dim=8, random_state=0, margin=0.3)
    expected.fit(X, y)
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
    assert (
        _run(
            [
                "fit",
                str(tmp_path / "X.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--out",
                str(tmp_path / "m"),
                "--epochs",
                "2",
                "--random-state",
                "0",
            ]
        )
        == 0
    )
    assert NoRankEmbedder.load(tmp_path / "m").n_epochs_ == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.npz", "--out", "m"], "no such file"),
        (["fit", "no-such-dataset", "--out", "m"], "olivetti"),
        (["fit", "{data}", "--out", "{tmp}/m", "--batch-size", "4"], "raise batch_size"),
        (["embed", "{tmp}", "{data}", "--out", "{tmp}/z.npy"], "not a norank model directory"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(argv, message, data_file, tmp_path, capsys):
    argv = [a.format(data=data_file[0], tmp=tmp_path) for a in argv]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


# Usage errors: typer's usage message, ending in one `Error:` line that names the problem, and status 2.
USAGE_ERRORS = [
    (["fit", "{data}", "--out", "{tmp}/m", "--bogus", "3"], "No such option: --bogus"),
    (["fit", "{data}"], "Missing option '--out'"),
    (["fit"], "Missing argument 'DATA'"),
    (["reproduce", "--seeds", "x"], "'--seeds'"),
    (["fit", "{data}", "--out", "{tmp}/m", "--epochs", "x"], "'--epochs': 'x' is not accepted; use int >= 1."),
    (["fit", "{data}", "--out", "{tmp}/m", "--epochs", "0"], "'--epochs': '0' is not accepted; use int >= 1."),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--mining", "random"],
        "'--mining': 'random' is not accepted; use semihard | hard | batch_hard | all.",
    ),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--dropout", "1.5"],
        "'--dropout': '1.5' is not accepted; use float in [0.0, 1.0).",
    ),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--layer-norm", "maybe"],
        "'--layer-norm': 'maybe' is not accepted; use true | false.",
    ),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--hidden-layer-sizes", "a,b"],
        "'--hidden-layer-sizes': 'a,b' is not accepted",
    ),
]


@pytest.mark.parametrize("argv, message", USAGE_ERRORS)
def test_usage_errors_end_in_one_line_and_status_2(argv, message, data_file, tmp_path, capsys):
    argv = [a.format(data=data_file[0], tmp=tmp_path) for a in argv]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("Usage: norank")
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: ") and message in last, err


def test_bare_norank_prints_help_and_exits_2(capsys):
    assert _run([]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "Usage: norank" in captured.out and all(c in captured.out for c in ("fit", "embed", "evaluate", "reproduce"))


def test_fit_options_come_from_the_parameter_table(capsys):
    from norank.params import PARAMETERS

    assert _run(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the help is wrapped: compare with whitespace collapsed
    text = text.replace("│", " ")
    text = " ".join(text.split())
    for name, param in PARAMETERS.items():
        flag = "--" + name.replace("_", "-")
        if param.cli:
            assert flag in text and " ".join(param.help.split()[:4]) in text, name
        else:
            assert flag + " " not in text, f"{flag} has cli=False but is an option"


def test_table_constraints_parse_option_text(data_file, tmp_path):
    path, _, _ = data_file
    assert (
        _run(
            [
                "fit",
                str(path),
                "--out",
                str(tmp_path / "m"),
                "--epochs",
                "1",
                "--symmetric",
                "false",
                "--pca-components",
                "none",
                "--layer-norm",
                "TRUE",
                "--hidden-layer-sizes",
                "(16, 8)",
                "--random-state",
                "7",
            ]
        )
        == 0
    )
    est = NoRankEmbedder.load(tmp_path / "m")
    assert est.symmetric is False and est.pca_components is None and est.layer_norm is True
    assert est.hidden_layer_sizes == (16, 8) and est.random_state == 7


def _no_training(monkeypatch):
    from norank.estimator import NoRankEmbedder as Estimator

    def fail(*args, **kwargs):
        raise AssertionError("fit ran although the output path was unusable")

    monkeypatch.setattr(Estimator, "fit", fail)


@pytest.mark.parametrize(
    "option, message",
    [
        (["--out", "{file}"], "--out {file} is an existing file"),
        (["--out", "{file}/sub"], "is a file, so nothing can be created under it"),
        (["--out", "{tmp}/m", "--checkpoint-dir", "{file}"], "--checkpoint-dir {file} is an existing file"),
    ],
)
def test_fit_checks_output_paths_before_training(option, message, data_file, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    file = tmp_path / "taken"
    file.write_text("not a folder")
    option = [o.format(file=file, tmp=tmp_path) for o in option]
    assert _run(["fit", str(data_file[0]), *option, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message.format(file=file) in err and len(err.splitlines()) == 1
    assert file.read_text() == "not a folder"


def test_embed_out_is_a_file_never_a_directory(data_file, tmp_path, capsys, monkeypatch):
    path, X, y = data_file
    model = tmp_path / "model"
    assert _run(["fit", str(path), "--out", str(model), "--epochs", "1", "--random-state", "0"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    for out in (".", str(tmp_path), ".."):
        assert _run(["embed", str(model), str(path), "--out", out]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --out") and "is a directory; give a file name" in err
    assert not list(tmp_path.glob("*.npy")) and not (tmp_path.parent / "..npy").exists()
    assert _run(["embed", str(model), str(path), "--out", "sub/Z"]) == 0  # np.save's rule: Z -> Z.npy
    assert "to sub/Z.npy" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "sub" / "Z.npy"), NoRankEmbedder.load(model).transform(X))


def test_fit_headerless_csv_label_column_by_index(tmp_path):
    rng = np.random.default_rng(1)
    y = np.repeat([3, 7, 9], 8)
    X = rng.normal(size=(3, 4))[np.searchsorted([3, 7, 9], y)] * 3 + rng.normal(size=(24, 4))
    path = tmp_path / "plain.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    params = dict(epochs=1, batch_size=8, samples_per_class=2, random_state=0)
    expected = NoRankEmbedder(**params).fit(table[:, :4], table[:, 4]).transform(table[:, :4])
    for y_key in ("-1", "4"):
        out = tmp_path / f"m{y_key}"
        assert (
            _run(
                [
                    "fit",
                    str(path),
                    "--y-key",
                    y_key,
                    "--out",
                    str(out),
                    "--epochs",
                    "1",
                    "--batch-size",
                    "8",
                    "--samples-per-class",
                    "2",
                    "--random-state",
                    "0",
                ]
            )
            == 0
        )
        est = NoRankEmbedder.load(out)
        assert est.n_features_in_ == 4 and len(est.classes_) == 3
        np.testing.assert_allclose(est.transform(table[:, :4]), expected, atol=1e-6)


def test_ctrl_c_during_a_command_is_one_line_and_status_130(data_file, tmp_path, capsys, monkeypatch):
    from norank.estimator import NoRankEmbedder as Estimator

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Estimator, "fit", interrupted)
    assert _run(["fit", str(data_file[0]), "--out", str(tmp_path / "m")]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted (Ctrl-C)"
    assert not (tmp_path / "m").exists()


def test_module_entry_point_help_and_error_exit_status(tmp_path):
    done = subprocess.run([sys.executable, "-m", "norank", "fit", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for flag in ("--out", "--margin", "--mining", "--diversity-weight", "--checkpoint-dir", "--labels"):
        assert flag in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "norank", "fit", str(tmp_path / "none.npz"), "--out", "m"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")
