"""Tables from results.json: the markdown report, the CSV, the console table and the paper claims.

Every table is for one dataset and one protocol (never mixed). Means are over seeds (leave-site-out:
over held-out sites) and ± is the sample standard deviation (ddof=1). The best value per column is bold
within each group; unsupervised (label-blind) and supervised methods are separate groups, and norank,
which learns from labels, sits in the supervised group and is repeated in italics beside the
unsupervised group for reference only (never bold there).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import numpy as np

from norank.experiments.methods import NORANK, is_supervised

METRICS = ("silhouette", "davies_bouldin", "calinski_harabasz", "separation_ratio", "ari", "nmi",
           "trustworthiness", "continuity", "precision_at_1", "r_precision", "map_at_r", "knn_accuracy")
LOWER_BETTER = {"davies_bouldin", "fit_seconds", "final_loss"}
SHORT = {"silhouette": "silhouette", "davies_bouldin": "DB ↓", "calinski_harabasz": "CH",
         "separation_ratio": "sep. ratio", "ari": "ARI", "nmi": "NMI", "trustworthiness": "trust.",
         "continuity": "cont.", "precision_at_1": "P@1", "r_precision": "R-prec.", "map_at_r": "MAP@R",
         "knn_accuracy": "1-NN acc.", "fit_seconds": "fit s", "effective_rank": "eff. rank",
         "final_embedding_spread": "final spread", "final_active_fraction": "final active",
         "final_loss": "final loss"}
STUDY_TITLES = {
    "rank": "b. Rank sensitivity: CP/Tucker rank R vs norank embedding size",
    "ablation": "c. Ablation of the loss terms",
    "mining": "d. Triplet mining strategies",
    "sample_efficiency": "e. Sample efficiency: norank vs the transformer baseline",
    "imbalance": "f. Class imbalance: per-class recall under each class_sampling",
    "collapse": "g. Trained to collapse: the regime of the paper's in-sample numbers",
    "encoder": "h. Encoder: auto (the default) beside the MLP and the conv encoder, on image sets",
    "pca": "i. Principal components before the encoder (ABIDE): 70/30 splits and leave-site-out",
}

# (claim, dataset, protocol-independent method, metric, paper value, comparator, threshold note)
PAPER_CLAIMS = (
    ("Silhouette, LFW", "lfw", NORANK, "silhouette", 0.9752),
    ("Silhouette, LFW, PCA", "lfw", "pca", "silhouette", -0.0186),
    ("Silhouette, ABIDE", "abide", NORANK, "silhouette", 0.9932),
    ("Silhouette, simulated galaxy", "galaxy", NORANK, "silhouette", 0.9999),
    ("Silhouette, simulated crystal", "crystal", NORANK, "silhouette", 0.9999),
    ("Silhouette, Olivetti", "olivetti", NORANK, "silhouette", 0.8566),
    ("Continuity, LFW, PCA", "lfw", "pca", "continuity", 0.9967),
    ("Continuity, LFW, metric learning", "lfw", NORANK, "continuity", 0.9236),
    ("ARI, ABIDE, metric learning (≈ 0.30)", "abide", NORANK, "ari", 0.30),
)
COLLAPSE_SPREAD = 0.1
COLLAPSE_NOTE = (
    "Collapse criterion: a final batch embedding spread (mean pairwise distance in the last epoch) below "
    f"{COLLAPSE_SPREAD} means the embeddings shrank towards a point (spread-out points on the unit sphere "
    "give about 1.4); an effective rank (exp entropy of the singular values of the centred test embedding) "
    "below 2 means they lie on a line. The effective rank is scale-free, so a point collapse with "
    "isotropic residual noise shows in the spread only.")
CP_TUCKER = tuple(f"{f}_r{r}" for f in ("cp", "tucker") for r in (5, 10, 20))


# -- aggregation ---------------------------------------------------------------------------------------
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
    vals = [value_of(r, name) for r in records]
    vals = np.array([v for v in vals if v is not None], dtype=float)
    if not len(vals):
        return None
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def by_method(records):
    groups = defaultdict(list)
    for r in records:
        groups[r["method"]].append(r)
    return groups


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


def _rounded(stat, name):
    return None if stat is None else round(stat[0], _digits(name, stat[0]))


# -- markdown tables -----------------------------------------------------------------------------------
def table(rows, columns, bold_rows=None, bold_columns=None, label="method"):
    """Markdown table. rows: [(label, {column: stat})]; bold the best of each column in `bold_columns`
    among the rows whose labels are in `bold_rows` (all rows when None). `bold_rows` may also be a list
    of label sets, each marked on its own (one best per family)."""
    if bold_rows is None:
        families = [{lbl for lbl, _ in rows}]
    elif bold_rows and all(isinstance(f, (set, frozenset)) for f in bold_rows):
        families = list(bold_rows)
    else:
        families = [set(bold_rows)]
    bold_columns = set(columns) - {"fit_seconds"} if bold_columns is None else set(bold_columns)
    best = {}  # (family index, column) -> best rounded value
    for i, family in enumerate(families):
        for c in bold_columns:
            vals = [_rounded(stats.get(c), c) for lbl, stats in rows if lbl in family]
            vals = [v for v in vals if v is not None]
            if vals:
                best[i, c] = min(vals) if c in LOWER_BETTER else max(vals)
    lines = ["| " + " | ".join([label] + [SHORT.get(c, c) for c in columns]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for lbl, stats in rows:
        family = next((i for i, f in enumerate(families) if lbl in f), None)
        cells = []
        for c in columns:
            text = fmt(stats.get(c), c)
            if family is not None and (family, c) in best and _rounded(stats.get(c), c) == best[family, c]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join([lbl] + cells) + " |")
    return "\n".join(lines)


def _stats(records, columns):
    return {c: summarise(records, c) for c in columns}


def grouped_tables(records, columns):
    """The unsupervised and supervised tables of one dataset × protocol (records already filtered)."""
    groups = by_method(records)
    order = list(groups)
    unsup = [m for m in order if not is_supervised(m)]
    sup = [m for m in order if is_supervised(m)]
    sup.sort(key=lambda m: m != NORANK)
    out = []
    if unsup:
        rows = [(m, _stats(groups[m], columns)) for m in unsup]
        ref = []
        if NORANK in groups:
            ref = [(f"*{NORANK} (supervised, reference)*", _stats(groups[NORANK], columns))]
        out.append("Unsupervised (label-blind):\n\n" + table(rows + ref, columns, bold_rows=unsup))
    if sup:
        rows = [(m, _stats(groups[m], columns)) for m in sup]
        out.append("Supervised (trained with labels):\n\n" + table(rows, columns))
    return "\n\n".join(out)


def main_columns(protocol):
    cols = [c for c in METRICS if protocol == "heldout" or c != "knn_accuracy"]
    return cols + ["fit_seconds"]


def _n_label(records, protocol, split):
    seeds = sorted({r["seed"] for r in records})
    if split == "site":
        sites = sorted({r["split"][5:] for r in records})
        return f"held out in turn: sites {', '.join(sites)} (mean ± std over sites), method seed {seeds[0]}"
    if protocol == "insample":
        return f"fit and scored on all samples, seed {', '.join(map(str, seeds))}"
    return f"stratified 70/30 splits, {len(seeds)} seed(s) {seeds}; metrics on the test part"


def main_section(results, datasets=None):
    recs = results["records"]
    datasets = datasets or results["meta"]["datasets"]
    parts = ["## a. Main table\n"]
    for d in datasets:
        parts.append(f"### {d}\n\n{results['meta'].get('descriptions', {}).get(d, '')}\n")
        for protocol, split, title in (("heldout", "stratified", "held-out"),
                                       ("heldout", "site", "held-out, leave-site-out"),
                                       ("insample", "all", "in-sample (the paper's protocol)")):
            sel = select(recs, dataset=d, protocol=protocol, study=None,
                         split=(lambda s: str(s).startswith("site:")) if split == "site" else split)
            if not sel:
                continue
            sel, dropped = complete_seeds(sel)
            note = (f" Seed(s) {dropped} left out: not every method has run on them yet." if dropped else "")
            parts.append(f"#### {d}: {title}\n\n{_n_label(sel, protocol, split)}.{note}\n\n"
                         + grouped_tables(sel, main_columns(protocol)) + "\n")
    return "\n".join(parts)


def complete_seeds(records):
    """Records of the seeds on which every method present has run (methods are compared on the same
    splits), and the seeds left out."""
    methods = {r["method"] for r in records}
    seeds = sorted({r["seed"] for r in records})
    keep = [s for s in seeds if {r["method"] for r in records if r["seed"] == s} == methods]
    if not keep:  # no seed has every method: keep all rather than show nothing
        return records, []
    return [r for r in records if r["seed"] in keep], [s for s in seeds if s not in keep]


# -- studies -------------------------------------------------------------------------------------------
def _study_rows(records, order, columns, label_of=lambda v: v):
    rows = []
    for v in order:
        sel = [r for r in records if r.get("variant") == v]
        if sel:
            rows.append((label_of(v), _stats(sel, columns)))
    return rows


def _variants(records):
    seen = []
    for r in records:
        if r.get("variant") not in seen:
            seen.append(r.get("variant"))
    return seen


def _seeds_note(records):
    seeds = sorted({r["seed"] for r in records})
    return f"held-out protocol, {len(seeds)} seed(s) {seeds}, mean ± std"


def rank_section(recs):
    out = []
    cols = ["silhouette", "ari", "nmi", "knn_accuracy", "trustworthiness", "continuity", "effective_rank"]
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d]
        groups = by_method(sel)
        rows = [(m, _stats(groups[m], cols)) for m in CP_TUCKER if m in groups]
        rows += [(m, _stats(groups[m], cols)) for m in groups if m.startswith(NORANK + "_dim")]
        families = [{m for m in CP_TUCKER if m in groups}, {m for m in groups if m.startswith(NORANK + "_dim")}]
        out.append(f"#### {d}\n\n{_seeds_note(sel)}. CP/Tucker are label-blind, norank is supervised; "
                   "bold marks the best within each family (CP/Tucker; norank).\n\n"
                   + table(rows, cols, bold_rows=families, bold_columns=cols[:-1]))
    return "\n\n".join(out)


def ablation_section(recs):
    from norank.experiments.studies import ABLATION_LABELS

    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "continuity",
            "final_embedding_spread", "effective_rank"]
    out = [COLLAPSE_NOTE]
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d]
        rows = _study_rows(sel, _variants(sel), cols, lambda v: ABLATION_LABELS.get(v, v))
        weights = {r["variant"]: {k: v for k, v in r.get("settings", {}).items() if k.endswith("_weight")}
                   for r in sel}
        out.append(f"#### {d}\n\n{_seeds_note(sel)}.\n\n" + table(rows, cols, bold_columns=cols[:6], label="variant"))
        out.append("Weights: " + "; ".join(f"{ABLATION_LABELS.get(v, v)}: "
                                            + ", ".join(f"{k}={w}" for k, w in ws.items())
                                            for v, ws in weights.items()) + ".")
        trip = [r for r in sel if r["variant"] == "triplet"]
        if trip:
            spread = summarise(trip, "final_embedding_spread")
            erank = summarise(trip, "effective_rank")
            collapsed = [r for r in trip if collapsed_run(r)]
            out.append(f"Triplet only on {d}: final spread {fmt(spread, 'x')}, effective rank "
                       f"{fmt(erank, 'effective_rank')}; collapsed in {len(collapsed)} of {len(trip)} seed(s).")
    return "\n\n".join(out)


def collapsed_run(record) -> bool:
    spread = value_of(record, "final_embedding_spread")
    erank = value_of(record, "effective_rank")
    return (spread is not None and spread < COLLAPSE_SPREAD) or (erank is not None and erank < 2)


def _collapse_line(sel):
    counts = []
    for v in _variants(sel):
        at = [r for r in sel if r["variant"] == v]
        counts.append(f"{v} {sum(collapsed_run(r) for r in at)}/{len(at)}")
    return "Collapsed runs (criterion above): " + ", ".join(counts) + "."


def mining_section(recs):
    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "final_loss", "final_active_fraction",
            "final_embedding_spread", "effective_rank", "fit_seconds"]
    out = [COLLAPSE_NOTE]
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d]
        rows = _study_rows(sel, _variants(sel), cols)
        out.append(f"#### {d}\n\n{_seeds_note(sel)}. Curves per epoch: figure `curves_mining_{d}.png`.\n\n"
                   + table(rows, cols, bold_columns=cols[:4], label="mining"))
        out.append(_collapse_line(sel))
    return "\n\n".join(out)


def efficiency_section(recs):
    cols = ["knn_accuracy", "map_at_r", "silhouette", "ari"]
    out = []
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d]
        lines = ["| training share | n train | " + " | ".join(
            f"{m} {SHORT[c]}" for c in cols for m in (NORANK, "transformer")) + " |",
                 "|" + "---|" * (2 + 2 * len(cols))]
        for v in _variants(sel):
            at = [r for r in sel if r["variant"] == v]
            nor = [r for r in at if r["method"].startswith(NORANK)]
            tra = [r for r in at if r["method"] == "transformer"]
            n_train = at[0].get("n_train")
            cells = []
            for c in cols:
                a, b = summarise(nor, c), summarise(tra, c)
                ta, tb = fmt(a, c), fmt(b, c)
                if a and b:
                    if a[0] > b[0]:
                        ta = f"**{ta}**"
                    elif b[0] > a[0]:
                        tb = f"**{tb}**"
                cells += [ta, tb]
            lines.append(f"| {v.replace('pct', ' %')} | {n_train} | " + " | ".join(cells) + " |")
        out.append(f"#### {d}\n\n{_seeds_note(sel)}; the subset is stratified (at least 2 per class) and "
                   "the test part is the full 30 %. Bold: the better of the two.\n\n" + "\n".join(lines))
    return "\n\n".join(out)


def imbalance_section(recs, n_smallest=3):
    out = []
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d and r.get("per_class_recall")]
        if not sel:
            continue
        counts = sel[0]["train_class_counts"]
        smallest = sorted(counts, key=lambda c: counts[c])[:n_smallest]
        cols = [f"recall {c} (n={counts[c]})" for c in smallest] + ["macro recall", "1-NN acc."]
        lines = ["| class_sampling | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        rows = []
        for v in _variants(sel):
            at = [r for r in sel if r["variant"] == v]
            stats = [summarise([{"metrics": {"x": r["per_class_recall"].get(c)}} for r in at], "x")
                     for c in smallest]
            stats.append(summarise([{"metrics": {"x": float(np.mean(list(r["per_class_recall"].values())))}}
                                    for r in at], "x"))
            stats.append(summarise(at, "knn_accuracy"))
            rows.append((v, stats))
        best = [max(s[i][0] for _, s in rows if s[i]) for i in range(len(cols))]
        for v, stats in rows:
            cells = [(f"**{fmt(s, 'x')}**" if s and round(s[0], 3) == round(best[i], 3) else fmt(s, "x"))
                     for i, s in enumerate(stats)]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        out.append(f"#### {d}\n\n{_seeds_note(sel)}; 1-NN fitted on the training embeddings, recall on the "
                   f"test part; the {n_smallest} classes with the fewest training samples.\n\n" + "\n".join(lines))
    return "\n\n".join(out)


def collapse_section(recs):
    from norank.experiments.studies import COLLAPSE_SETTINGS

    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "continuity", "fit_seconds"]
    settings = next((r.get("settings") for r in recs if r.get("variant") == "collapse"), None) or COLLAPSE_SETTINGS
    out = ["`collapse` trains with " + ", ".join(f"{k}={v!r}" for k, v in settings.items())
           + ": the margin equals the sphere's diameter, so no triplet is ever satisfied and every class keeps "
           "shrinking to a point. In-sample this reaches the paper's silhouettes; held out it shows what that "
           "memorisation is worth on new samples. `defaults` rows are the main runs."]
    for d in sorted({r["dataset"] for r in recs}):
        rows = []
        for proto, label in (("insample", "in-sample"), ("heldout", "held-out")):
            for v in ("defaults", "collapse"):
                at = [r for r in recs if r["dataset"] == d and r["protocol"] == proto and r.get("variant") == v]
                if at:
                    rows.append((f"{v}, {label}", _stats(at, cols)))
        held = [r for r in recs if r["dataset"] == d and r["protocol"] == "heldout"]
        note = f"{_seeds_note(held)} for held-out rows; in-sample: seed 0, fit and scored on every sample" if held \
            else "in-sample: seed 0, fit and scored on every sample"
        out.append(f"#### {d}\n\n{note}. Bold marks the best per column within each protocol.\n\n"
                   + table(rows, cols, bold_rows=[{n for n, _ in rows if n.endswith(p)} for p in ("in-sample", "held-out")],
                           bold_columns=cols[:-1], label="variant, protocol"))
    return "\n\n".join(out)


def encoder_section(recs):
    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "fit_seconds"]
    out = ["`auto` is the default (the main runs): it trains the MLP and the conv encoder for a third of the "
           "epochs on 75 % of a training subsample and scores each by 1-NN accuracy on the other 25 % (when the "
           "two are within noise, both train again for every epoch and the mean score decides), then trains "
           "the winner on the whole training set. `mlp` and `conv` fix the encoder (`conv`: strided conv "
           "blocks with batch normalisation, global average pooling, then the MLP head); everything else "
           "is unchanged."]
    for d in sorted({r["dataset"] for r in recs}):
        sel = [r for r in recs if r["dataset"] == d]
        rows = _study_rows(sel, _variants(sel), cols)
        chosen = Counter(value_of(r, "encoder") for r in sel if r.get("variant") == "auto" and value_of(r, "encoder"))
        note = ("; `auto` chose " + ", ".join(f"{k} in {n} seed(s)" for k, n in sorted(chosen.items()))) if chosen else ""
        out.append(f"#### {d}\n\n{_seeds_note(sel)}{note}.\n\n" + table(rows, cols, bold_columns=cols[:-1], label="encoder"))
    return "\n\n".join(out)


def pca_section(recs):
    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "fit_seconds"]
    out = ["`features` is the main configuration (every upper-triangle connectivity value); `pca<k>` projects "
           "them onto the k leading principal components of the training rows first (`pca_components=k`). "
           "70/30 rows are the stratified splits; leave-site-out rows hold out each of the largest sites in "
           "turn, with every study seed, so their mean runs over sites × seeds."]
    for d in sorted({r["dataset"] for r in recs}):
        rows, families = [], []
        for label, is_site in (("70/30", False), ("leave-site-out", True)):
            sel = [r for r in recs if r["dataset"] == d and str(r.get("split", "")).startswith("site:") == is_site]
            part = _study_rows(sel, _variants(sel), cols, label_of=lambda v, lbl=label: f"{v}, {lbl}")
            rows += part
            families.append({n for n, _ in part})
        seeds_note = _seeds_note([r for r in recs if r["dataset"] == d])
        out.append(f"#### {d}\n\n{seeds_note}. Bold marks the best per column within each kind of split.\n\n"
                   + table(rows, cols, bold_rows=[f for f in families if f], bold_columns=cols[:-1],
                           label="variant, split"))
    return "\n\n".join(out)


SECTIONS = {"rank": rank_section, "ablation": ablation_section, "mining": mining_section,
            "sample_efficiency": efficiency_section, "imbalance": imbalance_section,
            "collapse": collapse_section, "encoder": encoder_section, "pca": pca_section}


# -- paper claims --------------------------------------------------------------------------------------
def _best_baseline(recs, dataset, metric, exclude=()):
    best = None
    for m, rs in by_method(select(recs, dataset=dataset, protocol="heldout", split="stratified",
                                  study=None)).items():
        if m in (NORANK, "raw") or m in exclude:
            continue
        s = summarise(rs, metric)
        if s and (best is None or s[0] > best[1][0]):
            best = (m, s)
    return best


def claims_table(results):
    """One row per paper claim: paper value, ours in-sample, ours held-out mean ± std, best baseline
    held-out (by mean; norank excluded)."""
    recs = results["records"]
    lines = ["| claim | method | paper (in-sample) | ours in-sample | ours in-sample, trained to collapse "
             "| ours held-out | best baseline held-out |",
             "|---|---|---|---|---|---|---|"]
    for claim, d, method, metric, paper in PAPER_CLAIMS:
        ins = summarise(select(recs, dataset=d, method=method, protocol="insample", study=None), metric)
        held = summarise(select(recs, dataset=d, method=method, protocol="heldout", split="stratified",
                                study=None), metric)
        collapse = (summarise(select(recs, dataset=d, method=f"{NORANK}_collapse", protocol="insample"), metric)
                    if method == NORANK else None)
        best = _best_baseline(recs, d, metric, exclude=(method,))
        best_text = f"{fmt(best[1], metric)} ({best[0]})" if best else "–"
        lines.append(f"| {claim} | {method} | {paper:g} | {fmt(ins, metric)} | {fmt(collapse, metric)} "
                     f"| {fmt(held, metric)} | {best_text} |")
    # ABIDE ARI of CP/Tucker: the largest over R ∈ {5, 10, 20}
    cells = []
    for proto in ("insample", "heldout"):
        split = "all" if proto == "insample" else "stratified"
        per = [(m, summarise(select(recs, dataset="abide", method=m, protocol=proto, split=split, study=None), "ari"))
               for m in CP_TUCKER]
        per = [(m, s) for m, s in per if s]
        if per:
            m, s = max(per, key=lambda p: p[1][0])
            cells.append(f"max {fmt(s, 'ari')} ({m})")
        else:
            cells.append("–")
    best = _best_baseline(results["records"], "abide", "ari", exclude=CP_TUCKER)
    lines.append(f"| ARI, ABIDE, CP/Tucker R ∈ {{5,10,20}} | cp/tucker | < 0.02 | {cells[0]} | – | {cells[1]} | "
                 f"{(fmt(best[1], 'ari') + ' (' + best[0] + ')') if best else '–'} |")
    lines.append(efficiency_claim(recs))
    return "\n".join(lines)


def efficiency_claim(recs):
    sel = select(recs, study="sample_efficiency")
    if not sel:
        return "| metric learning beats the transformer with little training data | norank | better | – | – | – | – |"
    smallest = min(r.get("train_fraction", 1.0) for r in sel)
    at = [r for r in sel if r.get("train_fraction", 1.0) == smallest]
    nor = summarise([r for r in at if r["method"].startswith(NORANK)], "knn_accuracy")
    tra = summarise([r for r in at if r["method"] == "transformer"], "knn_accuracy")
    d = at[0]["dataset"]
    return (f"| metric learning beats the transformer with little training data ({d}, "
            f"{smallest:.0%} of the training split, 1-NN acc.) | norank | better | – | – | {fmt(nor, 'x')} | "
            f"{fmt(tra, 'x')} (transformer) |")


# -- whole report --------------------------------------------------------------------------------------
def header(results):
    meta = results["meta"]
    v = meta["versions"]
    lines = [
        "# norank experiments",
        "",
        f"Command: `{meta.get('command') or 'run_reproduce(...)'}`; date {meta['date']}; "
        + (f"wall time {meta['wall_seconds']} s" if meta.get("wall_seconds") else "stopped before the end")
        + f"; quick: {meta['quick']}.",
        f"Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Code: {meta.get('code_revision') or 'revision not recorded'}. "
        f"Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPU(s).",
        "",
        "Protocols (never mixed in one table): **held-out**: per seed a stratified 70/30 split; every "
        "method, preprocessing included, is fitted on the training part only; metrics on the test part "
        "(trustworthiness / continuity against the test inputs; 1-NN accuracy from a 1-NN classifier fitted "
        "on the training embeddings). **in-sample** (the paper's): fit and score on the same samples.",
        "",
        "Groups: unsupervised (label-blind) methods and supervised ones are separate tables; bold marks the "
        "best mean per column within a table. norank learns from labels, so it belongs to the supervised "
        "group; it is repeated in italics under the unsupervised table for reference only.",
        "",
        f"norank: `NoRankEmbedder(random_state=seed)` with the estimator's defaults "
        f"({_defaults_text(meta)}).",
    ]
    special = {d: s for d, s in meta.get("dataset_settings", {}).items() if d in meta["datasets"]}
    if special:
        lines.append("\nSettings beyond the defaults (also given to the transformer baseline):\n")
    for d, s in special.items():
        lines.append(f"- {d}: {s['settings']}: {s['reason']}.")
    if not meta.get("quick") and len(meta["seeds"]) < 5:
        lines.append(f"\nThis run used {len(meta['seeds'])} held-out seed(s) {meta['seeds']} instead of the "
                     "protocol's 5 (to fit the time available); with one seed the tables show no ± and "
                     "differences between methods below the split-to-split spread are not meaningful.")
    study_seeds = meta.get("study_seeds", meta["seeds"])
    which = None
    if isinstance(study_seeds, dict):  # merged runs made with different --study-seeds
        by_seeds: dict = {}
        for d, seeds in study_seeds.items():
            by_seeds.setdefault(tuple(seeds), []).append(d)
        which = "; ".join(f"{', '.join(ds)}: {list(seeds)}" for seeds, ds in by_seeds.items())
    elif meta.get("studies") and list(study_seeds) != list(meta["seeds"]):
        which = str(list(study_seeds))
    if which:
        lines.append(f"\nThe studies (b–i) use held-out seeds {which}: they compare variants on the same splits; "
                     "the main tables use every seed.")
    present = {d: sorted({r["seed"] for r in complete_seeds(select(results["records"], dataset=d, protocol="heldout",
                                                                   split="stratified", study=None))[0]})
               for d in meta["datasets"]}
    if any(seeds != list(meta["seeds"]) for seeds in present.values()):
        lines.append("\nNot every planned run is here (a run stopped before the end keeps whole seeds first; "
                     "`--resume` completes it). Held-out seeds in each main table: "
                     + "; ".join(f"{d} {seeds}" for d, seeds in present.items()) + ". Each table and study "
                     "states the seeds it holds.")
    if meta.get("quick"):
        lines.append(f"\nQuick run: norank and the transformer train for {meta['quick_epochs']} epochs; each "
                     f"dataset is capped at {meta['quick_max_samples']} samples (stratified); "
                     f"{len(meta['seeds'])} seed(s); no leave-site-out. Numbers are a smoke test, not results.")
    return "\n".join(lines)


def _defaults_text(meta):
    d = meta["norank_defaults"]
    keys = ("embedding_dim", "hidden_layer_sizes", "margin", "mining", "diversity_weight", "uniformity_weight",
            "local_weight", "global_weight", "optimizer", "learning_rate", "epochs", "batch_size",
            "normalization", "class_sampling")
    return ", ".join(f"{k}={d[k]}" for k in keys if k in d)


def failures_section(results):
    bad = [r for r in results["records"] if "error" in r]
    if not bad:
        return ""
    lines = ["## Failed runs\n", "| dataset | method | protocol | seed | study | error |", "|---|---|---|---|---|---|"]
    for r in bad:
        err = r["error"].replace("|", "/").replace("\n", " ")[:300]
        lines.append(f"| {r['dataset']} | {r['method']} | {r['protocol']} | {r['seed']} | {r.get('study', 'main')} | {err} |")
    return "\n".join(lines)


def figures_section(figure_files, figure_dir):
    if not figure_files:
        return ""
    return "## Figures\n\n" + "\n\n".join(f"![{f}]({figure_dir}/{f})" for f in figure_files)


def render(results, figure_files=(), figure_dir="figures", with_claims=True):
    parts = [header(results)]
    if with_claims:
        parts.append("## Paper claims\n\nPaper values are in-sample. \"best baseline held-out\" is the baseline "
                     "with the highest held-out mean (norank, the method of the row and `raw` excluded: the "
                     "raw input has trustworthiness and continuity 1 by definition).\n\n" + claims_table(results))
    parts.append(main_section(results))
    for study in results["meta"].get("studies", []):
        sel = select(results["records"], study=study)
        body = SECTIONS[study](sel) if sel else "No successful runs (see Failed runs)."
        parts.append(f"## {STUDY_TITLES[study]}\n\n" + body)
    parts += [failures_section(results), figures_section(figure_files, figure_dir)]
    return "\n\n".join(p for p in parts if p) + "\n"


def console_table(results):
    """The held-out main table (mean over seeds) as plain text for the terminal."""
    cols = ("silhouette", "ari", "nmi", "knn_accuracy", "trustworthiness", "continuity", "fit_seconds")
    recs = results["records"]
    protocol = "heldout" if select(recs, protocol="heldout", study=None) else "insample"
    lines = [f"main table ({protocol}, mean over {len(results['meta']['seeds']) if protocol == 'heldout' else 1} seed(s))",
             f"{'dataset':14s} {'method':16s} {'group':6s} " + " ".join(f"{SHORT[c]:>10s}" for c in cols)]
    for d in results["meta"]["datasets"]:
        sel = select(recs, dataset=d, protocol=protocol, study=None,
                     split="stratified" if protocol == "heldout" else "all")
        for m, rs in by_method(sel).items():
            vals = []
            for c in cols:
                s = summarise(rs, c)
                vals.append(f"{s[0]:10.3f}" if s else f"{'-':>10s}")
            group = "sup" if is_supervised(m) else "unsup"
            lines.append(f"{d:14s} {m:16s} {group:6s} " + " ".join(vals))
    return "\n".join(lines)


def write_csv(results, path):
    """One row per record: identifying fields, fit time, then every metric and diagnostic as a column."""
    recs = results["records"]
    metric_cols = sorted({k for r in recs for k in r.get("metrics", {})}, key=lambda k: (k not in METRICS, METRICS.index(k) if k in METRICS else 0, k))
    diag_cols = sorted({k for r in recs for k in r.get("diagnostics", {})})
    fields = ["dataset", "method", "protocol", "seed", "split", "study", "variant", "train_fraction",
              "n_train", "n_test", "fit_seconds", "reused", "error"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields + metric_cols + diag_cols)
        for r in recs:
            w.writerow([r.get(f, "") if r.get(f) is not None else "" for f in fields]
                       + [_cell(r.get("metrics", {}).get(k)) for k in metric_cols]
                       + [_cell(r.get("diagnostics", {}).get(k)) for k in diag_cols])


def _cell(v):
    return "" if v is None else v
