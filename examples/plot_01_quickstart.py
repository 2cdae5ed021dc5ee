"""
Quick start: embed handwritten digits
=====================================

Fit a :class:`norank.NoRankEmbedder` on 70 % of scikit-learn's digits (8×8 images, 10 classes), embed
the other 30 %, which the encoder never saw, and score the embedding with
:func:`norank.metrics.evaluate`. The embedding lives on the unit sphere; distances between embeddings
follow the classes.
"""

# %%
# Load and split
# --------------
# ``X`` may be a stack of images ``(n, 8, 8)`` or a matrix ``(n, 64)``; norank vectorises each sample.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder
from norank.metrics import evaluate

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer epochs when the docs are built by the tests

digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.images, digits.target, test_size=0.3, stratify=digits.target, random_state=0
)
print(X_train.shape, X_test.shape)

# %%
# Fit and embed
# -------------
# Every option is a keyword of the estimator; the defaults were chosen on held-out data.
est = NoRankEmbedder(epochs=10 if QUICK else 30, random_state=0)
est.fit(X_train, y_train)
Z_test = est.transform(X_test)
print(Z_test.shape, Z_test.dtype, np.linalg.norm(Z_test, axis=1)[:3])

# %%
# Score the held-out embedding
# ----------------------------
# Cluster quality (silhouette, ARI, NMI after k-means) and retrieval (precision@1, MAP@R), beside PCA
# with as many components, fitted on the same training samples.
pca = PCA(n_components=Z_test.shape[1], random_state=0).fit(X_train.reshape(len(X_train), -1))
Z_pca = pca.transform(X_test.reshape(len(X_test), -1))
for name, Z in [("PCA", Z_pca), ("norank", Z_test)]:
    scores = evaluate(Z, y_test)
    print(f"{name:>7}: " + ", ".join(f"{k} {scores[k]:.3f}" for k in ("silhouette", "ari", "precision_at_1")))

# %%
# Training history
# ----------------
# ``history_`` records every loss term per epoch and the share of anchors with an active triplet:
# when that share falls to 0, training has stopped learning.
fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
ax[0].plot(est.history_["loss"])
ax[0].set(xlabel="epoch", ylabel="training loss")
ax[1].plot(est.history_["active_fraction"])
ax[1].set(xlabel="epoch", ylabel="anchors with an active triplet", ylim=(0, 1.05))
fig.tight_layout()

# %%
# A 2-D view of the held-out embedding
# ------------------------------------
# The first two principal components of each 64-dimensional embedding, one colour per digit.
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (name, Z) in zip(axes, [("PCA", Z_pca), ("norank", Z_test)], strict=True):
    P = PCA(n_components=2).fit_transform(Z)
    ax.scatter(P[:, 0], P[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set(title=f"{name} (held out)", xticks=[], yticks=[])
fig.tight_layout()
plt.show()
