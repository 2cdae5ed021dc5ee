"""norank.experiments: the protocol (splits fitted on train only), results schema, report, studies, seeds and
publish."""

import csv
import json
from typing import ClassVar

import numpy as np
import pytest
from shared import EVALUATE_KEYS, METHOD_NAMES

from norank.experiments import claims as C
from norank.experiments import methods as M
from norank.experiments import protocol as P
from norank.experiments import report as R
from norank.experiments import run as RUN
from norank.experiments import store
from norank.experiments import tables as T
from norank.experiments.jobs import plan
from norank.experiments.studies import STUDIES
from norank.experiments.studies._base import collapsed_run
from norank.splits import holdout_split

CLASSIFICATION_KEYS = {"knn_accuracy", "accuracy", "balanced_accuracy", "roc_auc"}
FIRST_REPORT_SEED = 1000
N_SAMPLES = 64  # galaxy-hard, 16 per class


class Spy:
    """Wraps a real model and records every array it is fitted on."""

    calls: ClassVar[list[dict]] = []  # shared by every Spy of a run, reset by the fixture

    def __init__(self, name, model):
        self.name, self.model = name, model

    def fit(self, X, y=None):
        Spy.calls.append({"name": self.name, "X": np.array(X, copy=True), "y": None if y is None else np.array(y)})
        self.model.fit(X, y)
        return self

    def transform(self, X):
        return self.model.transform(X)

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)

    @property
    def history_(self):
        return getattr(self.model, "history_", None)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    real_make = M.make_method
    Spy.calls = []
    mp.setattr(M, "make_method", lambda name, *a, **k: Spy(name, real_make(name, *a, **k)))
    mp.setattr(M, "QUICK_EPOCHS", 3)
    mp.setattr(RUN, "QUICK_MAX_SAMPLES", N_SAMPLES)
    out = tmp_path_factory.mktemp("run")
    results = RUN.run_reproduce(
        out,
        datasets=["galaxy-hard"],
        methods=["norank", "pca"],
        seeds=1,
        protocol="both",
        quick=True,
        studies=["none"],
        command="pytest",
    )
    mp.undo()
    data = RUN.load_dataset("galaxy-hard", max_samples=N_SAMPLES)
    return out, results, data, list(Spy.calls)


def test_results_json_schema(tiny_run):
    out, results, _, _ = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["records"] == json.loads(json.dumps(results["records"]))
    meta = on_disk["meta"]
    for key in ("versions", "machine", "command", "date", "quick", "seeds"):
        assert key in meta
    for lib in ("norank", "torch", "numpy", "sklearn"):
        assert lib in meta["versions"]
    assert meta["machine"]["cpu_count"] >= 1 and meta["command"] == "pytest" and meta["seeds"] == [FIRST_REPORT_SEED]
    assert meta["seed_kinds"] == {str(FIRST_REPORT_SEED): "report"}
    records = on_disk["records"]
    assert {(r["method"], r["protocol"]) for r in records} == {
        ("norank", "heldout"),
        ("norank", "insample"),
        ("pca", "heldout"),
        ("pca", "insample"),
    }
    for r in records:
        assert "error" not in r
        assert r["dataset"] == "galaxy-hard" and r["method"] in METHOD_NAMES and r["seed"] == FIRST_REPORT_SEED
        assert r["protocol"] in ("heldout", "insample") and r["fit_seconds"] > 0
        expected = EVALUATE_KEYS | (CLASSIFICATION_KEYS if r["protocol"] == "heldout" else set())
        assert set(r["metrics"]) == expected
        assert all(v is None or np.isfinite(v) for v in r["metrics"].values())
        n_train = N_SAMPLES - int(np.ceil(0.3 * N_SAMPLES)) if r["protocol"] == "heldout" else N_SAMPLES
        n_test = r["n_test"] if r["protocol"] == "heldout" else 0
        assert r["n_train"] == n_train and r["n_train"] + n_test == N_SAMPLES
    norank = next(r for r in records if r["method"] == "norank" and r["protocol"] == "heldout")
    assert len(norank["history"]["loss"]) == 3  # the quick epoch cap reached the estimator


def test_csv_one_row_per_record(tiny_run):
    out, results, _, _ = tiny_run
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(results["records"])
    assert {"dataset", "method", "protocol", "seed", "fit_seconds", "silhouette", "knn_accuracy"} <= set(rows[0])
    for row, rec in zip(rows, results["records"], strict=True):
        assert row["method"] == rec["method"] and row["protocol"] == rec["protocol"]
        assert float(row["silhouette"]) == pytest.approx(rec["metrics"]["silhouette"])


def test_report_has_groups_and_figures(tiny_run):
    out, _, _, _ = tiny_run
    text = (out / "report.md").read_text()
    assert "Unsupervised (label-blind)" in text and "Supervised (trained with labels)" in text
    assert "*norank (supervised, reference)*" in text and "**" in text
    assert "#### galaxy-hard: held-out" in text and "#### galaxy-hard: in-sample" in text
    assert f"seeds [{FIRST_REPORT_SEED}] are report seeds" in text and "Tuning seeds are 0-999" in text
    assert "| acc. | bal. acc. | AUC |" in text
    assert (out / "figures" / "views_galaxy-hard.png").stat().st_size > 1000
    assert (out / "figures" / "bars_galaxy-hard.png").stat().st_size > 1000


