"""Test-session settings shared by every test file."""

import os
from pathlib import Path

# scikit-learn's array-API check (run by parametrize_with_checks) needs SciPy's array-API mode, which
# must be switched on before SciPy is first imported; without it the check is skipped, not run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# Offline copies of the real datasets; CI sets NORANK_DATA_DIR itself.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "NORANK_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["NORANK_DATA_DIR"] = str(_SHARED)
