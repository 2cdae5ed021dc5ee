"""norank benchmarks: ``python -m benchmarks [--quick] [--only NAME]`` runs every ``bench_*.py`` module.

Each module exposes ``run(quick: bool) -> list[dict]`` of figures built by :func:`benchmarks.common.figure`.
"""