def test_views_keep_the_2d_projection_of_the_test_embedding(tiny_run, tmp_path):
    from norank.experiments.figures import pca2

    out, _, data, _ = tiny_run
    n_test = len(holdout_split(data["y"], 0.3, FIRST_REPORT_SEED)[1])
    views = store.load_views(out, ["galaxy-hard"], ["norank", "pca"])
    for xy, y in views["galaxy-hard"].values():
        assert xy.shape == (n_test, 2) and len(y) == n_test
    Z = np.random.default_rng(0).normal(size=(30, 5))  # a file of an earlier run: the whole embedding
    (tmp_path / "views").mkdir()
    np.savez(tmp_path / "views" / "digits__pca.npz", Z=Z, y=np.arange(30) % 3)
    xy, _ = store.load_views(tmp_path, ["digits"], ["pca"])["digits"]["pca"]
    np.testing.assert_allclose(xy, pca2(Z))
    assert np.allclose(np.cov(xy.T)[0, 1], 0, atol=1e-9)  # principal axes are uncorrelated


def test_every_method_fitted_on_train_only(tiny_run):
    _, results, data, calls = tiny_run
    X, y = data["X"], data["y"]
    train, test = holdout_split(y, 0.3, FIRST_REPORT_SEED)
    rows = {row.tobytes(): i for i, row in enumerate(X)}
    heldout = [c for c in calls if len(c["X"]) < len(X)]
    insample = [c for c in calls if len(c["X"]) == len(X)]
    assert sorted(c["name"] for c in heldout) == ["norank", "pca"]
    assert sorted(c["name"] for c in insample) == ["norank", "pca"]
    for c in heldout:
        seen = sorted(rows[r.tobytes()] for r in c["X"])
        assert seen == train.tolist() and not set(seen) & set(test.tolist())
    labels = {c["name"]: c["y"] for c in calls}
    assert labels["pca"] is None  # label-blind methods never see y
    assert labels["norank"] is not None


def test_site_splits_hold_out_every_site_large_enough():
    sites = np.array(["A"] * 5 + ["B"] * 9 + ["C"] * 2 + ["D"] * 7)
    splits = P.site_splits(sites, min_subjects=5)
    assert [s for s, _, _ in splits] == ["B", "D", "A"]  # largest first, C has fewer than 5
    for site, train, test in splits:
        assert set(sites[test]) == {site} and site not in set(sites[train])
        assert len(train) + len(test) == len(sites)


def test_effective_rank_detects_collapse():
    rng = np.random.default_rng(0)
    line = np.outer(rng.normal(size=200), rng.normal(size=16))
    assert P.effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    assert P.effective_rank(rng.normal(size=(2000, 16))) > 14


def _rec(method, sil, db, seed=0):
    return {
        "dataset": "d",
        "method": method,
        "protocol": "heldout",
        "seed": seed,
        "split": "stratified",
        "metrics": {"silhouette": sil, "davies_bouldin": db},
        "fit_seconds": 1.0,
    }


def test_report_marks_best_per_column_within_group():
    recs = [
        _rec("pca", 0.20, 1.5),
        _rec("pca", 0.30, 1.7, seed=1),
        _rec("raw", 0.10, 1.2),
        _rec("lda", 0.40, 2.0),
        _rec("norank", 0.90, 0.5),
    ]
    text = R.grouped_tables(recs, ["silhouette", "davies_bouldin"])
    unsup, sup = text.split("Supervised (trained with labels)")
    assert "| pca | **0.250 ± 0.071** | 1.600 ± 0.141 |" in unsup
    assert "| raw | 0.100 | **1.200** |" in unsup  # Davies–Bouldin: lower is better
    assert "| *norank (supervised, reference)* | 0.900 | 0.500 |" in unsup  # reference row never bold
    assert "| norank | **0.900** | **0.500** |" in sup and "| lda | 0.400 | 2.000 |" in sup


def test_study_variant_equal_to_main_reuses_config():
    default = M.norank_defaults()["class_sampling"]
    same = M.config_key("norank_x", "digits", False, {"class_sampling": default})
    assert same == M.config_key("norank", "digits", False, {})
    other = "sqrt" if default != "sqrt" else "uniform"
    assert M.config_key("norank_x", "digits", False, {"class_sampling": other}) != same


def test_transformer_trains_with_its_own_settings_never_the_dataset_settings(monkeypatch):
    from norank.baselines import make_baseline
    from norank.baselines import transformer as T

    monkeypatch.setitem(M.DATASET_SETTINGS, "toy", ({"dropout": 0.3, "pca_components": 5}, "a test"))
    monkeypatch.setattr(T, "SETTINGS", {"learning_rate": 3e-4, "epochs": 60})
    norank = M.make_method("norank", 0, "toy")
    assert norank.pca_components == 5 and norank.dropout == 0.3
    assert M.make_method("transformer", 0, "toy").params == {"learning_rate": 3e-4, "epochs": 60}
    assert M.method_settings("transformer", "toy") == {"learning_rate": 3e-4, "epochs": 60}
    # Its own dataset settings go over its own settings, for that dataset only.
    monkeypatch.setitem(M.TRANSFORMER_DATASET_SETTINGS, "toy", ({"epochs": 80, "dropout": 0.2}, "a test"))
    assert M.make_method("transformer", 0, "toy").params == {"learning_rate": 3e-4, "epochs": 80, "dropout": 0.2}
    assert M.make_method("transformer", 0, "other").params == {"learning_rate": 3e-4, "epochs": 60}
    monkeypatch.delitem(M.TRANSFORMER_DATASET_SETTINGS, "toy")
    assert M.make_method("transformer", 0, "toy", quick=True).params["epochs"] == M.QUICK_EPOCHS
    assert M.make_method("transformer", 0, "toy", overrides={"dropout": 0.1}).params["dropout"] == 0.1
    assert ("learning_rate", "0.0003") in M.config_key("transformer", "toy", False, {})[1]
    assert ("pca_components", "None") in M.config_key("transformer", "toy", False, {})[1]
    assert M.method_settings("pca", "toy") is None
    # make_baseline's keywords go over the baseline's own settings; no keywords leave params None (= SETTINGS).
    assert make_baseline("transformer", epochs=5).params == {"learning_rate": 3e-4, "epochs": 5}
    assert make_baseline("transformer").params is None


