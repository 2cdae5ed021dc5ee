"""The CLI as users run it: a real process through `python -m norank` and through the `norank` console script.

The in-process runner of test_cli.py cannot see what only a real process shows: the exception handler's own
imports, the interpreter's traceback printing, the exit status the shell gets, and a real SIGINT.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("norank")  # installed by `pip install -e .` beside the interpreter
ENTRIES = {"module": [sys.executable, "-m", "norank"], "script": [str(SCRIPT)]}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    X = (rng.normal(size=(4, 12))[y] * 3 + rng.normal(size=(60, 12))).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "train.npz"
    np.savez(path, X=X, y=y)
    return path


def test_console_script_is_installed():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), f"{SCRIPT} missing: run `make install`"


CASES = [
    (["fit", "{data}", "--out", "{tmp}/m", "--bogus", "3"], 2, "Error: No such option: --bogus"),
    (["fit", "{data}"], 2, "Error: Missing option '--out'"),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--epochs", "x"],
        2,
        "Error: Invalid value for '--epochs': 'x' is not accepted; use int >= 1.",
    ),
    (["fit"], 2, "Error: Missing argument 'DATA'"),
    (
        ["fit", "{data}", "--out", "{tmp}/m", "--mining", "random"],
        2,
        "Error: Invalid value for '--mining': 'random' is not accepted; use semihard | hard | batch_hard | all.",
    ),
    (["fit", "{tmp}/none.npz", "--out", "{tmp}/m"], 2, "error: {tmp}/none.npz: no such file"),
]


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("argv, status, last_line", CASES)
def test_errors_in_a_real_process(entry, argv, status, last_line, data_file, tmp_path):
    argv = [a.format(data=data_file, tmp=tmp_path) for a in argv]
    done = subprocess.run(ENTRIES[entry] + argv, capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "ModuleNotFoundError" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(last_line.format(tmp=tmp_path)), done.stderr
    if last_line.startswith("Error:"):  # typer's usage message: the usage line first, the error last
        assert lines[0].startswith("Usage: ") and "norank" in lines[0]
    else:
        assert len(lines) == 1


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_bare_norank_shows_help_with_status_2(entry):
    done = subprocess.run(ENTRIES[entry], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Usage:" in done.stdout and "reproduce" in done.stdout


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job may start with SIGINT ignored


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_sigint_during_fit_is_one_line_and_status_130(entry, data_file, tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "model"
    argv = [
        "fit",
        str(data_file),
        "--out",
        str(out),
        "--epochs",
        "100000",
        "--checkpoint-dir",
        str(ckpt),
        "--hidden-layer-sizes",
        "16",
        "--batch-size",
        "16",
    ]
    proc = subprocess.Popen(
        ENTRIES[entry] + argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (ckpt / "checkpoint.pt").exists():  # the first epoch is done: training is under way
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "training never wrote its first checkpoint"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "interrupted (Ctrl-C)", stderr
    assert stdout == "" and not out.exists()
