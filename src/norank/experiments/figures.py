"""Figures of a run: 2-D views of test embeddings, metric bars, training curves, study plots.

2-D views are the first two principal components of each method's held-out test embedding (first seed),
coloured by class: a linear view, so it shows the embedding as the metrics see it rather than a
re-embedding of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from norank.experiments import tables as R
from norank.experiments.methods import NORANK, is_supervised

BAR_METRICS = ("silhouette", "ari", "nmi", "knn_accuracy", "trustworthiness", "continuity")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pca2(Z):
    """The first two principal components of the rows of Z (one column of zeros added for 1-D Z)."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z - Z.mean(0)
    if Z.shape[1] == 1:
        return np.column_stack([Z[:, 0], np.zeros(len(Z))])
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    return Z @ vt[:2].T


def views(dataset, embeddings, path):
    """One panel per method: its 2-D view (`pca2` of the test embedding), coloured by class;
    `embeddings` maps a method to (xy, y)."""
    plt = _plt()
    names = list(embeddings)
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        P, y = embeddings[name]
        ax.scatter(P[:, 0], P[:, 1], c=y, s=6, cmap="tab20" if len(np.unique(y)) > 10 else "tab10")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"{dataset}: held-out test embeddings (PCA to 2-D)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def bars(results, dataset, path):
    """Held-out metric means ± std per method, one panel per metric."""
    plt = _plt()
    sel = R.select(results["records"], dataset=dataset, protocol="heldout", split="stratified", study=None)
    groups = R.by_method(sel)
    if not groups:
        return False
    names = sorted(groups, key=lambda m: (is_supervised(m), m))
    fig, axes = plt.subplots(
        1, len(BAR_METRICS), figsize=(2.6 * len(BAR_METRICS), 0.25 * len(names) + 1.6), squeeze=False
    )
    for ax, metric in zip(axes[0], BAR_METRICS, strict=True):
        stats = [R.summarise(groups[m], metric) for m in names]
        means = [s[0] if s else np.nan for s in stats]
        stds = [s[1] if s else 0 for s in stats]
        colors = ["tab:orange" if is_supervised(m) else "tab:blue" for m in names]
        ax.barh(range(len(names)), means, xerr=stds, color=colors)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if ax is axes[0][0] else [], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(R.SHORT.get(metric, metric), fontsize=9)
    fig.suptitle(f"{dataset}: held-out metrics (blue: unsupervised, orange: supervised)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def curves(records, path, title, keys=("loss", "active_fraction", "embedding_spread"), label=lambda r: r["method"]):
    """Per-epoch training curves (first seed of each label)."""
    plt = _plt()
    seen = {}
    for r in records:
        if r.get("history") and label(r) not in seen:
            seen[label(r)] = r["history"]
    if not seen:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, h in seen.items():
            if h.get(key):
                ax.plot(range(1, len(h[key]) + 1), h[key], label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key, fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def efficiency(records, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for method, rs in R.by_method(records).items():
        fr = sorted({r.get("train_fraction", 1.0) for r in rs})
        stats = [R.summarise([r for r in rs if r.get("train_fraction", 1.0) == f], "knn_accuracy") for f in fr]
        ax.errorbar(
            [100 * f for f in fr],
            [s[0] for s in stats],
            yerr=[s[1] for s in stats],
            marker="o",
            label="norank" if method.startswith("norank") else method,
            capsize=3,
        )
    ax.set_xscale("log")
    ax.set_xlabel("% of the training split")
    ax.set_ylabel("held-out 1-NN accuracy")
    ax.legend(fontsize=8)
    ax.set_title(f"sample efficiency ({records[0]['dataset']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def study_curves(records, folder, study) -> list[str]:
    """Per-epoch curves of each variant of a study, one figure per dataset (first seed)."""
    made = []
    for d in sorted({r["dataset"] for r in records}):
        name = f"curves_{study}_{d}.png"
        if curves(
            [r for r in records if r["dataset"] == d],
            Path(folder) / name,
            f"{study} on {d} (first seed)",
            label=lambda r: r["variant"],
        ):
            made.append(name)
    return made


def sensitivity_heatmaps(means, margins, rows, columns, title, path) -> bool:
    """One heatmap per metric (figure rows) and margin (figure columns): diversity weight (y) × uniformity
    weight (x); `means[metric][(margin, diversity, uniformity)]` is the cell; one colour scale per metric."""
    if not any(means.values()):
        return False
    plt = _plt()
    fig, axes = plt.subplots(len(means), len(margins), figsize=(3.3 * len(margins), 2.9 * len(means)), squeeze=False)
    for axes_row, (metric, cells) in zip(axes, means.items(), strict=True):
        values = [v for v in cells.values() if v is not None]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        for ax, m in zip(axes_row, margins, strict=True):
            grid = np.array([[cells.get((m, d, u), np.nan) for u in columns] for d in rows], dtype=float)
            image = ax.imshow(grid, vmin=low, vmax=high, cmap="viridis", origin="lower")
            for (i, j), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.3f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if v < (low + high) / 2 else "black",
                    )
            ax.set_xticks(range(len(columns)), [f"{u:g}" for u in columns])
            ax.set_yticks(range(len(rows)), [f"{d:g}" for d in rows])
            ax.set_xlabel("uniformity_weight", fontsize=8)
            if ax is axes_row[0]:
                ax.set_ylabel("diversity_weight", fontsize=8)
            ax.set_title(f"{R.SHORT.get(metric, metric)}, margin {m:g}", fontsize=9)
        fig.colorbar(image, ax=list(axes_row), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def make_all(results, embeddings, folder) -> list[str]:
    """Write every figure the results support into `folder`; returns the file names."""
    from norank.experiments.studies import STUDIES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for d in results["meta"]["datasets"]:
        if embeddings.get(d):
            views(d, embeddings[d], folder / f"views_{d}.png")
            made.append(f"views_{d}.png")
        if bars(results, d, folder / f"bars_{d}.png"):
            made.append(f"bars_{d}.png")
    main_norank = R.select(results["records"], method=NORANK, protocol="heldout", split="stratified", study=None)
    if curves(
        main_norank,
        folder / "curves_norank.png",
        "norank training curves per dataset (first seed)",
        label=lambda r: r["dataset"],
    ):
        made.append("curves_norank.png")
    for name, study in STUDIES.items():
        sel = R.select(results["records"], study=name)
        if sel and study.figures is not None:
            made += study.figures(sel, folder)
    return made
