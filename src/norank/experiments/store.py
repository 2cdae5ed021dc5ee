"""What a run folder holds and how it is read back: results.json (written atomically), the 2-D views of
test embeddings (views/), the run's provenance (versions, code revision, machine) and, for `--resume`,
the records of an earlier run that may be kept."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np


def versions() -> dict:
    import sklearn
    import torch

    import norank

    out = {
        "norank": norank.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }
    for mod in ("scipy", "tensorly", "umap", "pyriemann"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # an optional package missing is not an error here
            pass
    return out


def code_revision() -> str | None:
    """The git commit of the norank source tree that runs ("+modified" when src/ differs from it), or None
    outside a git checkout: which code made a run's numbers."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", str(here.parent)],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+modified" if changed else "") if commit else None


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
    }


def differing_setting(meta_a: dict, meta_b: dict, keys) -> str | None:
    """The first of `keys` whose value differs between two runs' meta, or None."""

    def text(meta, key):
        return json.dumps(meta.get(key), sort_keys=True, default=str)

    return next((k for k in keys if text(meta_a, k) != text(meta_b, k)), None)


def previous_records(out: Path, meta: dict, rerun=()) -> list[dict]:
    """Successful records of an earlier run in `out` with the same quick flag and split size.

    When only norank's defaults (or dataset settings) changed, the baselines that do not use them are
    kept and norank, its loss methods and the transformer baseline are run again; when the transformer's own
    settings changed, it runs again. Records of the methods in `rerun` are dropped ("norank" also drops its
    study variants), so they run again."""
    from norank.experiments import methods as M

    path = out / "results.json"
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    key = differing_setting(old["meta"], meta, ("quick", "test_size"))
    if key:
        raise ValueError(
            f"{path} was made with another {key} ({old['meta'].get(key)!r}); resume needs the "
            "same settings: use another --out folder, or drop --resume to start over."
        )
    if differing_setting(old["meta"], meta, ("transformer_settings",)):
        rerun = (*rerun, "transformer")
    records = [r for r in old["records"] if "error" not in r and M.base_method(r["method"]) not in rerun]
    changed = differing_setting(old["meta"], meta, ("norank_defaults", "dataset_settings"))
    if changed:
        records = [r for r in records if not M.uses_norank_settings(r["method"])]
        print(
            f"{path}: norank's {changed} changed since it was written; keeping its {len(records)} runs of "
            "baselines that do not use them, running norank and the transformer again."
        )
    return records


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    tmp.replace(path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    return str(value)


def save_view(out: Path, dataset: str, method: str, xy, y) -> None:
    folder = out / "views"
    folder.mkdir(exist_ok=True)
    np.savez_compressed(folder / f"{dataset}__{method}.npz", xy=np.asarray(xy, np.float32), y=np.asarray(y))


def load_views(out: Path, datasets, methods) -> dict:
    """dataset → method → (xy, y): the 2-D views (`figures.pca2` of the test embedding) saved in out/views/.
    Files of earlier runs that hold the whole embedding `Z` are projected on reading."""
    from norank.experiments.figures import pca2

    views: dict[str, dict] = {}
    for d in datasets:
        for m in methods:
            path = Path(out) / "views" / f"{d}__{m}.npz"
            if path.is_file():
                with np.load(path, allow_pickle=False) as f:
                    xy = f["xy"] if "xy" in f.files else pca2(f["Z"])
                    views.setdefault(d, {})[m] = (xy, f["y"])
    return views