def test_bad_arguments_raise_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="protocol"):
        RUN.run_reproduce(tmp_path, datasets=["digits"], protocol="both-ish")
    with pytest.raises(ValueError, match="unknown method"):
        RUN.run_reproduce(tmp_path, datasets=["digits"], methods=["pcaa"])
    with pytest.raises(ValueError, match="unknown dataset"):
        RUN.run_reproduce(tmp_path, datasets=["mnist"])
    with pytest.raises(ValueError, match="unknown study"):
        RUN.run_reproduce(tmp_path, datasets=["digits"], studies=["ablations"])
    with pytest.raises(ValueError, match="seeds"):
        RUN.run_reproduce(tmp_path, datasets=["digits"], seeds=0)
    with pytest.raises(ValueError, match="study_seeds"):
        RUN.run_reproduce(tmp_path, datasets=["digits"], study_seeds=0)


def test_publish_writes_results_page(tiny_run, tmp_path):
    from norank.experiments.publish import main

    out, _, _, _ = tiny_run
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "views_stale.png").write_bytes(b"old")
    (tmp_path / "figures" / "readme_picture.png").write_bytes(b"keep")
    assert main([str(out), str(tmp_path)]) == 0
    assert not (tmp_path / "figures" / "views_stale.png").exists()
    assert (tmp_path / "figures" / "readme_picture.png").read_bytes() == b"keep"
    text = (tmp_path / "results.md").read_text()
    assert "## Paper claims" in text and "| Silhouette, LFW | norank | 0.9752 |" in text
    assert "(figures/views_galaxy-hard.png)" in text
    assert (tmp_path / "figures" / "views_galaxy-hard.png").is_file()
    assert main([str(tmp_path / "missing"), str(tmp_path)]) == 2


def test_per_class_recall():
    recall = P.per_class_recall([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], np.array(["a", "b", "c"]))
    assert recall == pytest.approx({"a": 0.5, "b": 2 / 3, "c": 1.0})


def test_claims_table_reads_both_protocols():
    def rec(method, protocol, ari, sil, seed=0):
        return {
            "dataset": "abide",
            "method": method,
            "protocol": protocol,
            "seed": seed,
            "split": "stratified" if protocol == "heldout" else "all",
            "metrics": {"ari": ari, "silhouette": sil},
            "fit_seconds": 1.0,
        }

    recs = [
        rec("norank", "insample", 0.9, 0.8),
        rec("norank", "heldout", 0.10, 0.05),
        rec("norank", "heldout", 0.20, 0.07, seed=1),
        rec("cp_r5", "insample", 0.01, 0.0),
        rec("tucker_r10", "insample", 0.015, 0.0),
        rec("cp_r5", "heldout", -0.01, 0.0),
        rec("lda", "heldout", 0.12, 0.09),
        {**rec("norank_collapse", "insample", 0.95, 0.9951), "study": "collapse", "variant": "collapse"},
    ]
    text = C.claims_table({"records": recs})
    assert "| Silhouette, ABIDE | norank | 0.9932 | 0.800 | 0.9951 | 0.060 ± 0.014 | 0.090 (lda) |" in text
    assert (
        "| ARI, ABIDE, CP/Tucker R ∈ {5,10,20} | cp/tucker | < 0.02 | max 0.015 (tucker_r10) | – "
        "| max -0.010 (cp_r5) | 0.120 (lda) |"
    ) in text


def test_table_bolds_each_family_on_its_own():
    rows = [
        ("cp_r5", {"ari": (0.01, 0, 1)}),
        ("cp_r10", {"ari": (0.02, 0, 1)}),
        ("norank_dim16", {"ari": (0.50, 0, 1)}),
        ("norank_dim32", {"ari": (0.40, 0, 1)}),
    ]
    text = T.table(rows, ["ari"], bold_rows=[{"cp_r5", "cp_r10"}, {"norank_dim16", "norank_dim32"}])
    assert "| cp_r10 | **0.020** |" in text and "| cp_r5 | 0.010 |" in text
    assert "| norank_dim16 | **0.500** |" in text and "| norank_dim32 | 0.400 |" in text


def test_collapse_criterion_uses_spread_and_effective_rank():
    def rec(spread, erank):
        return {"metrics": {}, "diagnostics": {"final_embedding_spread": spread, "effective_rank": erank}}

    assert collapsed_run(rec(0.03, 50.0))  # shrank to a point with isotropic residual noise
    assert collapsed_run(rec(1.3, 1.2))  # spread out along a line
    assert not collapsed_run(rec(1.3, 30.0))


