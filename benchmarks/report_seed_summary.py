"""The issue-12 bar on report seeds: norank's defaults against every other method, from run folders.

    python -m benchmarks.report_seed_summary docs/results_report/images docs/results_report/abide

prints, per dataset and method, the held-out mean ± std (ddof=1) over report seeds (leave-site-out: over
sites) of 1-NN accuracy and ARI (image sets) or the probe's accuracy and ROC-AUC (ABIDE), read from each
folder's results.json; nothing is recomputed.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

IMAGE_METRICS = ("knn_accuracy", "ari")
SPD_METRICS = ("accuracy", "roc_auc")


def summarise(records: list[dict]) -> dict:
    """{(dataset, protocol split, method): {metric: (mean, std, n)}} over the main tables' held-out records
    (a study's records, such as the transformer trained on a share of the data, are left out)."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["protocol"] != "heldout" or r.get("study") not in (None, "main"):
            continue
        split = "leave-site-out" if str(r.get("split", "")).startswith("site:") else "70/30"
        for key, value in r["metrics"].items():
            if value is not None:
                groups[(r["dataset"], split, r["method"])][key].append(float(value))
    return {
        g: {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for k, v in m.items()}
        for g, m in groups.items()
    }


def table(summary: dict) -> str:
    lines = []
    for dataset, split in sorted({(d, s) for d, s, _ in summary}):
        metrics = SPD_METRICS if dataset == "abide" else IMAGE_METRICS
        lines += [
            f"\n{dataset}, {split}",
            "| method | " + " | ".join(metrics) + " | n |",
            "|---" * (len(metrics) + 2) + "|",
        ]
        rows = {m: v for (d, s, m), v in summary.items() if d == dataset and s == split}
        for method in sorted(rows, key=lambda m: (m != "norank", -rows[m].get(metrics[0], (0,))[0])):
            cells = [
                f"{rows[method][k][0]:.3f} ± {rows[method][k][1]:.3f}" if k in rows[method] else "–" for k in metrics
            ]
            n = max((v[2] for v in rows[method].values()), default=0)
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    records = [r for folder in argv for r in json.loads((Path(folder) / "results.json").read_text())["records"]]
    print(table(summarise(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
