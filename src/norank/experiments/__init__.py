"""The paper's experiments under an honest protocol, behind `norank reproduce`.

`run_reproduce` plans every run (main table and studies), fits each method on training data only in the
held-out protocol, and writes results.json, results.csv, report.md and figures/. `publish` turns a run
folder into docs/results.md. See docs/experiments.md.
"""

from norank.experiments.run import run_reproduce

__all__ = ["run_reproduce"]