def test_collapse_study_runs_both_protocols_and_reuses_the_defaults():
    from norank.experiments import studies as S

    jobs = S.study_jobs(
        "collapse", ["olivetti", "digits"], [0, 1], set(M.all_methods()), protocols=["heldout", "insample"]
    )
    assert {j.dataset for j in jobs} == {"olivetti"}  # its preferred set; digits is not one
    insample = [j for j in jobs if j.protocol == "insample"]
    assert {(j.variant, j.seed, j.split) for j in insample} == {("defaults", 0, "all"), ("collapse", 0, "all")}
    assert len([j for j in jobs if j.protocol == "heldout"]) == 4
    defaults = next(j for j in jobs if j.variant == "defaults")
    default_key = M.config_key("norank", "olivetti", False, {})
    assert M.config_key(defaults.method, "olivetti", False, defaults.overrides) == default_key
    collapse = next(j for j in jobs if j.variant == "collapse")
    assert collapse.overrides["margin"] == 2.0 and collapse.overrides["distance"] == "euclidean"
    only_insample = S.study_jobs("collapse", ["olivetti"], [0, 1], set(), protocols=["insample"])
    assert {j.protocol for j in only_insample} == {"insample"} and len(only_insample) == 2


def test_encoder_study_skips_non_image_data():
    from norank.experiments import studies as S

    jobs = S.study_jobs("encoder", ["abide", "crystal-hard"], [0], set(M.all_methods()))
    assert {(j.dataset, j.overrides["encoder"]) for j in jobs} == {("crystal-hard", e) for e in ("auto", "mlp", "conv")}
    assert S.study_jobs("encoder", ["abide"], [0], set(M.all_methods())) == []


def test_pca_study_covers_both_kinds_of_split_on_abide_only():
    from norank.experiments import studies as S
    from norank.experiments.studies.pca import PCA_COMPONENTS

    sites = {"abide": ["NYU", "UM_1"]}
    jobs = S.study_jobs("pca", ["abide", "digits"], [0, 1], set(M.all_methods()), sites=sites)
    variants = ["features", *(f"pca{k}" for k in PCA_COMPONENTS)]
    assert {(j.variant, j.seed, j.split) for j in jobs} == {
        (v, s, split) for v in variants for s in (0, 1) for split in ("stratified", "site:NYU", "site:UM_1")
    }
    assert {j.dataset for j in jobs} == {"abide"} and len(jobs) == len(variants) * 2 * 3
    features = next(j for j in jobs if j.variant == "features")
    default_key = M.config_key("norank", "abide", False, {})
    assert M.config_key(features.method, "abide", False, features.overrides) == default_key
    assert {j.overrides.get("pca_components") for j in jobs} == {None, *PCA_COMPONENTS}
    assert S.study_jobs("pca", ["digits"], [0], set(M.all_methods()), sites={}) == []


def test_pca_section_separates_random_splits_from_left_out_sites():
    def rec(variant, split, acc, seed=0):
        return {
            "dataset": "abide",
            "method": f"norank_{variant}",
            "protocol": "heldout",
            "seed": seed,
            "split": split,
            "study": "pca",
            "variant": variant,
            "metrics": {"knn_accuracy": acc},
            "fit_seconds": 1.0,
        }

    recs = [
        rec("features", "stratified", 0.64),
        rec("pca200", "stratified", 0.66),
        rec("features", "site:NYU", 0.70),
        rec("features", "site:USM", 0.78),
        rec("pca200", "site:NYU", 0.68),
        rec("pca200", "site:USM", 0.74),
    ]
    text = STUDIES["pca"].section(recs)
    assert "| pca200, 70/30 |" in text and "**0.660**" in text.split("| pca200, 70/30 |")[1].split("\n")[0]
    assert "| features, leave-site-out |" in text
    assert "**0.740 ± 0.057**" in text.split("| features, leave-site-out |")[1].split("\n")[0]  # (0.70 + 0.78) / 2


def test_collapse_and_encoder_sections_render():
    def rec(variant, protocol, sil, seed=0, study="collapse"):
        return {
            "dataset": "olivetti",
            "method": f"norank_{variant}",
            "protocol": protocol,
            "seed": seed,
            "split": "all" if protocol == "insample" else "stratified",
            "study": study,
            "variant": variant,
            "metrics": {"silhouette": sil, "ari": 0.5},
            "fit_seconds": 2.0,
        }

    recs = [
        rec("defaults", "insample", 0.59),
        rec("collapse", "insample", 0.983),
        rec("defaults", "heldout", 0.39),
        rec("collapse", "heldout", 0.41),
    ]
    text = STUDIES["collapse"].section(recs)
    assert "| collapse, in-sample | **0.983** |" in text and "| defaults, in-sample | 0.590 |" in text
    assert "| collapse, held-out | **0.410** |" in text
    auto = [
        {**rec("auto", "heldout", 0.6, seed=s, study="encoder"), "diagnostics": {"encoder": e}}
        for s, e in enumerate(["conv", "conv", "mlp"])
    ]
    enc = STUDIES["encoder"].section(
        [rec("mlp", "heldout", 0.3, study="encoder"), rec("conv", "heldout", 0.6, study="encoder"), *auto]
    )
    assert "| conv | **0.600** |" in enc and "| mlp | 0.300 |" in enc
    assert "`auto` chose conv in 2 seed(s), mlp in 1 seed(s)" in enc


