"""The documentation site builds without a warning, with its API reference and executed gallery.

The whole site (docs/ and examples/) is copied to a temporary folder and built there as `make docs` builds it
(`-W --keep-going`: any warning fails the build), with `NORANK_DOCS_QUICK=1` so that every gallery example
runs with fewer epochs and samples. A failing example, a broken reference, a docstring numpydoc cannot parse
or a markdown page that does not render all fail this test.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("_build", "auto_examples", "gen_modules", "sg_execution_times.rst", "results_*")
MARKDOWN_PAGES = ("defaults", "results", "datasets", "baselines", "scaling", "experiments")


def _build(tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    out = tmp_path / "html"
    env = dict(os.environ, NORANK_DOCS_QUICK="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.setdefault("NORANK_DATA_DIR", str(ROOT.parent / "shared" / "data"))  # as the Makefile sets it
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "docs", str(out)]
    done = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    return done, out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("site"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_site_builds_without_warnings(site):
    done, _ = site
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"sphinx-build failed (exit {done.returncode}):\n{log[-6000:]}"
    assert "WARNING" not in log and "ERROR" not in log, log[-6000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_site_has_api_reference_pages_and_gallery(site):
    _, out = site
    for page in ("index", "install", "user_guide", "api", *MARKDOWN_PAGES):
        assert (out / f"{page}.html").is_file(), f"{page}.html was not built"
    api = out / "gen_modules"
    modules = runpy.run_path(str(ROOT / "docs" / "conf.py"))["autosummary_context"]["api_modules"]
    assert "norank.metrics" in modules and "norank.datasets" in modules
    for page in ("norank", "norank.NoRankEmbedder", "norank.metrics.evaluate", "norank.datasets.load", *modules):
        assert (api / f"{page}.html").is_file(), f"API page {page}.html was not built"
    # The estimator's page carries its docstring's parameters, not an empty stub.
    assert "embedding_dim" in (api / "norank.NoRankEmbedder.html").read_text(encoding="utf-8")

    scripts = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert len(scripts) >= 6
    for name in scripts:
        page = out / "auto_examples" / f"{name}.html"
        assert page.is_file(), f"gallery page {name}.html was not built"
        html = page.read_text(encoding="utf-8")
        figures = re.findall(rf"sphx_glr_{name}_\d{{3}}\.png", html)
        assert figures, f"{name}: no figure on its page (the example did not run or drew nothing)"
        assert all((out / "_images" / f).is_file() for f in figures), f"{name}: a figure file is missing"
        assert "sphx-glr-script-out" in html, f"{name}: no printed output on its page"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_start_page_shows_its_run(site):
    _, out = site
    html = (out / "auto_examples" / "plot_01_quickstart.html").read_text(encoding="utf-8")
    scores = re.findall(r"norank: silhouette (-?[\d.]+), ari (-?[\d.]+), precision_at_1 ([\d.]+)", html)
    assert scores, "the quick start's printed scores are not on its page"
    assert float(scores[0][2]) > 0.8  # held-out 1-NN retrieval on digits, far above chance (0.1)
