"""The markdown report, the CSV and the console table of a run (results.json → text).

Every table is for one dataset and one protocol (never mixed). Unsupervised (label-blind) and supervised
methods are separate groups, bold within each; norank, which learns from labels, sits in the supervised
group and is repeated in italics beside the unsupervised group for reference only (never bold there).
The study sections come from the study objects (`norank.experiments.studies`), the paper claims from
`claims`, the shared table helpers from `tables`.
"""

from __future__ import annotations

import csv

from norank.experiments import claims
from norank.experiments import seeds as SEEDS
from norank.experiments.methods import NORANK, is_supervised
from norank.experiments.studies import STUDIES, title
from norank.experiments.tables import METRICS, SHORT, by_method, select, stats, summarise, table, value_of
from norank.metrics import KEYS

SITE_COLUMNS = ("accuracy", "balanced_accuracy", "roc_auc", "knn_accuracy")
HELDOUT_NOTE = (
    "Protocols (never mixed in one table): **held-out**: per seed a stratified 70/30 split; every method, "
    "preprocessing included, is fitted on the training part only; metrics on the test part (trustworthiness / "
    "continuity against the test inputs; 1-NN accuracy from a 1-NN classifier fitted on the training embeddings; "
    "accuracy, balanced accuracy and ROC-AUC (binary; macro one-vs-rest beyond two classes) from a logistic "
    "regression probe fitted on the training embeddings, or from the method's own predictions when it predicts, "
    "as tangent_logistic and tangent_svc do). ABIDE also leaves out each site with at least 40 subjects in turn "
    "(mean ± std across sites). **in-sample** (the paper's): fit and score on the same samples."
)
GROUPS_NOTE = (
    "Groups: unsupervised (label-blind) methods and supervised ones are separate tables; bold marks the best "
    "mean per column within a table. norank learns from labels, so it belongs to the supervised group (with "
    "`norank_<loss>`: norank's encoder and settings with another loss); it is repeated in italics under the "
    "unsupervised table for reference only."
)


# -- main tables ---------------------------------------------------------------------------------------
def grouped_tables(records, columns, stats_of=stats):
    """The unsupervised and supervised tables of one dataset × protocol (records already filtered)."""
    groups = by_method(records)
    unsup = [m for m in groups if not is_supervised(m)]
    sup = sorted((m for m in groups if is_supervised(m)), key=lambda m: m != NORANK)
    out = []
    if unsup:
        rows = [(m, stats_of(groups[m], columns)) for m in unsup]
        if NORANK in groups:
            rows.append((f"*{NORANK} (supervised, reference)*", stats_of(groups[NORANK], columns)))
        out.append("Unsupervised (label-blind):\n\n" + table(rows, columns, bold_rows=unsup))
    if sup:
        rows = [(m, stats_of(groups[m], columns)) for m in sup]
        out.append("Supervised (trained with labels):\n\n" + table(rows, columns))
    return "\n\n".join(out)


def main_columns(protocol, records=None):
    """The protocol's metric columns and fit seconds; with `records`, only the metrics some record holds
    (runs made before a metric existed show no empty column)."""
    columns = [*(METRICS if protocol == "heldout" else KEYS), "fit_seconds"]
    if records is None:
        return columns
    return [c for c in columns if any(value_of(r, c) is not None for r in records)]


def _n_label(records, protocol, split):
    seeds = sorted({r["seed"] for r in records})
    if split == "site":
        sites = sorted({r["split"][5:] for r in records})
        return f"held out in turn: sites {', '.join(sites)} (mean ± std over sites), method seed {seeds[0]}"
    if protocol == "insample":
        return f"fit and scored on all samples, seed {', '.join(map(str, seeds))}"
    return f"stratified 70/30 splits, {len(seeds)} seed(s) {seeds}; metrics on the test part"


def complete_seeds(records):
    """Records of the seeds on which every method present has run (methods are compared on the same
    splits), and the seeds left out."""
    methods = {r["method"] for r in records}
    seeds = sorted({r["seed"] for r in records})
    keep = [s for s in seeds if {r["method"] for r in records if r["seed"] == s} == methods]
    if not keep:  # no seed has every method: keep all rather than show nothing
        return records, []
    return [r for r in records if r["seed"] in keep], [s for s in seeds if s not in keep]


def _is_site(split) -> bool:
    return str(split).startswith("site:")


def site_comparison(records, dataset) -> str:
    """Classification scores on the 70/30 splits beside leave-site-out, per method (datasets with sites)."""
    strat = select(records, dataset=dataset, protocol="heldout", study=None, split="stratified")
    sites = select(records, dataset=dataset, protocol="heldout", study=None, split=_is_site)
    if not sites:
        return ""
    strat = complete_seeds(strat)[0]
    present = [c for c in SITE_COLUMNS if any(value_of(r, c) is not None for r in strat + sites)]
    columns = [f"{SHORT[c]}, {part}" for part in ("70/30", "sites") for c in present]

    def stats_of(recs, _columns):
        parts = {
            "70/30": [r for r in recs if not _is_site(r["split"])],
            "sites": [r for r in recs if _is_site(r["split"])],
        }
        return {f"{SHORT[c]}, {p}": summarise(rs, c) for p, rs in parts.items() for c in present}

    n_sites = len({r["split"] for r in sites})
    return (
        f"#### {dataset}: 70/30 splits beside leave-site-out\n\n70/30: mean ± std over "
        f"{len({r['seed'] for r in strat})} seed(s); sites: mean ± std over the {n_sites} left-out sites.\n\n"
        + grouped_tables(strat + sites, columns, stats_of)
        + "\n"
    )