def test_resume_keeps_finished_runs_and_runs_the_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "QUICK_EPOCHS", 2)
    monkeypatch.setattr(RUN, "QUICK_MAX_SAMPLES", 48)
    args = dict(datasets=["galaxy-hard"], seeds=1, protocol="heldout", quick=True, studies=["none"])
    first = RUN.run_reproduce(tmp_path, methods=["pca"], **args)
    assert (tmp_path / "views" / "galaxy-hard__pca.npz").is_file()
    fitted = []
    real_make = M.make_method
    monkeypatch.setattr(M, "make_method", lambda name, *a, **k: fitted.append(name) or real_make(name, *a, **k))
    second = RUN.run_reproduce(tmp_path, methods=["pca", "lda"], resume=True, **args)
    assert fitted == ["lda"]  # pca came from the first run
    pca = [r for r in second["records"] if r["method"] == "pca"]
    assert pca == [r for r in first["records"] if r["method"] == "pca"]
    assert second["meta"]["resumed_records"] == 1
    assert (tmp_path / "figures" / "views_galaxy-hard.png").is_file()
    monkeypatch.setattr(M, "QUICK_EPOCHS", 2)
    with pytest.raises(ValueError, match="quick"):
        RUN.run_reproduce(tmp_path, methods=["pca"], resume=True, **{**args, "quick": False, "seeds": 1})


def _run_then_edit(out, monkeypatch, methods, edit) -> dict:
    """A tiny held-out run in `out`, then its results.json rewritten by `edit(results)`; the run's arguments."""
    monkeypatch.setattr(M, "QUICK_EPOCHS", 2)
    monkeypatch.setattr(RUN, "QUICK_MAX_SAMPLES", 48)
    args = dict(datasets=["galaxy-hard"], seeds=1, protocol="heldout", quick=True, studies=["none"], methods=methods)
    RUN.run_reproduce(out, **args)
    path = out / "results.json"
    old = json.loads(path.read_text())
    edit(old)
    path.write_text(json.dumps(old))
    return args


def _other_norank_defaults(results):
    results["meta"]["norank_defaults"]["margin"] = 123.0  # as if written under other defaults


def _other_transformer_settings(results):
    results["meta"]["transformer_settings"] = {"all": {"learning_rate": 123.0}}  # as if written under others


@pytest.mark.parametrize("edit", [_other_norank_defaults, _other_transformer_settings])
def test_resume_after_a_settings_change_runs_only_the_transformer_again(tmp_path, monkeypatch, edit):
    """norank's defaults (the transformer builds on them) or the transformer's own settings changed: the
    independent baseline is kept."""
    args = _run_then_edit(tmp_path, monkeypatch, ["pca", "transformer"], edit)
    fitted = []
    real_make = M.make_method
    monkeypatch.setattr(M, "make_method", lambda name, *a, **k: fitted.append(name) or real_make(name, *a, **k))
    again = RUN.run_reproduce(tmp_path, resume=True, **args)
    assert fitted == ["transformer"]
    assert again["meta"]["resumed_records"] == 1
    assert again["meta"]["transformer_settings"]["all"] == M.transformer_settings()


def test_interim_writes_of_a_resumed_run_keep_the_records_not_reached_yet(tmp_path, monkeypatch):
    def drop_first_job(results):
        results["records"] = [r for r in results["records"] if r["method"] != "pca"]

    args = _run_then_edit(tmp_path, monkeypatch, ["pca", "lda"], drop_first_job)
    snapshots = []
    real_write = store.write_json
    monkeypatch.setattr(RUN, "WRITE_INTERVAL_S", -1)
    monkeypatch.setattr(
        store, "write_json", lambda p, obj: snapshots.append(json.loads(json.dumps(obj))) or real_write(p, obj)
    )
    RUN.run_reproduce(tmp_path, resume=True, **args)
    first = snapshots[0]  # written right after pca ran, before the loop reached lda
    assert sorted(r["method"] for r in first["records"]) == ["lda", "pca"]


def test_publish_merges_runs(tiny_run, tmp_path):
    from norank.experiments.publish import main, merge

    out, results, _, _ = tiny_run
    other = {
        "meta": {**results["meta"], "datasets": ["digits"], "descriptions": {"digits": "digits"}},
        "records": [{**r, "dataset": "digits"} for r in results["records"]],
    }
    merged = merge([results, other])
    assert merged["meta"]["datasets"] == ["galaxy-hard", "digits"]
    assert len(merged["records"]) == 2 * len(results["records"])
    with pytest.raises(ValueError, match="quick"):
        merge([results, {**other, "meta": {**other["meta"], "quick": not results["meta"]["quick"]}}])
    assert main([str(out), str(out), str(tmp_path)]) == 0
    assert "galaxy-hard" in (tmp_path / "results.md").read_text()


def test_merged_runs_with_different_study_seeds_name_them_per_dataset(tiny_run):
    from norank.experiments.publish import merge

    _, results, _, _ = tiny_run
    meta = {**results["meta"], "seeds": [0, 1, 2, 3, 4], "studies": ["rank"]}
    a = {"meta": {**meta, "datasets": ["olivetti", "lfw"], "study_seeds": [0, 1, 2]}, "records": []}
    b = {"meta": {**meta, "datasets": ["abide"], "study_seeds": [0, 1, 2, 3, 4]}, "records": []}
    merged = merge([a, b])
    assert merged["meta"]["study_seeds"] == {"olivetti": [0, 1, 2], "lfw": [0, 1, 2], "abide": [0, 1, 2, 3, 4]}
    text = R.header(merged)
    assert "olivetti, lfw: [0, 1, 2]; abide: [0, 1, 2, 3, 4]" in text
    assert merge([a, {**a, "meta": {**a["meta"], "datasets": ["digits"]}}])["meta"]["study_seeds"] == [0, 1, 2]


