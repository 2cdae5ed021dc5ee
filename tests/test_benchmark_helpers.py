"""The benchmark helpers that the figures rest on: peak memory in a child process."""

import os

import numpy as np
import pytest

from benchmarks.common import peak_rss


def _allocate(n_bytes):
    block = np.ones(n_bytes, dtype=np.uint8)  # touched, so resident
    return int(block.sum())


def _die():
    os._exit(3)  # as a crash or the OOM killer would: no result, no exception


def test_peak_rss_sees_an_allocation():
    out = peak_rss(_allocate, 200 * 2**20)
    assert out["increase_bytes"] >= 190 * 2**20


def test_peak_rss_fails_at_once_when_the_child_dies_without_a_result():
    with pytest.raises(RuntimeError, match="status 3"):
        peak_rss(_die, timeout=60)