def main_section(results, datasets=None):
    recs = results["records"]
    parts = ["## a. Main table\n"]
    for d in datasets or results["meta"]["datasets"]:
        parts.append(f"### {d}\n\n{results['meta'].get('descriptions', {}).get(d, '')}\n")
        for protocol, split, name in (
            ("heldout", "stratified", "held-out"),
            ("heldout", "site", "held-out, leave-site-out"),
            ("insample", "all", "in-sample (the paper's protocol)"),
        ):
            sel = select(recs, dataset=d, protocol=protocol, study=None, split=_is_site if split == "site" else split)
            if not sel:
                continue
            sel, dropped = complete_seeds(sel)
            note = f" Seed(s) {dropped} left out: not every method has run on them yet." if dropped else ""
            parts.append(
                f"#### {d}: {name}\n\n{_n_label(sel, protocol, split)}.{note}\n\n"
                + grouped_tables(sel, main_columns(protocol, sel))
                + "\n"
            )
        parts.append(site_comparison(recs, d))
    return "\n".join(p for p in parts if p)


# -- header --------------------------------------------------------------------------------------------
def _defaults_text(meta):
    d = meta["norank_defaults"]
    keys = (
        "embedding_dim",
        "hidden_layer_sizes",
        "loss",
        "margin",
        "mining",
        "diversity_weight",
        "uniformity_weight",
        "local_weight",
        "global_weight",
        "optimizer",
        "learning_rate",
        "epochs",
        "batch_size",
        "normalization",
        "class_sampling",
    )
    return ", ".join(f"{k}={d[k]}" for k in keys if k in d)


def _study_seeds_text(meta):
    """Which seeds the studies use, when not every main seed (merged runs: per dataset)."""
    study_seeds = meta.get("study_seeds", meta["seeds"])
    which = None
    if isinstance(study_seeds, dict):  # merged runs made with different --study-seeds
        by_seeds: dict = {}
        for d, seeds in study_seeds.items():
            by_seeds.setdefault(tuple(seeds), []).append(d)
        which = "; ".join(f"{', '.join(ds)}: {list(seeds)}" for seeds, ds in by_seeds.items())
    elif meta.get("studies") and list(study_seeds) != list(meta["seeds"]):
        which = str(list(study_seeds))
    if not which:
        return None
    letters = sorted(title(s)[0] for s in meta.get("studies") or STUDIES if s in STUDIES) or ["b"]
    span = letters[0] if len(letters) == 1 else f"{letters[0]}–{letters[-1]}"
    return (
        f"The studies ({span}) use held-out seeds {which}: they compare variants on the same splits; the "
        "main tables use every seed."
    )


def _all_seeds(meta):
    seeds = set(meta["seeds"])
    study_seeds = meta.get("study_seeds", [])
    for value in study_seeds.values() if isinstance(study_seeds, dict) else [study_seeds]:
        seeds |= set(value)
    return seeds


def _run_notes(results):
    """Settings, seeds and completeness notes under the header's first lines."""
    meta = results["meta"]
    lines = [f"\n{SEEDS.describe(_all_seeds(meta))}"]
    special = {d: s for d, s in meta.get("dataset_settings", {}).items() if d in meta["datasets"]}
    if special:
        lines.append("\nSettings beyond the defaults (also given to `norank_<loss>`):\n")
    lines += [f"- {d}: {s['settings']}: {s['reason']}." for d, s in special.items()]
    own = meta.get("transformer_settings")
    if own:
        per_dataset = [f"- {d}: {s['settings']}: {s['reason']}." for d, s in own.items() if d in meta["datasets"]]
        lines.append(
            "\nThe transformer baseline trains with settings of its own, chosen for it on tuning seeds "
            f"(docs/baselines.md): {own['all'] or 'the estimator defaults'}"
            + (", and on these datasets:\n" if per_dataset else ".")
        )
        lines += per_dataset
    if not meta.get("quick") and len(meta["seeds"]) < 5:
        lines.append(
            f"\nThis run used {len(meta['seeds'])} held-out seed(s) {meta['seeds']} instead of the "
            "protocol's 5 (to fit the time available); with one seed the tables show no ± and "
            "differences between methods below the split-to-split spread are not meaningful."
        )
    study_text = _study_seeds_text(meta)
    if study_text:
        lines.append(f"\n{study_text}")
    present = {
        d: sorted(
            {
                r["seed"]
                for r in complete_seeds(
                    select(results["records"], dataset=d, protocol="heldout", split="stratified", study=None)
                )[0]
            }
        )
        for d in meta["datasets"]
    }
    if any(seeds != list(meta["seeds"]) for seeds in present.values()):
        lines.append(
            "\nNot every planned run is here (a run stopped before the end keeps whole seeds first; "
            "`--resume` completes it). Held-out seeds in each main table: "
            + "; ".join(f"{d} {seeds}" for d, seeds in present.items())
            + ". Each table and study "
            "states the seeds it holds."
        )
    if meta.get("quick"):
        lines.append(
            f"\nQuick run: norank and the transformer train for {meta['quick_epochs']} epochs; each "
            f"dataset is capped at {meta['quick_max_samples']} samples (stratified); "
            f"{len(meta['seeds'])} seed(s); no leave-site-out. Numbers are a smoke test, not results."
        )
    return lines


