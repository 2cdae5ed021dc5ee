"""Real benchmark sets: Olivetti faces, LFW people, ABIDE connectivity, sklearn digits.

Each loader first looks for its documented local file (``data_dir``, then ``$NORANK_DATA_DIR``);
only when none holds it does it call the online fetcher (scikit-learn / nilearn, cached in their
default folders), with a warning naming the download. Offline, the error says which file to provide.
"""

from __future__ import annotations

import warnings

import numpy as np

from norank.datasets._base import DataPath, Dataset, candidate_dirs, find_file
from norank.datasets.connectivity import connectivity_from_timeseries, triu_to_matrices

OLIVETTI_FILE = "olivetti_faces.npz"
LFW_FILE = "lfw_people_min70.npz"
ABIDE_FILE = "abide_pcp_cpac_filtnoglobal_ho_corr.npz"
ABIDE_CLASSES = np.array(["control", "ASD"])


def _download(file_name, data_dir, what, fetch):
    """Run ``fetch()`` after saying so; turn any failure into an error that names the offline fix."""
    searched = ", ".join(str(d) for d in candidate_dirs(data_dir)) or "no folder (data_dir and NORANK_DATA_DIR unset)"
    warnings.warn(
        f"{file_name} not found in {searched}; downloading with {what} (cached by that library).",
        UserWarning,
        stacklevel=4,
    )
    try:
        return fetch()
    except Exception as exc:  # network, missing optional package, corrupt cache: one message for all
        raise FileNotFoundError(
            f"could not download with {what} ({type(exc).__name__}: {exc}). To work offline, set "
            f"NORANK_DATA_DIR (or pass data_dir) to a folder holding {file_name}; see docs/datasets.md "
            "for the file names and keys."
        ) from exc


def _open(path, required):
    """The npz archive, after checking it has the documented keys (a clear error if not)."""
    f = np.load(path, allow_pickle=False)
    missing = [k for k in required if k not in f.files]
    if missing:
        f.close()
        raise ValueError(
            f"{path} lacks the keys {missing} (keys present: {sorted(f.files)}); see docs/datasets.md for the layout."
        )
    return f


def load_olivetti(data_dir: DataPath | None = None) -> Dataset:
    """Olivetti / ORL faces: X (400, 64, 64) float32 in [0, 1], 40 people x 10 images, ordered by person."""
    path = find_file(OLIVETTI_FILE, data_dir)
    if path is not None:
        with _open(path, ["images", "target"]) as f:
            # sklearn subtracts the minimum (0) and divides by the maximum (242) of the uint8 faces.
            X = f["images"].astype(np.float32) / np.float32(242)
            y = f["target"].astype(np.int64)
    else:

        def fetch():
            from sklearn.datasets import fetch_olivetti_faces

            return fetch_olivetti_faces(shuffle=False)

        bunch = _download(OLIVETTI_FILE, data_dir, "sklearn.datasets.fetch_olivetti_faces", fetch)
        X, y = np.asarray(bunch.images, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)
    return Dataset(
        name="olivetti",
        X=X,
        y=y,
        target_names=np.array([f"s{k + 1}" for k in range(40)]),
        meta={},
        description="Olivetti / ORL faces (AT&T Laboratories Cambridge): 40 people x 10 images, 64x64.",
    )


def load_lfw(data_dir: DataPath | None = None) -> Dataset:
    """LFW people with >= 70 images: X (1288, 50, 37) float32 in [0, 1], 7 people (sklearn's order)."""
    path = find_file(LFW_FILE, data_dir)
    if path is not None:
        with _open(path, ["images", "target", "target_names"]) as f:
            X = f["images"].astype(np.float32)
            y = f["target"].astype(np.int64)
            names = f["target_names"].astype(str)
    else:

        def fetch():
            from sklearn.datasets import fetch_lfw_people

            return fetch_lfw_people(min_faces_per_person=70, resize=0.4)

        what = "sklearn.datasets.fetch_lfw_people(min_faces_per_person=70, resize=0.4)"
        bunch = _download(LFW_FILE, data_dir, what, fetch)
        X, y = np.asarray(bunch.images, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)
        names = np.asarray(bunch.target_names).astype(str)
    return Dataset(
        name="lfw",
        X=X,
        y=y,
        target_names=names,
        meta={},
        description="Labeled Faces in the Wild (UMass Amherst), people with at least 70 images, 50x37 grey.",
    )


def _fetch_abide():
    """ABIDE PCP via nilearn (C-PAC, band-pass filtered, no GSR, HO ROIs, QC'd), as correlations."""
    from nilearn.datasets import fetch_abide_pcp

    data = fetch_abide_pcp(
        pipeline="cpac",
        band_pass_filtering=True,
        global_signal_regression=False,
        derivatives=["rois_ho"],
        quality_checked=True,
    )
    pheno = data.phenotypic
    X = connectivity_from_timeseries(data.rois_ho)
    y = (np.asarray(pheno["DX_GROUP"]) == 1).astype(np.int64)
    meta = {
        "site": np.asarray(pheno["SITE_ID"]).astype(str),
        "sex": np.asarray(pheno["SEX"]).astype(np.int64),
        "age": np.asarray(pheno["AGE_AT_SCAN"]).astype(np.float32),
        "sub_id": np.asarray(pheno["SUB_ID"]).astype(np.int64),
        "file_id": np.asarray(pheno["FILE_ID"]).astype(str),
    }
    return X, y, meta


def load_abide(data_dir: DataPath | None = None) -> Dataset:
    """ABIDE I connectivity: X (871, 111, 111) float32 correlations (symmetric, unit diagonal).

    y = 1 for autism (ASD), 0 for controls; meta holds site, sex (1 male, 2 female), age, sub_id and
    file_id per subject.
    """
    path = find_file(ABIDE_FILE, data_dir)
    if path is not None:
        with _open(path, ["corr_triu", "label", "site", "sex", "age", "sub_id", "file_id"]) as f:
            n_pairs = f["corr_triu"].shape[1]
            n_rois = int(f["n_rois"]) if "n_rois" in f.files else int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
            X = triu_to_matrices(f["corr_triu"], n_rois)
            y = f["label"].astype(np.int64)
            meta = {
                "site": f["site"].astype(str),
                "sex": f["sex"].astype(np.int64),
                "age": f["age"].astype(np.float32),
                "sub_id": f["sub_id"].astype(np.int64),
                "file_id": f["file_id"].astype(str),
            }
    else:
        what = (
            "nilearn.datasets.fetch_abide_pcp(pipeline='cpac', band_pass_filtering=True, "
            "global_signal_regression=False, derivatives=['rois_ho'], quality_checked=True)"
        )
        X, y, meta = _download(ABIDE_FILE, data_dir, what, _fetch_abide)
    return Dataset(
        name="abide",
        X=X,
        y=y,
        target_names=ABIDE_CLASSES.copy(),
        meta=meta,
        description="ABIDE I, PCP C-PAC filt_noglobal, Harvard-Oxford 111 ROIs: Ledoit-Wolf correlation "
        "matrices, autism (1) vs control (0).",
    )


def load_digits(data_dir: DataPath | None = None) -> Dataset:
    """sklearn's bundled 8x8 digits: X (1797, 8, 8) float32 with values 0..16, 10 classes (offline)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return Dataset(
        name="digits",
        X=bunch.images.astype(np.float32),
        y=bunch.target.astype(np.int64),
        target_names=np.asarray(bunch.target_names).astype(str),
        meta={},
        description="UCI optical handwritten digits as bundled with scikit-learn, 8x8, values 0..16.",
    )
