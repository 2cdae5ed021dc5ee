"""
Simulated galaxies and crystals
===============================

The paper's simulated sets are images drawn from class recipes: galaxies (elliptical, spiral, lenticular,
irregular) and crystal lattices. As the paper gives them they are trivially separable — k-means on the raw
pixels already finds the classes — so norank ranks methods on the ``-hard`` variants, where orientation,
size, position, brightness and noise are randomised within each class (:doc:`/datasets`). The sets are
generated on the fly from a seed; no file is needed.
"""

# %%
# The easy recipes and the hard ones
# ----------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder
from norank.datasets import load
from norank.metrics import evaluate

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer samples and epochs when the tests build the docs

for name in ("galaxy", "galaxy-hard", "crystal", "crystal-hard"):
    ds = load(name, random_state=0)
    flat = ds.X.reshape(len(ds.X), -1)
    labels = KMeans(n_clusters=ds.n_classes, n_init=10, random_state=0).fit_predict(flat)
    print(f"{name:>12}: {ds.X.shape}, k-means on raw pixels ARI {adjusted_rand_score(ds.y, labels):.2f}")

# %%
# Two samples of each class of the hard sets:
fig, axes = plt.subplots(2, 8, figsize=(10, 2.9))
for row, name in zip(axes, ("galaxy-hard", "crystal-hard"), strict=True):
    ds = load(name, random_state=0)
    for j, ax in enumerate(row):
        label = j // 2
        ax.imshow(ds.X[np.flatnonzero(ds.y == label)[j % 2]], cmap="gray")
        ax.set_title(ds.target_names[label], fontsize=8)
        ax.set(xticks=[], yticks=[])
fig.tight_layout()

# %%
# Held-out embeddings of the hard sets
# ------------------------------------
# ``encoder="auto"`` decides before training: when local, position-free features of the training images
# classify them clearly better than their pixels, it trains the conv net, otherwise the MLP
# (``encoder_kind_``): rotated galaxies and lattices get the conv net. PCA with as many components is the
# label-blind reference.
fig, axes = plt.subplots(2, 2, figsize=(8, 7.4))
for row, name in zip(axes, ("galaxy-hard", "crystal-hard"), strict=True):
    ds = load(name, random_state=0)
    X, y = ds.X, ds.y
    if QUICK:  # half the images
        X, _, y, _ = train_test_split(X, y, train_size=0.5, stratify=y, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    est = NoRankEmbedder(epochs=6 if QUICK else 30, random_state=0).fit(X_train, y_train)
    pca = PCA(n_components=64, random_state=0).fit(X_train.reshape(len(X_train), -1))
    views = {
        "PCA": pca.transform(X_test.reshape(len(X_test), -1)),
        f"norank ({est.encoder_kind_})": est.transform(X_test),
    }
    for ax, (method, Z) in zip(row, views.items(), strict=True):
        s = evaluate(Z, y_test)
        print(
            f"{name:>12} {method:>14}: ARI {s['ari']:.2f}, precision@1 {s['precision_at_1']:.2f}, "
            f"silhouette {s['silhouette']:.2f}"
        )
        P = PCA(n_components=2).fit_transform(Z)
        for label in range(ds.n_classes):
            sel = y_test == label
            ax.scatter(P[sel, 0], P[sel, 1], s=10, label=ds.target_names[label])
        ax.set(title=f"{name}: {method}", xticks=[], yticks=[])
    row[0].legend(fontsize=7, loc="best")
fig.tight_layout()
plt.show()