def test_header_states_the_transformers_own_settings_and_refuses_to_merge_others(tiny_run):
    from norank.experiments.publish import merge

    _, results, _, _ = tiny_run
    own = {"all": {"learning_rate": 0.003}, "abide": {"settings": {"dropout": 0.5}, "reason": "small n"}}
    meta = {**results["meta"], "datasets": ["olivetti", "abide"], "transformer_settings": own}
    text = R.header({"meta": meta, "records": []})
    assert "transformer baseline trains with settings of its own" in text and "{'learning_rate': 0.003}" in text
    assert "- abide: {'dropout': 0.5}: small n." in text
    alone = R.header({"meta": {**meta, "datasets": ["olivetti"]}, "records": []})
    assert "{'learning_rate': 0.003}." in alone and "- abide" not in alone
    other = {**meta, "transformer_settings": {"all": {"learning_rate": 0.001}}}
    with pytest.raises(ValueError, match="transformer_settings"):
        merge([{"meta": meta, "records": []}, {"meta": other, "records": []}])


def test_main_tables_compare_methods_on_the_same_seeds():
    recs = [{"method": m, "seed": s} for m in ("norank", "lda") for s in (0, 1)] + [{"method": "norank", "seed": 2}]
    kept, dropped = R.complete_seeds(recs)
    assert dropped == [2] and sorted({r["seed"] for r in kept}) == [0, 1] and len(kept) == 4


def test_plan_puts_every_main_seed_before_the_studies_and_caps_their_seeds():
    jobs = plan(
        ["olivetti"],
        ["norank", "pca"],
        [0, 1, 2, 3, 4],
        ["heldout"],
        ["ablation", "mining"],
        {},
        quick=False,
        study_seeds=2,
    )
    is_study = [j.study != "main" for j in jobs]
    first_study = is_study.index(True)
    assert not any(is_study[:first_study]) and all(is_study[first_study:])  # main table first, then studies
    assert [j.seed for j in jobs[:first_study]] == sorted(j.seed for j in jobs[:first_study])
    assert {j.seed for j in jobs[:first_study]} == {0, 1, 2, 3, 4}
    assert {j.seed for j in jobs[first_study:]} == {0, 1}
    every_seed = plan(["olivetti"], ["norank"], [0, 1, 2], ["heldout"], ["mining"], {}, quick=False)
    assert {j.seed for j in every_seed if j.study == "mining"} == {0, 1, 2}


def test_resume_runs_the_methods_named_in_rerun_again(tmp_path, monkeypatch):
    args = _run_then_edit(tmp_path, monkeypatch, ["pca", "lda"], lambda results: None)
    fitted = []
    real_make = M.make_method
    monkeypatch.setattr(M, "make_method", lambda name, *a, **k: fitted.append(name) or real_make(name, *a, **k))
    again = RUN.run_reproduce(tmp_path, resume=True, rerun=["lda"], **args)
    assert fitted == ["lda"] and again["meta"]["resumed_records"] == 1
    with pytest.raises(ValueError, match="resume"):
        RUN.run_reproduce(tmp_path, rerun=["lda"], **args)
    with pytest.raises(ValueError, match="unknown method"):
        RUN.run_reproduce(tmp_path, resume=True, rerun=["ldaa"], **args)


def test_meta_records_the_code_revision(tiny_run):
    _, results, _, _ = tiny_run
    import subprocess
    from pathlib import Path

    revision = results["meta"]["code_revision"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(RUN.__file__).parent, capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the commit the source tree is at
        assert revision.split("+")[0] == head.stdout.strip()
    else:
        assert revision is None


# -- seeds -----------------------------------------------------------------------------------------------
def test_report_seeds_by_count_and_explicit_tuning_seeds():
    from norank.experiments import seeds as SEEDS

    assert SEEDS.resolve(3) == [1000, 1001, 1002] and SEEDS.resolve([0, 150, 999]) == [0, 150, 999]
    for bad in (0, 6, [5000], [1, 1], [], "3", [True]):
        with pytest.raises(ValueError, match="seeds"):
            SEEDS.resolve(bad)
    assert [SEEDS.kind(s) for s in (0, 199, 1000, 1004)] == ["tuning", "tuning", "report", "report"]
    text = SEEDS.describe([1001, 3, 1000])
    assert "seeds [1000, 1001] are report seeds" in text and "seeds [3] are tuning seeds" in text
    with pytest.raises(ValueError, match="report seeds"):
        SEEDS.refuse_report_seeds([5, 1002], "a tuner")


def test_tune_defaults_refuses_report_seeds(capsys):
    from benchmarks import tune_defaults as TD

    assert TD.parse_seeds("3") == (0, 1, 2) and TD.parse_seeds("100-102") == (100, 101, 102)
    assert TD.parse_seeds("7,100") == (7, 100)
    with pytest.raises(ValueError, match="report seeds"):
        TD.parse_seeds("998-1001")
    with pytest.raises(ValueError, match="report seeds"):
        TD.run("digits", {}, seeds=(1000,))  # refused before any data loads or fit runs
    assert TD.main(["digits", "{}", "1003"]) == 2 and "report seeds" in capsys.readouterr().err


# -- classification scores -------------------------------------------------------------------------------
def _blobs(n_classes, seed=0, n=240):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    Z = rng.normal(size=(n, 5)) + 0.9 * np.eye(5)[y % 5] * (1 + y // 5)[:, None]
    return Z, y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_probe_scores_match_a_scikit_learn_pipeline(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from norank.experiments.classify import probe_scores

    Z, y = _blobs(n_classes)
    got = probe_scores(Z[:160], y[:160], Z[160:], y[160:], random_state=0)
    oracle = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(Z[:160], y[:160])
    proba, pred = oracle.predict_proba(Z[160:]), oracle.predict(Z[160:])
    auc = (
        roc_auc_score(y[160:], proba[:, 1])
        if n_classes == 2
        else roc_auc_score(y[160:], proba, multi_class="ovr", average="macro")
    )
    assert got["accuracy"] == pytest.approx(np.mean(pred == y[160:]))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[160:], pred))
    assert got["roc_auc"] == pytest.approx(auc)


def test_decision_function_scores_and_a_class_missing_from_the_test_part():
    from sklearn.metrics import roc_auc_score
    from sklearn.svm import LinearSVC

    from norank.experiments.classify import own_scores, roc_auc

    Z, y = _blobs(2)
    svc = LinearSVC().fit(Z[:160], y[:160])
    got = own_scores(svc, Z[160:], y[160:])
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y[160:], svc.decision_function(Z[160:])))
    scores = np.random.default_rng(1).random((6, 3))
    y3 = np.array([0, 0, 1, 1, 0, 1])  # class 2 absent: macro over the classes present
    expected = np.mean([roc_auc_score(y3 == c, scores[:, c]) for c in (0, 1)])
    assert roc_auc(y3, scores, np.array([0, 1, 2])) == pytest.approx(expected)
    assert roc_auc(np.zeros(4, int), np.random.default_rng(0).random((4, 2)), np.array([0, 1])) is None


