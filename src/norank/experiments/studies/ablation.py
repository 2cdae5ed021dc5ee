"""c. Ablation of the loss terms: what each term buys, and whether triplet-only collapses (final batch
embedding spread, effective rank of the test embedding)."""

from __future__ import annotations

from norank.experiments.methods import norank_defaults
from norank.experiments.studies._base import COLLAPSE_NOTE, QUALITY_COLUMNS, Study, collapse_summary, norank_variant
from norank.experiments.tables import variant_section

LABELS = {
    "triplet": "triplet only",
    "diversity": "triplet + diversity",
    "uniformity": "triplet + diversity + uniformity",
    "geometry": "triplet + local + global",
    "full": "every term",
}


def variants() -> dict[str, dict]:
    """Loss-term weights per variant. Terms that are off by default get weight 0.1 when switched on."""
    defaults = norank_defaults()
    on = {
        k: (defaults[k] if defaults[k] > 0 else 0.1)
        for k in ("diversity_weight", "uniformity_weight", "local_weight", "global_weight")
    }
    off = dict.fromkeys(on, 0.0)
    return {
        "triplet": dict(off),
        "diversity": {**off, "diversity_weight": on["diversity_weight"]},
        "uniformity": {**off, "diversity_weight": on["diversity_weight"], "uniformity_weight": on["uniformity_weight"]},
        "geometry": {**off, "local_weight": on["local_weight"], "global_weight": on["global_weight"]},
        "full": dict(on),
    }


def jobs(ctx):
    return [
        norank_variant(d, s, "ablation", v, w) for d in ctx.datasets for s in ctx.seeds for v, w in variants().items()
    ]


def _after(d, sel):
    weights = {r["variant"]: {k: v for k, v in r.get("settings", {}).items() if k.endswith("_weight")} for r in sel}
    text = (
        "Weights: "
        + "; ".join(f"{LABELS.get(v, v)}: " + ", ".join(f"{k}={w}" for k, w in ws.items()) for v, ws in weights.items())
        + "."
    )
    triplet = collapse_summary(sel, "triplet", f"Triplet only on {d}")
    return text + (f"\n\n{triplet}" if triplet else "")


def section(records):
    cols = [
        *QUALITY_COLUMNS,
        "trustworthiness",
        "continuity",
        "final_embedding_spread",
        "effective_rank",
    ]
    return variant_section(
        records, cols, bold_count=6, label_of=lambda v: LABELS.get(v, v), after=_after, intro=COLLAPSE_NOTE
    )


def figures(records, folder):
    from norank.experiments.figures import study_curves

    return study_curves(records, folder, "ablation")


STUDY = Study(
    "ablation", "Ablation of the loss terms", ("olivetti", "lfw"), jobs, section, figures, quick_datasets=("olivetti",)
)
