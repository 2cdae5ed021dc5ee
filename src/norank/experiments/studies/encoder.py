"""h. Encoder: the default encoder="auto" (the main runs; the report counts which encoder it chose)
beside the MLP and the conv encoder fixed, on image sets (the conv encoder needs (n, H, W) samples)."""

from __future__ import annotations

from collections import Counter

from norank.experiments.studies._base import Study, norank_variant
from norank.experiments.tables import value_of, variant_section

ENCODERS = ("auto", "mlp", "conv")
NOT_IMAGES = ("abide",)
INTRO = (
    "`auto` is the default (the main runs): it trains the MLP and the conv encoder for a third of the "
    "epochs on 75 % of a training subsample and scores each by 1-NN accuracy on the other 25 % (when the "
    "two are within noise, both train again for every epoch and the mean score decides), then trains "
    "the winner on the whole training set. `mlp` and `conv` fix the encoder (`conv`: strided conv "
    "blocks with batch normalisation, global average pooling, then the MLP head); everything else "
    "is unchanged."
)


def jobs(ctx):
    """ "auto" is the default, so its variant reuses the main run."""
    return [
        norank_variant(d, s, "encoder", e, {"encoder": e})
        for d in ctx.datasets
        if d not in NOT_IMAGES
        for s in ctx.seeds
        for e in ENCODERS
    ]


def _chosen(d, sel):
    chosen = Counter(value_of(r, "encoder") for r in sel if r.get("variant") == "auto" and value_of(r, "encoder"))
    return ("; `auto` chose " + ", ".join(f"{k} in {n} seed(s)" for k, n in sorted(chosen.items()))) if chosen else ""


def section(records):
    cols = ["silhouette", "ari", "knn_accuracy", "map_at_r", "trustworthiness", "fit_seconds"]
    return variant_section(records, cols, label="encoder", note=_chosen, intro=INTRO)


STUDY = Study(
    "encoder",
    "Encoder: auto (the default) beside the MLP and the conv encoder, on image sets",
    ("galaxy-hard", "crystal-hard", "olivetti", "lfw"),
    jobs,
    section,
)
