"""Sphinx configuration of the norank documentation site (`make docs`).

The API reference is generated from the docstrings of the public modules that exist when the site is
built (`API_MODULES`, filtered by what imports), so a module added, split or removed needs no edit here.
The gallery runs every `../examples/plot_*.py` and builds its printed output and figures into the pages;
`NORANK_DOCS_QUICK=1` makes each example do less work (fewer epochs, fewer samples), which is how
tests/test_docs.py builds the whole site inside `make test`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import norank

project = "norank"
author = "the norank developers"
copyright = "the norank developers"
version = release = norank.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
html_static_path = ["_static"]
# CONTRACT.md is a note for the developers; results_*/ folders hold `norank reproduce` runs (results_run/ the
# ones behind results.md), whose report.md files are not pages of the site.
exclude_patterns = ["_build", "CONTRACT.md", "results_*"]

# -- API reference --------------------------------------------------------------------------------------------
# Public modules, in the order the reference lists them; a name that does not import today is left out.
API_MODULES = [
    "norank.metrics",
    "norank.datasets",
    "norank.training",
    "norank.losses",
    "norank.mining",
    "norank.regularizers",
    "norank.distances",
    "norank.sampling",
    "norank.schedules",
    "norank.neighbors",
]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


autosummary_generate = True
autosummary_ignore_module_all = False  # a module's __all__, when it has one, is its public API
autosummary_imported_members = False
autosummary_context = {"api_modules": [m for m in API_MODULES if _importable(m)]}
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False  # the class template lists the methods once
numpydoc_class_members_toctree = False

# -- Markdown pages (docs/*.md) -------------------------------------------------------------------------------
myst_heading_anchors = 3  # [text](defaults.md#abide) links resolve to section anchors
# results.md is written by norank.experiments.report, whose study sections go from "##" to "####";
# the pages render correctly, so that one heading-level lint is silenced rather than the generated file edited.
suppress_warnings = ["myst.header"]

# -- Gallery --------------------------------------------------------------------------------------------------
# sphinx-gallery reruns only the examples whose source changed; a switch between quick and full runs must rerun
# them all, or the pages would keep the other mode's output. The mode of the last build is kept beside them.
QUICK = os.environ.get("NORANK_DOCS_QUICK") == "1"


def _mode_changed(stamp: Path, mode: str) -> bool:
    changed = not stamp.is_file() or stamp.read_text() != mode
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(mode)
    return changed


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("norank",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"norank": None},
    "remove_config_comments": True,
    "download_all_examples": False,
    "min_reported_time": 1,
    "run_stale_examples": _mode_changed(
        Path(__file__).parent / "auto_examples" / ".mode", "quick" if QUICK else "full"
    ),
}

# -- HTML -----------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"norank {release}"
html_css_files = ["norank.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
