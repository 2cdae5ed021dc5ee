"""Aggregating records and writing markdown tables: the helpers every section of the report shares.

Means are over seeds (leave-site-out: over held-out sites) and ± is the sample standard deviation
(ddof=1). The best value per column is bold within a family of rows.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from norank.experiments.protocol import HELDOUT_KEYS
from norank.metrics import KEYS

METRICS = (*KEYS, *HELDOUT_KEYS)
LOWER_BETTER = {"davies_bouldin", "fit_seconds", "final_loss"}
SHORT = {
    "silhouette": "silhouette",
    "davies_bouldin": "DB ↓",
    "calinski_harabasz": "CH",
    "separation_ratio": "sep. ratio",
    "ari": "ARI",
    "nmi": "NMI",
    "trustworthiness": "trust.",
    "continuity": "cont.",
    "precision_at_1": "P@1",
    "r_precision": "R-prec.",
    "map_at_r": "MAP@R",
    "knn_accuracy": "1-NN acc.",
    "accuracy": "acc.",
    "balanced_accuracy": "bal. acc.",
    "roc_auc": "AUC",
    "fit_seconds": "fit s",
    "effective_rank": "eff. rank",
    "final_embedding_spread": "final spread",
    "final_active_fraction": "final active",
    "final_loss": "final loss",
}


def select(records, **where):
    """Records without errors matching every field in `where` (a callable value is a predicate)."""
    out = []
    for r in records:
        if "error" in r:
            continue
        if all((v(r.get(k)) if callable(v) else r.get(k) == v) for k, v in where.items()):
            out.append(r)
    return out


def value_of(record, name):
    if name == "fit_seconds":
        return record.get("fit_seconds")
    if name in record.get("metrics", {}):
        return record["metrics"][name]
    return record.get("diagnostics", {}).get(name)


def summarise(records, name):
    """(mean, std, n) of `name` over records, ignoring missing values; None when there are none."""
    found = [value_of(r, name) for r in records]
    vals = np.array([v for v in found if v is not None], dtype=float)
    if not len(vals):
        return None
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def by_method(records):
    groups = defaultdict(list)
    for r in records:
        groups[r["method"]].append(r)
    return groups


def stats(records, columns):
    return {c: summarise(records, c) for c in columns}


def _digits(name, mean):
    if abs(mean) >= 100:
        return 0
    if abs(mean) >= 10 or name in ("fit_seconds", "effective_rank"):
        return 1
    if 0.99 <= abs(mean) < 1:
        return 4  # the paper's near-1 silhouettes differ in the fourth digit
    return 3


def fmt(stat, name):
    if stat is None:
        return "–"
    mean, std, n = stat
    d = _digits(name, mean)
    return f"{mean:.{d}f} ± {std:.{d}f}" if n > 1 else f"{mean:.{d}f}"


def rounded(stat, name):
    return None if stat is None else round(stat[0], _digits(name, stat[0]))


def _families(rows, bold_rows):
    if bold_rows is None:
        return [{lbl for lbl, _ in rows}]
    if bold_rows and all(isinstance(f, (set, frozenset)) for f in bold_rows):
        return list(bold_rows)
    return [set(bold_rows)]


def table(rows, columns, bold_rows=None, bold_columns=None, label="method"):
    """Markdown table. rows: [(label, {column: stat})]; bold the best of each column in `bold_columns`
    among the rows whose labels are in `bold_rows` (all rows when None). `bold_rows` may also be a list
    of label sets, each marked on its own (one best per family)."""
    families = _families(rows, bold_rows)
    bold_columns = set(columns) - {"fit_seconds"} if bold_columns is None else set(bold_columns)
    best = {}  # (family index, column) -> best rounded value
    for i, family in enumerate(families):
        for c in bold_columns:
            vals = [rounded(s.get(c), c) for lbl, s in rows if lbl in family]
            vals = [v for v in vals if v is not None]
            if vals:
                best[i, c] = min(vals) if c in LOWER_BETTER else max(vals)
    lines = ["| " + " | ".join([label] + [SHORT.get(c, c) for c in columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for lbl, s in rows:
        family = next((i for i, f in enumerate(families) if lbl in f), None)
        cells = []
        for c in columns:
            text = fmt(s.get(c), c)
            if family is not None and (family, c) in best and rounded(s.get(c), c) == best[family, c]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join([lbl] + cells) + " |")
    return "\n".join(lines)


def variants(records):
    """The variants of study records, in order of first appearance."""
    seen = []
    for r in records:
        if r.get("variant") not in seen:
            seen.append(r.get("variant"))
    return seen


def variant_rows(records, columns, order=None, label_of=lambda v: v):
    """[(label, stats)] per variant (in `order`, else first appearance) of study records."""
    rows = []
    for v in variants(records) if order is None else order:
        sel = [r for r in records if r.get("variant") == v]
        if sel:
            rows.append((label_of(v), stats(sel, columns)))
    return rows


def seeds_note(records):
    seeds = sorted({r["seed"] for r in records})
    return f"held-out protocol, {len(seeds)} seed(s) {seeds}, mean ± std"


def per_dataset(records, render) -> str:
    """One '#### dataset' block per dataset of `records`: render(dataset, its records) gives the body."""
    blocks = []
    for d in sorted({r["dataset"] for r in records}):
        body = render(d, [r for r in records if r["dataset"] == d])
        if body:
            blocks.append(f"#### {d}\n\n{body}")
    return "\n\n".join(blocks)


def variant_section(
    records,
    columns,
    label="variant",
    bold_count=None,
    note=lambda d, sel: "",
    label_of=lambda v: v,
    after=lambda d, sel: "",
    intro="",
):
    """The common study section: per dataset, a seeds note, then one row per variant (bold: the first
    `bold_count` columns, all but fit seconds when None), then `after`'s text."""
    bold = columns[:bold_count] if bold_count is not None else None

    def render(d, sel):
        rows = variant_rows(sel, columns, label_of=label_of)
        text = f"{seeds_note(sel)}{note(d, sel)}.\n\n" + table(rows, columns, bold_columns=bold, label=label)
        extra = after(d, sel)
        return text + (f"\n\n{extra}" if extra else "")

    body = per_dataset(records, render)
    return "\n\n".join(p for p in (intro, body) if p)
