"""Property-based checks of input validation (issue 13): whatever X and y look like, `fit` and `transform` either
work, giving finite float32 unit-norm rows, or raise one ValueError / TypeError; the caller's arrays are never
changed. Bounded: at most 25 examples per property, derandomised, no example database."""

import tempfile
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared import TINY

from norank import NoRankEmbedder
from norank.preprocessing import TensorPreprocessor

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SAMPLE = (3, 4)
DTYPES = [
    "float32",
    "float64",
    "int64",
    "float16",
    "int8",
    "uint8",
    "int16",
    "int32",
    "uint64",
    "bool",
    "object",
    "<U3",
    "complex64",
]  # usable ones first: hypothesis leans towards the first choices
LAYOUTS = ["c", "fortran", "strided", "readonly", "memmap"]


def _values(dtype: str, shape, draw):
    """An array of `dtype`; floats may get one NaN or infinity at a drawn position, objects hold numbers or None."""
    size = int(np.prod(shape))
    if dtype == "object":
        cells = st.one_of(st.floats(-1e6, 1e6), st.integers(-100, 100), st.none())
        return np.array(draw(st.lists(cells, min_size=size, max_size=size)), dtype=object).reshape(shape)
    if dtype == "<U3":
        return draw(hnp.arrays(dtype, shape, elements=st.sampled_from(["1", "a", "2.5"])))
    elements = st.floats(-1e4, 1e4, width=16 if dtype == "float16" else 32) if np.dtype(dtype).kind in "fc" else None
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    poison = draw(st.sampled_from([None, None, None, np.nan, np.inf, -np.inf]))
    if poison is not None and size and a.dtype.kind in "fc":
        a.flat[draw(st.integers(0, size - 1))] = poison
    return a


def _laid_out(a: np.ndarray, layout: str, folder: Path) -> np.ndarray:
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        wide = np.repeat(a, 2, axis=0)  # every other sample of a twice-as-long array: a non-contiguous view
        return wide[::2]
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "memmap" and a.dtype != object:
        np.save(folder / "X.npy", a)
        return np.load(folder / "X.npy", mmap_mode="r")
    return a


@st.composite
def inputs(draw, sample_shape=None):
    n = draw(st.sampled_from([16, 8, 2, 1, 0]))
    if sample_shape is None:  # mostly usable shapes (1-D to 4-D in all), sometimes an empty axis or no sample axis
        odd = draw(st.integers(0, 3)) == 0
        sample_shape = tuple(draw(st.lists(st.integers(0 if odd else 1, 4), min_size=0 if odd else 1, max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    return _values(dtype, (n, *sample_shape), draw), draw(st.sampled_from(LAYOUTS))


LABELS = st.sampled_from(["int64", "str", "uint64-big", "bool", "float", "object-str", "bytes", "datetime", "mixed"])


def _labels(kind: str, n: int, n_classes: int):
    codes = np.arange(n) % n_classes
    return {
        "int64": lambda: codes.astype(np.int64),
        "uint64-big": lambda: codes.astype(np.uint64) + np.uint64(2**63),
        "bool": lambda: codes.astype(bool),
        "float": lambda: codes * 0.5,
        "str": lambda: codes.astype(str),
        "object-str": lambda: codes.astype(str).astype(object),
        "bytes": lambda: codes.astype("S1"),
        "datetime": lambda: codes.astype("datetime64[D]"),
        "mixed": lambda: np.array([c if i % 2 else str(c) for i, c in enumerate(codes)], dtype=object),
    }[kind]()


def _same(a, b) -> bool:
    if a.dtype == object:
        pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
        return a.shape == b.shape and all(x is y or x == y for x, y in pairs)
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _snapshot(a):
    return np.array(a, copy=True), a.flags.writeable, a.flags.c_contiguous, a.flags.f_contiguous


def _unchanged(a, snap) -> None:
    copy, writeable, c, f = snap
    assert _same(np.asarray(a), copy), "the caller's array was modified"
    assert (a.flags.writeable, a.flags.c_contiguous, a.flags.f_contiguous) == (writeable, c, f)


def _good_rows(Z, n) -> None:
    assert Z.dtype == np.float32 and Z.shape == (n, TINY["embedding_dim"])
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def _fit(X, y):
    """The fitted model, or None when fit refused the input with a ValueError or TypeError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return NoRankEmbedder(**TINY).fit(X, y)
        except (ValueError, TypeError):
            return None


@BOUNDED
@given(data=inputs())
def test_fit_on_any_array_either_works_or_raises_value_or_type_error(data):
    X, layout = data
    y = np.arange(len(X)) % 2
    with tempfile.TemporaryDirectory() as folder:
        X = _laid_out(X, layout, Path(folder))
        snap = _snapshot(X)
        est = _fit(X, y)
        if est is not None:
            _good_rows(est.transform(X), len(X))
        _unchanged(X, snap)


@BOUNDED
@given(kind=LABELS, n_classes=st.sampled_from([2, 3, 1]), layout=st.sampled_from(["c", "strided", "readonly"]))
def test_fit_with_any_labels_keeps_an_accepted_dtype_or_raises_type_error(kind, n_classes, layout):
    rng = np.random.default_rng(1)
    y = _laid_out(_labels(kind, 16, n_classes), layout, Path("."))
    X = rng.normal(size=(16, 3, 4)) + (np.arange(16) % n_classes)[:, None, None]
    snap = _snapshot(y)
    est = _fit(X, y)
    if est is None:
        assert kind in ("bytes", "datetime", "mixed") or n_classes == 1
    else:
        assert type(est.classes_) is np.ndarray and est.classes_.dtype.kind in "biufU"
        assert len(est.classes_) == len(set(y.tolist())) and np.array_equal(est.classes_, np.unique(est.classes_))
        _good_rows(est.transform(X), len(X))
    _unchanged(y, snap)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 8)
    return NoRankEmbedder(**TINY).fit(rng.normal(size=(24, *SAMPLE)) + y[:, None, None], y)


@BOUNDED
@given(data=inputs(sample_shape=SAMPLE))
def test_transform_either_works_like_a_plain_copy_or_raises_value_or_type_error(fitted, data):
    X, layout = data
    with tempfile.TemporaryDirectory() as folder:
        X = _laid_out(X, layout, Path(folder))
        snap = _snapshot(X)
        try:
            Z = fitted.transform(X)
        except (ValueError, TypeError):
            Z = None
        if Z is not None:
            _good_rows(Z, len(X))
            plain = np.array(X, dtype=np.float64 if X.dtype == object else X.dtype, order="C", copy=True)
            assert np.array_equal(Z, fitted.transform(plain))  # the layout does not change the embedding
        _unchanged(X, snap)


@BOUNDED
@given(
    seed=st.integers(0, 2**32 - 1),
    exponent=st.integers(-9, 19),
    mantissa=st.floats(1.0, 9.99),
    offset=st.sampled_from([1e4, -1e8, 1e8]),
    normalization=st.sampled_from(["sample", "feature"]),
)
def test_preprocessed_rows_do_not_depend_on_scale_or_offset(seed, exponent, mantissa, offset, normalization):
    X = np.random.default_rng(seed).normal(size=(12, 3, 5))
    reference = TensorPreprocessor(normalization).fit(X).transform(X)
    for moved in (X * (mantissa * 10.0**exponent), X + offset):  # float64 data, rescaled or shifted
        np.testing.assert_allclose(TensorPreprocessor(normalization).fit(moved).transform(moved), reference, atol=1e-3)
