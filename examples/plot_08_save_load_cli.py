"""
Save, load and the command line
===============================

A fitted model is a folder: ``config.json`` (every setting, the preprocessing statistics, the classes)
and ``weights.safetensors`` (the encoder's tensors). Loading reads both without unpickling anything, so
a model from an untrusted source cannot run code, and the loaded model embeds bitwise identically.
The ``norank`` command fits, embeds and evaluates from files or dataset names; here it is run as
``python -m norank`` in a subprocess, as from a shell.
"""

# %%
# Save and load
# -------------
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer epochs when the tests build the docs
EPOCHS = 5 if QUICK else 30

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
folder = Path(tempfile.mkdtemp())

est = NoRankEmbedder(epochs=EPOCHS, random_state=0).fit(X_train, y_train)
est.save(folder / "model")
print(sorted(p.name for p in (folder / "model").iterdir()))

config = json.loads((folder / "model" / "config.json").read_text())
print("config.json keys:", ", ".join(sorted(config)))

loaded = NoRankEmbedder.load(folder / "model")
print("bitwise identical embeddings:", np.array_equal(est.transform(X_test), loaded.transform(X_test)))

# %%
# The command line
# ----------------
# ``norank fit DATA --out MODEL`` takes a dataset name or a ``.npy/.npz/.mat/.h5/.csv`` file and every
# estimator keyword as a flag (``--epochs``, ``--margin``, ``--hidden-layer-sizes 512,256``);
# ``norank COMMAND --help`` lists them.
np.savez(folder / "train.npz", X=X_train, y=y_train)
np.savez(folder / "test.npz", X=X_test, y=y_test)


def norank(*args):
    """Run ``python -m norank ARGS`` in the folder and show what it prints, and its exit status if not 0."""
    print("$ norank " + " ".join(map(str, args)))
    done = subprocess.run(
        [sys.executable, "-m", "norank", *map(str, args)], check=False, cwd=folder, capture_output=True, text=True
    )
    print((done.stdout + done.stderr).strip())
    if done.returncode:
        print("exit status", done.returncode)
    print()


norank("fit", "train.npz", "--out", "cli_model", "--epochs", EPOCHS, "--random-state", 0)
norank("embed", "cli_model", "test.npz", "--out", "Z.npy")
norank("evaluate", "cli_model", "test.npz")

# %%
# Bad input ends in one line that names the problem, with exit status 2:
norank("fit", "missing.npz", "--out", "other_model")

# %%
# A model written by the command line loads in Python like any other, and embeds the test samples exactly
# as ``norank embed`` did (files are read as float32, so the same float32 samples are passed here).
cli_model = NoRankEmbedder.load(folder / "cli_model")
Z_cli = np.load(folder / "Z.npy")
Z_loaded = cli_model.transform(X_test.astype(np.float32))
print("the CLI model in Python gives the embeddings of norank embed:", np.array_equal(Z_loaded, Z_cli))

P = PCA(n_components=2).fit_transform(Z_cli)
fig, ax = plt.subplots(figsize=(4.4, 4))
ax.scatter(P[:, 0], P[:, 1], c=y_test, cmap="tab10", s=8)
ax.set(title="Z.npy from norank embed (PCA)", xticks=[], yticks=[])
plt.show()

for p in sorted(folder.rglob("*"), reverse=True):
    p.rmdir() if p.is_dir() else p.unlink()
folder.rmdir()
