"""Draw docs/figures/readme_olivetti.png: held-out Olivetti faces embedded by PCA and by norank.

python docs/readme_figure.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split

from norank import NoRankEmbedder, evaluate, load


def main() -> None:
    ds = load("olivetti")
    Xtr, Xte, ytr, yte = train_test_split(ds.X, ds.y, test_size=0.3, stratify=ds.y, random_state=0)

    def flat(X):
        return X.reshape(len(X), -1)

    pca = PCA(64, random_state=0).fit(flat(Xtr))
    views = {
        "PCA (64 components)": pca.transform(flat(Xte)),
        "norank (default settings)": NoRankEmbedder(random_state=0).fit(Xtr, ytr).transform(Xte),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    cmap = plt.get_cmap("tab20")
    for ax, (title, Z) in zip(axes, views.items(), strict=True):
        scores = evaluate(Z, yte)
        P = TSNE(2, perplexity=10, random_state=0).fit_transform(Z)  # the same 2-D view for both
        ax.scatter(P[:, 0], P[:, 1], c=[cmap(c % 20) for c in yte], s=22, edgecolors="k", linewidths=0.3)
        ax.set_title(f"{title}\nheld-out ARI {scores['ari']:.2f}, precision@1 {scores['precision_at_1']:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Olivetti faces not seen in training (120 images, 40 people)")
    fig.tight_layout()
    out = Path(__file__).resolve().parent / "figures" / "readme_olivetti.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
