"""Constants several test files share: the names DESIGN.md §2 fixes (written out, so a registry that drifts
from the design fails), the tiny estimator settings of the input suites, and the PML equality tolerances."""

# Baselines with generic input, in registry order (DESIGN.md §2); the SPD-only ones are tested apart.
BASELINE_NAMES = [
    "raw", "pca", "tsne", "umap", "umap_supervised", "cp_r5", "cp_r10", "cp_r20", "tucker_r5", "tucker_r10",
    "tucker_r20", "tsvd", "lda", "nca", "vae", "dec", "transformer",
]  # fmt: skip
METHOD_NAMES = {"norank", *BASELINE_NAMES}
EVALUATE_KEYS = {
    "silhouette", "davies_bouldin", "calinski_harabasz", "separation_ratio", "ari", "nmi", "trustworthiness",
    "continuity", "precision_at_1", "r_precision", "map_at_r",
}  # fmt: skip

# The smallest estimator the input-validation suites fit.
TINY = {
    "epochs": 1,
    "hidden_layer_sizes": (8,),
    "embedding_dim": 4,
    "encoder": "mlp",
    "batch_size": 8,
    "random_state": 0,
}

# Equality with PML in float64: values to 1e-10 relative, gradients to 1e-8 relative (1e-10 absolute).
VALUE_TOL = {"atol": 1e-12, "rtol": 1e-10}
GRAD_TOL = {"atol": 1e-10, "rtol": 1e-8}