class _Predictor:
    """Embeds to pure noise but predicts the label hidden in column 0: only its own predictions score well."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X)[:, 1:]

    def predict(self, X):
        return np.asarray(X)[:, 0].astype(int)

    def decision_function(self, X):
        return np.asarray(X)[:, 0] - 0.5


def test_a_predicting_method_is_scored_on_its_own_predictions():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    X = np.column_stack([y, rng.normal(size=(120, 4))]).astype(np.float32)
    train, test = holdout_split(y, 0.3, 0)
    own = P.score(_Predictor(), X, y, train, test, "heldout", True, 0, predicts=True).metrics
    probe = P.score(_Predictor(), X, y, train, test, "heldout", True, 0, predicts=False).metrics
    assert own["accuracy"] == own["balanced_accuracy"] == own["roc_auc"] == 1.0
    assert probe["accuracy"] < 0.8  # a probe on the noise embedding


# -- leave-site-out ----------------------------------------------------------------------------------------
ABIDE_SITE_COUNTS = {
    "NYU": 172,
    "UM_1": 86,
    "USM": 67,
    "UCLA_1": 64,
    "PITT": 50,
    "MAX_MUN": 46,
    "TRINITY": 44,
    "YALE": 41,
    "UM_2": 34,
    "KKI": 33,
    "CMU": 11,
}


def test_every_method_leaves_out_every_site_with_40_subjects():
    from norank.experiments.jobs import main_jobs

    sites = np.repeat(list(ABIDE_SITE_COUNTS), list(ABIDE_SITE_COUNTS.values()))
    names = [s for s, _, _ in P.site_splits(sites)]
    assert names == ["NYU", "UM_1", "USM", "UCLA_1", "PITT", "MAX_MUN", "TRINITY", "YALE"]
    jobs = main_jobs(
        ["abide"], ["norank", "pca", "tangent_logistic"], [1000, 1001], ["heldout"], {"abide": names}, spd={"abide"}
    )
    for method in ("norank", "pca", "tangent_logistic"):
        assert sorted(j.split for j in jobs if j.method == method and j.split != "stratified") == sorted(
            f"site:{s}" for s in names
        )
    no_spd = main_jobs(["digits"], ["pca", "tangent_logistic"], [1000], ["heldout"], {})
    assert {j.method for j in no_spd} == {"pca"}  # SPD-only methods skip data that are not SPD matrices


def test_site_comparison_puts_leave_site_out_beside_the_random_splits():
    def rec(method, split, acc, seed=1000):
        return {
            "dataset": "abide",
            "method": method,
            "protocol": "heldout",
            "seed": seed,
            "split": split,
            "metrics": {"accuracy": acc, "roc_auc": acc + 0.05},
            "fit_seconds": 1.0,
        }

    recs = [
        rec("norank", "stratified", 0.64),
        rec("norank", "stratified", 0.66, 1001),
        rec("norank", "site:NYU", 0.7),
        rec("norank", "site:USM", 0.6),
        rec("tangent_logistic", "stratified", 0.65),
        rec("tangent_logistic", "stratified", 0.65, 1001),
        rec("tangent_logistic", "site:NYU", 0.72),
        rec("tangent_logistic", "site:USM", 0.66),
    ]
    text = R.site_comparison(recs, "abide")
    assert "over the 2 left-out sites" in text and "| acc., 70/30 |" in text and "| acc., sites |" in text
    row = next(line for line in text.splitlines() if line.startswith("| tangent_logistic |"))
    assert "0.650 ± 0.000" in row and "**0.690 ± 0.042**" in row  # sites: mean ± std over the two sites
    assert R.site_comparison([r for r in recs if r["split"] == "stratified"], "abide") == ""


# -- registries --------------------------------------------------------------------------------------------
def test_method_registry_holds_every_design_name_in_its_group():
    from norank.datasets import NAMES

    registry = M.registry()
    losses = {f"norank_{loss}" for loss in ("supcon", "multi_similarity", "arcface", "prototypical", "proxy_anchor")}
    assert METHOD_NAMES | losses | {"tangent_logistic", "tangent_svc"} == set(registry)
    assert all(M.is_supervised(m) for m in losses | {"tangent_logistic", "tangent_svc", "lda", "norank"})
    assert not any(M.is_supervised(m) for m in ("pca", "umap", "dec", "cp_r5"))
    assert M.predicts("tangent_svc") and not M.predicts("lda")
    assert M.method_settings("norank_supcon", "abide") == {"dropout": 0.5, "loss": "supcon"}
    assert M.config_key("norank_supcon", "abide", False, {}) != M.config_key("norank", "abide", False, {})
    assert M.config_key("norank_x", "abide", False, {"loss": "supcon"}) == M.config_key(
        "norank_supcon", "abide", False, {}
    )
    assert M.base_method("norank_supcon") == "norank_supcon" and M.base_method("norank_dim32") == "norank"
    assert RUN.ALL_DATASETS is NAMES  # dataset names are read from norank.datasets, not retyped


def test_each_study_is_one_object_with_its_letter_jobs_and_section():
    from norank.experiments import studies as S

    assert [S.title(n)[:2] for n in S.STUDIES] == [f"{c}." for c in "bcdefghijk"]
    for name, study in S.STUDIES.items():
        assert study.name == name and callable(study.jobs) and callable(study.section)
        assert study.section([]) == "" or study.section([]).strip()  # renders without records
    grid = S.study_jobs("sensitivity", ["digits", "lfw"], [0, 1], set(M.all_methods()))
    assert {j.dataset for j in grid} == {"lfw"} and len(grid) == 27 * 2
    default = next(j for j in grid if j.overrides == {"margin": 2.0, "diversity_weight": 0.0, "uniformity_weight": 0.0})
    assert M.config_key(default.method, "lfw", False, default.overrides) == M.config_key("norank", "lfw", False, {})
    timed = S.study_jobs(
        "runtime", ["digits", "abide"], [1000, 1001], set(), methods=["pca", "tangent_svc"], spd={"abide"}
    )
    assert {(j.dataset, j.method, j.seed, j.threads) for j in timed} == {
        ("digits", "pca", 1000, 1),
        ("abide", "pca", 1000, 1),
        ("abide", "tangent_svc", 1000, 1),
    }


def test_sensitivity_section_and_heatmaps(tmp_path):
    from norank.experiments.studies import sensitivity as SENS

    recs = [
        {
            "dataset": "lfw",
            "method": f"norank_{v}",
            "protocol": "heldout",
            "seed": s,
            "split": "stratified",
            "study": "sensitivity",
            "variant": v,
            "fit_seconds": 1.0,
            "metrics": {
                "knn_accuracy": 0.5
                + o["margin"] / 10
                + o["diversity_weight"] / 100
                + o["uniformity_weight"] / 1000
                + s / 10000,
                "ari": 0.3,
            },
        }
        for v, o in SENS.grid()
        for s in (0, 1)
    ]
    text = SENS.section(recs)
    assert "**0.711 / 0.300**" in text and text.count("**") == 2  # margin 2, both weights 1: the best cell
    assert "| margin 0.5: diversity_weight ↓, uniformity_weight → | 0 | 0.1 | 1 |" in text
    assert SENS.figures(recs, tmp_path) == ["sensitivity_lfw.png"]
    assert (tmp_path / "sensitivity_lfw.png").stat().st_size > 5000


def test_threads_are_limited_inside_a_runtime_job_and_restored():
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with RUN._threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before


def test_loss_methods_and_the_runtime_study_run_end_to_end(tmp_path):
    """No monkeypatch: norank_supcon through NoRankEmbedder(loss="supcon"), and one-thread timing runs."""
    results = RUN.run_reproduce(
        tmp_path,
        datasets=["digits"],
        methods=["norank_supcon", "pca"],
        seeds=1,
        protocol="heldout",
        quick=True,
        studies=["runtime"],
    )
    records = results["records"]
    assert not [r for r in records if "error" in r]
    supcon = next(r for r in records if r["method"] == "norank_supcon" and r.get("study") is None)
    assert supcon["settings"]["loss"] == "supcon" and len(supcon["history"]["loss"]) == M.QUICK_EPOCHS
    timed = [r for r in records if r.get("study") == "runtime"]
    assert {r["method"] for r in timed} == {"norank_supcon", "pca"}
    assert all(r["threads"] == 1 and not r.get("reused") and r["fit_seconds"] > 0 for r in timed)
    assert results["meta"]["runtime_threads"] == 1
    text = (tmp_path / "report.md").read_text()
    assert "## k. Runtime" in text and "| norank_supcon | supervised |" in text
    supervised = text.split("Supervised (trained with labels)")[1]
    assert "| norank_supcon |" in supervised.split("####")[0]


def test_only_studies_that_ask_for_it_keep_per_class_recall():
    from norank.experiments.jobs import Job

    result = {
        "metrics": {},
        "fit_seconds": 1.0,
        "n_train": 10,
        "n_test": 5,
        "diagnostics": {},
        "per_class_recall": {"a": 0.5},
        "train_class_counts": {"a": 10},
    }
    kept = RUN._record(Job("lfw", "norank_sqrt", "heldout", 0, study="imbalance", variant="sqrt"), result, None)
    dropped = RUN._record(Job("lfw", "norank_hard", "heldout", 0, study="mining", variant="hard"), result, None)
    assert kept["per_class_recall"] == {"a": 0.5} and kept["train_class_counts"] == {"a": 10}
    assert "per_class_recall" not in dropped and "per_class_recall" not in RUN._record(
        Job("lfw", "pca", "heldout", 0), result, None
    )
