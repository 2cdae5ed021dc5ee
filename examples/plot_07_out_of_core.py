"""
Data larger than memory: a memory map, and torchrun
===================================================

``fit`` and ``transform`` accept a memory-mapped ``.npy`` file (``np.load(path, mmap_mode="r")``) or any
array-like with ``shape``, ``len`` and ``[]`` (an h5py dataset, a zarr array): training reads one batch of
rows at a time and never loads the file whole (:doc:`/scaling`). Here a file of jittered, noisy 16×16
digits is written chunk by chunk to a temporary folder, then an embedder is trained from it.
"""

# %%
# Write a file chunk by chunk
# ---------------------------
# ``np.lib.format.open_memmap`` creates a ``.npy`` file on disk whose rows are written without ever
# holding the whole array in memory.
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder
from norank.metrics import evaluate

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # a smaller file when the tests build the docs
N_ROWS = 20_000 if QUICK else 100_000
CHUNK = 10_000

digits = load_digits()
images = np.kron(digits.images, np.ones((2, 2))) / 16.0  # 16×16 pixels in [0, 1]
train_idx, test_idx = train_test_split(np.arange(len(images)), test_size=0.3, stratify=digits.target, random_state=0)
rng = np.random.default_rng(0)


def jittered(idx):
    """Shift each image by up to 2 pixels and add noise: new samples of the same digits."""
    out = np.empty((len(idx), 16, 16), dtype=np.float32)
    shifts = rng.integers(-2, 3, size=(len(idx), 2))
    for i, (j, (dy, dx)) in enumerate(zip(idx, shifts, strict=True)):
        out[i] = np.roll(images[j], (dy, dx), axis=(0, 1))
    return out + rng.normal(0, 0.15, size=out.shape).astype(np.float32)


folder = Path(tempfile.mkdtemp())
X_file = np.lib.format.open_memmap(folder / "big.npy", mode="w+", dtype=np.float32, shape=(N_ROWS, 16, 16))
y_big = np.empty(N_ROWS, dtype=np.int64)
for start in range(0, N_ROWS, CHUNK):
    idx = rng.choice(train_idx, size=min(CHUNK, N_ROWS - start))
    X_file[start : start + len(idx)] = jittered(idx)
    y_big[start : start + len(idx)] = digits.target[idx]
X_file.flush()
del X_file
np.save(folder / "big_labels.npy", y_big)
print(f"{N_ROWS} rows, {os.path.getsize(folder / 'big.npy') / 2**20:.0f} MiB on disk")

# %%
# Train from the memory map
# -------------------------
# ``mmap_mode="r"`` returns a ``np.memmap``: the estimator reads the rows of each batch from the file.
X = np.load(folder / "big.npy", mmap_mode="r")
y = np.load(folder / "big_labels.npy")
print(type(X).__name__, X.shape, X.dtype)

est = NoRankEmbedder(embedding_dim=16, encoder="mlp", epochs=1 if QUICK else 3, batch_size=256, random_state=0)
est.fit(X, y)

# Held-out digits: jittered copies of test images that no training row was made from.
X_test, y_test = jittered(test_idx), digits.target[test_idx]
Z_test = est.transform(X_test)
s = evaluate(Z_test, y_test)
print(f"held out: ARI {s['ari']:.3f}, precision@1 {s['precision_at_1']:.3f}")

fig, axes = plt.subplots(1, 8, figsize=(9, 1.6))
for ax, i in zip(axes, range(8), strict=True):
    ax.imshow(X[i], cmap="gray")
    ax.set(title=f"label {y[i]}", xticks=[], yticks=[])
fig.suptitle("rows read from the memory-mapped file")
fig.tight_layout()

# %%
# The same from the command line, and on several processes
# --------------------------------------------------------
# ``norank fit`` memory-maps a ``.npy`` input and takes the labels from ``--labels``::
#
#     norank fit big.npy --labels big_labels.npy --out model
#
# ``torchrun`` starts one process per core or GPU; each embeds its slice of every global batch, the
# embeddings are gathered before mining, and the update equals single-process training on the same
# global batch (``batch_size`` must be a multiple of the number of processes)::
#
#     torchrun --nproc_per_node=4 -m norank fit big.npy --labels big_labels.npy --out model
#
#     # two machines with 8 GPUs each; the same command on both
#     torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK \
#              --rdzv_backend=c10d --rdzv_endpoint=$MASTER_HOST:29500 \
#              -m norank fit /shared/big.npy --labels /shared/big_labels.npy --out /shared/model --device cuda
#
# From Python, in a script that torchrun launches::
#
#     from norank import NoRankEmbedder, distributed
#     distributed.setup()                      # joins the process group from torchrun's environment
#     est = NoRankEmbedder(random_state=0).fit(X, y)
#     if distributed.is_main_process():
#         est.save("model")
#     distributed.teardown()

P = PCA(n_components=2).fit_transform(Z_test)
fig, ax = plt.subplots(figsize=(4.4, 4))
ax.scatter(P[:, 0], P[:, 1], c=y_test, cmap="tab10", s=8)
ax.set(title="held-out digits (PCA of the embedding)", xticks=[], yticks=[])
plt.show()

for f in folder.iterdir():
    f.unlink()
folder.rmdir()
