"""
Faces: norank beside PCA on held-out Olivetti faces
===================================================

The Olivetti set holds 10 photographs of each of 40 people (64×64 pixels). Both methods are fitted on 7
photographs per person; the other 3, never seen in training, are embedded and compared: PCA keeps the
directions of largest pixel variance (lighting, pose), norank learns directions that separate people.

The faces are read from ``$NORANK_DATA_DIR`` (``olivetti_faces.npz``); without a local copy,
:func:`norank.datasets.load` downloads them with scikit-learn.
"""

# %%
# Fit both on the same training photographs
# ------------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder
from norank.datasets import load
from norank.metrics import evaluate
from norank.neighbors import kneighbors

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer epochs when the docs are built by the tests

faces = load("olivetti")
X_train, X_test, y_train, y_test = train_test_split(faces.X, faces.y, test_size=0.3, stratify=faces.y, random_state=0)
flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)

pca = PCA(n_components=64, random_state=0).fit(flat_train)
est = NoRankEmbedder(epochs=10 if QUICK else 30, random_state=0).fit(X_train, y_train)
print("encoder chosen by encoder='auto':", est.encoder_kind_)

embeddings = {
    "PCA (64 components)": (pca.transform(flat_train), pca.transform(flat_test)),
    "norank (64 dimensions)": (est.transform(X_train), est.transform(X_test)),
}

# %%
# Held-out scores
# ---------------
# ``evaluate`` scores the test embedding on its own (clusters and leave-one-out retrieval among the test
# photographs); ``X`` adds trustworthiness and continuity, how well each embedding keeps the pixel
# neighbourhoods.
for name, (_, Z_test) in embeddings.items():
    s = evaluate(Z_test, y_test, X=flat_test)
    print(
        f"{name:>22}: ARI {s['ari']:.2f}  NMI {s['nmi']:.2f}  precision@1 {s['precision_at_1']:.2f}  "
        f"trustworthiness {s['trustworthiness']:.2f}"
    )

# %%
# The same 2-D view of both embeddings
# ------------------------------------
# t-SNE of each held-out embedding, one colour per person (colours repeat every 20 people).
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
colours = plt.get_cmap("tab20")(y_test % 20)
for ax, (name, (_, Z_test)) in zip(axes, embeddings.items(), strict=True):
    P = TSNE(n_components=2, perplexity=10, random_state=0).fit_transform(Z_test)
    ax.scatter(P[:, 0], P[:, 1], c=colours, s=22, edgecolors="k", linewidths=0.3)
    ax.set(title=name, xticks=[], yticks=[])
fig.suptitle("Olivetti faces not seen in training (3 per person)")
fig.tight_layout()

# %%
# Who is the nearest training photograph?
# ---------------------------------------
# For six held-out faces (top row), the closest training photograph in each embedding; a green title
# marks the same person. The nearest neighbour in embedding space is a 1-NN classifier.
queries = np.arange(0, len(X_test), len(X_test) // 6)[:6]
fig, axes = plt.subplots(3, 6, figsize=(9, 5))
for j, q in enumerate(queries):
    axes[0, j].imshow(X_test[q], cmap="gray")
    axes[0, j].set_title(f"person {y_test[q]}", fontsize=9)
    for i, (name, (Z_train, Z_test)) in enumerate(embeddings.items(), start=1):
        _, nearest = kneighbors(Z_test[q : q + 1], Z_train, k=1)
        match = nearest[0, 0]
        axes[i, j].imshow(X_train[match], cmap="gray")
        same = y_train[match] == y_test[q]
        axes[i, j].set_title(name.split()[0], fontsize=9, color="green" if same else "red")
for ax in axes.ravel():
    ax.set(xticks=[], yticks=[])
fig.tight_layout()

for name, (Z_train, Z_test) in embeddings.items():
    _, nearest = kneighbors(Z_test, Z_train, k=1)
    print(f"{name:>22}: 1-NN accuracy on held-out faces {np.mean(y_train[nearest[:, 0]] == y_test):.3f}")
plt.show()
