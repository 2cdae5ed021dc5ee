"""
Connectomes: autism across scanner sites (ABIDE)
================================================

Each ABIDE subject is a 111×111 correlation matrix between brain regions (Harvard–Oxford atlas), labelled
autism or control. Correlation matrices are symmetric positive definite, so they are compared best in the
tangent space of that manifold at a reference point fitted on the training subjects
(``normalization="tangent"``, as pyRiemann's ``TangentSpace`` does). The test that matters for a clinical
use is a *new site*: each of the largest sites is left out of training in turn, and its subjects, from a
scanner never seen, are classified from their embedding.

The reference beside norank is tangent space + ℓ2 logistic regression (Dadi et al. 2019), fitted on the
same subjects. The matrices are read from ``$NORANK_DATA_DIR``
(``abide_pcp_cpac_filtnoglobal_ho_corr.npz``).
"""

# %%
# The data and the leave-site-out splits
# --------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from pyriemann.tangentspace import TangentSpace
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from norank import NoRankEmbedder
from norank.datasets import load
from norank.metrics import knn_accuracy

QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"  # fewer subjects and epochs when the tests build the docs

abide = load("abide")
X, y, site = abide.X, abide.y, abide.meta["site"].astype(str)
names, counts = np.unique(site, return_counts=True)
largest = names[np.argsort(-counts, kind="stable")]
if QUICK:  # the subjects of the six largest sites only
    keep = np.isin(site, largest[:6])
    X, y, site = X[keep], y[keep], site[keep]
held_out_sites = largest[: 1 if QUICK else 2]
print(
    f"{len(X)} subjects, {X.shape[1]} regions, {len(np.unique(site))} sites; "
    f"held out in turn: {', '.join(held_out_sites)}"
)

fig, ax = plt.subplots(1, 2, figsize=(8, 3.6))
for a, label in zip(ax, (0, 1), strict=True):
    im = a.imshow(X[y == label].mean(axis=0), cmap="RdBu_r", vmin=-1, vmax=1)
    a.set(title=f"mean connectome: {abide.target_names[label]}", xticks=[], yticks=[])
_ = fig.colorbar(im, ax=ax, shrink=0.8)

# %%
# Train on every other site, test on the held-out one
# ---------------------------------------------------
# norank embeds the tangent vectors; a 1-NN classifier and a logistic regression fitted on the training
# embeddings then label the new site's subjects. ``dropout=0.5`` is ABIDE's measured setting
# (:doc:`/defaults`).
rows = []
for held_out in held_out_sites:
    train, test = site != held_out, site == held_out
    est = NoRankEmbedder(normalization="tangent", dropout=0.5, epochs=10 if QUICK else 30, random_state=0)
    Z_train = est.fit_transform(X[train], y[train])
    Z_test = est.transform(X[test])
    probe = LogisticRegression(max_iter=1000).fit(Z_train, y[train])

    reference = make_pipeline(
        TangentSpace(metric="riemann"), StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)
    )
    reference.fit(X[train].astype(np.float64), y[train])
    X_test64 = X[test].astype(np.float64)
    rows.append(
        {
            "site": held_out,
            "norank 1-NN": knn_accuracy(Z_train, y[train], Z_test, y[test]),
            "norank + logistic": probe.score(Z_test, y[test]),
            "tangent + logistic": reference.score(X_test64, y[test]),
            "norank AUC": roc_auc_score(y[test], probe.predict_proba(Z_test)[:, 1]),
            "tangent AUC": roc_auc_score(y[test], reference.predict_proba(X_test64)[:, 1]),
        }
    )
    print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()))

# %%
# Accuracy on sites never seen in training
# ----------------------------------------
# Chance is the share of the larger class at each site (about 0.5). Across-site accuracy on ABIDE is
# hard: about 67 % is the published reference (Abraham et al. 2017).
methods = ["norank 1-NN", "norank + logistic", "tangent + logistic"]
fig, ax = plt.subplots(figsize=(7, 3.4))
width = 0.8 / len(methods)
for i, m in enumerate(methods):
    ax.bar(np.arange(len(rows)) + i * width, [r[m] for r in rows], width, label=m)
ax.axhline(0.5, color="k", lw=0.8, ls="--")
ax.set(
    xticks=np.arange(len(rows)) + width,
    xticklabels=[r["site"] for r in rows],
    ylim=(0, 1.12),
    ylabel="held-out accuracy",
    xlabel="site left out of training",
)
ax.legend(loc="upper left", ncols=3, fontsize=8)
fig.tight_layout()

# %%
# The last held-out site in the embedding
# ---------------------------------------
# First two principal components of the new site's embedding, coloured by diagnosis.
P = PCA(n_components=2).fit_transform(Z_test)
fig, ax = plt.subplots(figsize=(4.6, 4))
for label, colour in ((0, "tab:blue"), (1, "tab:orange")):
    sel = y[test] == label
    ax.scatter(P[sel, 0], P[sel, 1], s=14, c=colour, label=abide.target_names[label])
ax.set(title=f"site {held_out_sites[-1]}, unseen in training", xticks=[], yticks=[])
ax.legend()
plt.show()
