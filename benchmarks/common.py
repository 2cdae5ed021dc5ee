"""Helpers shared by the benchmark modules: timing, figure records, peak memory in a subprocess."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from queue import Empty


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch thread (single-threaded timings), then restore the caller's count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


FIGURE_KEYS = ("name", "value", "unit", "peer", "peer_value", "ratio", "target", "met")


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> dict:
    """Median seconds of ``fn()`` over ``repeats`` calls (after ``warmup`` untimed ones), on two clocks.

    ``wall``: elapsed time. ``cpu``: this process's CPU time (user + system), which for single-threaded
    code equals the wall time of a quiet machine and, unlike it, does not count the time other processes
    on a shared machine hold the cores. The median, not the mean, so one disturbed run does not move it.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}.")
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, clock: str = "wall") -> float:
    """Median seconds of ``fn()`` on ``clock`` ("wall" or "cpu"); see :func:`time_call`."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu'; got {clock!r}.")
    return time_call(fn, repeats, warmup)[clock]


def figure(
    name: str,
    value: float,
    unit: str,
    peer: str | None = None,
    peer_value: float | None = None,
    target: float | None = None,
    higher_is_better: bool = False,
    note: str | None = None,
) -> dict:
    """One benchmark figure.

    With a peer, ``ratio`` is how many times better norank is than the peer (``peer_value / value`` when
    lower is better, ``value / peer_value`` when higher is better) and ``met`` is ``ratio >= target``.
    Without a peer, ``target`` (if any) is an absolute bound on ``value`` itself. ``met`` is None when
    there is nothing to meet.
    """
    ratio = None
    if peer_value is not None and value is not None and value > 0 and peer_value > 0:
        ratio = value / peer_value if higher_is_better else peer_value / value
    met = None
    if target is not None:
        if peer_value is not None:
            met = ratio is not None and ratio >= target
        elif value is not None:
            met = value >= target if higher_is_better else value <= target
    out = {
        "name": name,
        "value": value,
        "unit": unit,
        "peer": peer,
        "peer_value": peer_value,
        "ratio": ratio,
        "target": target,
        "met": met,
    }
    if note:
        out["note"] = note
    return out


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field} field")


def _rss_child(queue, fn, args, warmup):
    try:
        if warmup is not None:
            warmup()
        before = _status_bytes("VmRSS")
        # Reset the high-water mark to the current RSS (Linux >= 4.0). Without it the peak would include
        # the parent's RSS at fork time, which Linux carries across exec into the child's maxrss.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        fn(*args)
        peak = _status_bytes("VmHWM")
        queue.put({"baseline_bytes": before, "peak_bytes": peak, "increase_bytes": max(0, peak - before)})
    except BaseException as exc:  # report, do not hang the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def peak_rss(fn: Callable, *args, timeout: float = 600.0, warmup: Callable[[], object] | None = None) -> dict:
    """Run ``fn(*args)`` in a fresh (spawned) process and report its resident-memory peak.

    Returns ``baseline_bytes`` (RSS just before the call, imports done), ``peak_bytes`` (the RSS
    high-water mark during the call) and ``increase_bytes`` = peak − baseline, the memory the call itself
    needed at its peak. ``warmup`` (no arguments) runs first, before the baseline, so one-off lazy
    initialisation (kernels, thread pools) is not charged to the call. Linux only (reads /proc). ``fn``
    and ``warmup`` must be module-level functions so the child can import them.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_rss_child, args=(queue, fn, args, warmup))
    proc.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                result = queue.get(timeout=1.0)
                break
            except Empty:  # no result yet: a child that died without one must not keep us waiting
                if not proc.is_alive():
                    raise RuntimeError(
                        f"peak_rss child exited with status {proc.exitcode} without a result; "
                        "its error is printed above."
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"peak_rss child gave no result within {timeout:.0f} s.") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    if "error" in result:
        raise RuntimeError(f"peak_rss child failed: {result['error']}")
    return result


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def fit_missing(jobs, stored: Callable[[], set], fit_one: Callable[..., dict], store: Callable[[dict], None]) -> None:
    """The tuning studies' loop: fit each (dataset, variant, seed) of `jobs` whose record is not among
    `stored()` (read again before each fit, so processes sharing a file and stopped runs resume), store it
    and print its held-out 1-NN accuracy and ARI."""
    for dataset, variant, seed in jobs:
        if (dataset, variant, seed) in stored():
            continue
        rec = fit_one(dataset, variant, seed)
        store(rec)
        print(
            f"{dataset:12s} {variant:22s} seed={seed} 1nn={rec['knn_accuracy']:.3f} ari={rec['ari']:.3f} "
            f"fit={rec['fit_seconds']:.1f}s {rec.get('encoder', '')}",
            flush=True,
        )