def header(results):
    meta = results["meta"]
    threads = meta.get("runtime_threads")
    lines = [
        "# norank experiments",
        "",
        f"Command: `{meta.get('command') or 'run_reproduce(...)'}`; date {meta['date']}; "
        + (f"wall time {meta['wall_seconds']} s" if meta.get("wall_seconds") else "stopped before the end")
        + f"; quick: {meta['quick']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in meta["versions"].items()) + ".",
        f"Code: {meta.get('code_revision') or 'revision not recorded'}. "
        f"Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPU(s)"
        + (f"; the runtime study ran with {threads} thread(s)." if threads else "."),
        "",
        HELDOUT_NOTE,
        "",
        GROUPS_NOTE,
        "",
        f"norank: `NoRankEmbedder(random_state=seed)` with the estimator's defaults ({_defaults_text(meta)}).",
    ]
    return "\n".join(lines + _run_notes(results))


# -- whole report --------------------------------------------------------------------------------------
def failures_section(results):
    bad = [r for r in results["records"] if "error" in r]
    if not bad:
        return ""
    lines = ["## Failed runs\n", "| dataset | method | protocol | seed | study | error |", "|---|---|---|---|---|---|"]
    for r in bad:
        err = r["error"].replace("|", "/").replace("\n", " ")[:300]
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['protocol']} | {r['seed']} | {r.get('study', 'main')} | {err} |"
        )
    return "\n".join(lines)


def figures_section(figure_files, figure_dir):
    if not figure_files:
        return ""
    return "## Figures\n\n" + "\n\n".join(f"![{f}]({figure_dir}/{f})" for f in figure_files)


def render(results, figure_files=(), figure_dir="figures", with_claims=True):
    parts = [header(results)]
    if with_claims:
        parts.append(claims.section(results))
    parts.append(main_section(results))
    for study in results["meta"].get("studies", []):
        sel = select(results["records"], study=study)
        body = STUDIES[study].section(sel) if sel else "No successful runs (see Failed runs)."
        parts.append(f"## {title(study)}\n\n" + body)
    parts += [failures_section(results), figures_section(figure_files, figure_dir)]
    return "\n\n".join(p for p in parts if p) + "\n"


def console_table(results):
    """The held-out main table (mean over seeds) as plain text for the terminal."""
    cols = ("silhouette", "ari", "nmi", "knn_accuracy", "accuracy", "roc_auc", "trustworthiness", "fit_seconds")
    recs = results["records"]
    protocol = "heldout" if select(recs, protocol="heldout", study=None) else "insample"
    n = len(results["meta"]["seeds"]) if protocol == "heldout" else 1
    lines = [
        f"main table ({protocol}, mean over {n} seed(s))",
        f"{'dataset':14s} {'method':24s} {'group':6s} " + " ".join(f"{SHORT[c]:>10s}" for c in cols),
    ]
    for d in results["meta"]["datasets"]:
        sel = select(
            recs, dataset=d, protocol=protocol, study=None, split="stratified" if protocol == "heldout" else "all"
        )
        for m, rs in by_method(sel).items():
            vals = [f"{s[0]:10.3f}" if s else f"{'-':>10s}" for s in (summarise(rs, c) for c in cols)]
            group = "sup" if is_supervised(m) else "unsup"
            lines.append(f"{d:14s} {m:24s} {group:6s} " + " ".join(vals))
    return "\n".join(lines)


def write_csv(results, path):
    """One row per record: identifying fields, fit time, then every metric and diagnostic as a column."""
    recs = results["records"]
    order = {k: i for i, k in enumerate(METRICS)}
    metric_cols = sorted(
        {k for r in recs for k in r.get("metrics", {})}, key=lambda k: (k not in order, order.get(k, 0), k)
    )
    diag_cols = sorted({k for r in recs for k in r.get("diagnostics", {})})
    fields = [
        "dataset",
        "method",
        "protocol",
        "seed",
        "split",
        "study",
        "variant",
        "train_fraction",
        "n_train",
        "n_test",
        "fit_seconds",
        "reused",
        "error",
    ]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields + metric_cols + diag_cols)
        for r in recs:
            w.writerow(
                [r.get(f, "") if r.get(f) is not None else "" for f in fields]
                + [_cell(r.get("metrics", {}).get(k)) for k in metric_cols]
                + [_cell(r.get("diagnostics", {}).get(k)) for k in diag_cols]
            )


def _cell(v):
    return "" if v is None else v
