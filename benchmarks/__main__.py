"""Run the benchmark modules, print one table and record the figures in benchmarks/latest.json.

``python -m benchmarks`` runs every ``benchmarks/bench_*.py``; ``--only mining`` runs one (its entry in
latest.json is replaced, the others are kept); ``--quick`` asks each module for a smaller, faster run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import pkgutil
import sys
import traceback
from pathlib import Path

from benchmarks.common import FIGURE_KEYS, machine

HERE = Path(__file__).resolve().parent
LATEST = HERE / "latest.json"


def available() -> list[str]:
    return sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def print_table(rows: list[tuple[str, dict]]) -> None:
    header = ("module", "figure", "value", "unit", "peer", "peer value", "ratio", "target", "met")
    lines = [header] + [
        (
            mod,
            f["name"],
            _fmt(f["value"]),
            f["unit"],
            _fmt(f["peer"]),
            _fmt(f["peer_value"]),
            _fmt(f["ratio"]),
            _fmt(f["target"]),
            _fmt(f["met"]),
        )
        for mod, f in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for k, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main(argv=None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument(
        "--only",
        choices=names + [f"bench_{n}" for n in names],
        metavar="NAME",
        help=f"run one module ({', '.join(names)})",
    )
    args = parser.parse_args(argv)
    if args.only and args.only.startswith("bench_"):
        args.only = args.only[len("bench_") :]

    record = {"modules": {}}
    if args.only and LATEST.exists():
        record = json.loads(LATEST.read_text())
        record.setdefault("modules", {})
    record["meta"] = {"machine": machine(), "command": " ".join(["python -m benchmarks", *sys.argv[1:]])}

    rows, failed = [], []
    for name in [args.only] if args.only else names:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            figures = importlib.import_module(f"benchmarks.bench_{name}").run(quick=args.quick)
            for f in figures:
                missing = [k for k in FIGURE_KEYS if k not in f]
                if missing:
                    raise ValueError(f"figure {f.get('name')!r} lacks keys {missing}; build it with common.figure().")
        except Exception:
            traceback.print_exc()
            failed.append(name)
            record["modules"][name] = {"time": stamp, "quick": args.quick, "error": traceback.format_exc()}
            continue
        record["modules"][name] = {"time": stamp, "quick": args.quick, "figures": figures}
        rows += [(name, f) for f in figures]

    print_table(rows)
    LATEST.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {LATEST.relative_to(HERE.parent)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
