"""Input validation (issue 13): results that do not depend on the data's scale, offset or container, and one
clear error for each input that cannot be used."""

import datetime
import decimal

import numpy as np
import pandas as pd
import pytest
import torch
from shared import TINY
from sklearn.neighbors import KNeighborsClassifier

from norank import NoRankEmbedder
from norank.baselines.linear import LDABaseline, PCABaseline
from norank.metrics import evaluate, knn_accuracy
from norank.validation import check_X, label_values


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = rng.normal(size=(4, 3, 4))[y] * 2 + rng.normal(size=(40, 3, 4))
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    return NoRankEmbedder(**TINY).fit(*data)


# -- scale and offset (item 9) -----------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1e-9, 1e-3, 1e6, 1e19])
def test_embedding_does_not_change_when_new_data_is_rescaled(data, fitted, factor):
    X = data[0]
    np.testing.assert_allclose(fitted.transform(X * factor), fitted.transform(X), atol=1e-3)


def test_float64_offset_far_above_the_spread_gives_the_same_model(data, fitted, tmp_path):
    X, y = data
    shifted = X + 1e8
    est = NoRankEmbedder(**TINY).fit(shifted, y)
    Z = fitted.transform(X)
    np.testing.assert_allclose(est.transform(shifted), Z, atol=1e-3)
    np.save(tmp_path / "X.npy", shifted)  # a memory map is read in its own precision too
    np.testing.assert_allclose(est.transform(np.load(tmp_path / "X.npy", mmap_mode="r")), Z, atol=1e-3)


def test_one_value_per_sample_is_refused_and_two_warned_with_the_fix(data):
    X, y = data
    for width in (1, 2):
        flat = X.reshape(40, -1)[:, :width]
        match = rf"{width} feature\(s\).*normalization='feature'.*'none'"
        if width == 1:
            with pytest.raises(ValueError, match=match):
                NoRankEmbedder(**TINY).fit(flat, y)
        else:
            with pytest.warns(UserWarning, match=match):
                NoRankEmbedder(**TINY).fit(flat, y)
        Z = NoRankEmbedder(**TINY, normalization="feature").fit(flat, y).transform(flat)
        assert len(np.unique(Z, axis=0)) == 40  # no collapse
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\) for a single feature \(which needs normalization='feature"):
        check_X(np.arange(5.0))


# -- symmetric="auto" (item 9) -----------------------------------------------------------------------
def _lower_triangle_classes(n, seed, n_symmetric):
    """8x8 matrices whose classes differ only below the diagonal; the first n_symmetric are symmetrised."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    centers = np.random.default_rng(99).normal(size=(4, 8, 8)) * 1.5
    lower = np.tril(np.ones((8, 8), bool), -1)
    M = rng.normal(size=(n, 8, 8))
    M[:, lower] += centers[y][:, lower]
    M[:n_symmetric] = (M[:n_symmetric] + M[:n_symmetric].transpose(0, 2, 1)) / 2
    return M.astype(np.float32), y


def test_symmetric_auto_keeps_the_lower_triangle_when_later_samples_need_it():
    X_train, y_train = _lower_triangle_classes(160, 0, 16)
    X_test, y_test = _lower_triangle_classes(80, 1, 0)
    est = NoRankEmbedder(**{**TINY, "epochs": 5, "hidden_layer_sizes": (64,), "embedding_dim": 16})
    est.fit(X_train, y_train)
    assert not est.preprocessor_.symmetric_
    knn = KNeighborsClassifier(1).fit(est.transform(X_train), y_train)
    assert knn.score(est.transform(X_test), y_test) >= 0.9  # chance is 0.25, what the upper triangle gives


def test_a_model_fitted_on_symmetric_matrices_refuses_asymmetric_ones(data):
    X, y = data
    C = np.einsum("nij,nkj->nik", X, X)  # 3x3 symmetric
    est = NoRankEmbedder(**TINY).fit(C, y)
    assert est.preprocessor_.symmetric_
    bad = C.copy()
    bad[3, 0, 2] += 1.0
    with pytest.raises(ValueError, match="Sample 3 of X is not a symmetric matrix"):
        est.transform(bad)


# -- containers (item 11) ----------------------------------------------------------------------------
def test_dataframe_with_pd_na_is_refused_as_missing_and_without_it_fits_like_numpy(data, fitted):
    X, y = data
    frame = pd.DataFrame(X.reshape(40, -1)).astype("Float64")
    flat = NoRankEmbedder(**TINY).fit(X.reshape(40, -1), y)
    assert np.array_equal(NoRankEmbedder(**TINY).fit(frame, y).transform(frame), flat.transform(X.reshape(40, -1)))
    frame.iloc[3, 2] = pd.NA
    with pytest.raises(ValueError, match="NaN or infinity.*pd.NA"):
        NoRankEmbedder(**TINY).fit(frame, y)


def test_torch_tensor_that_requires_grad_is_read_without_touching_it(data, fitted):
    X, y = data
    tensor = torch.tensor(X, requires_grad=True)
    before = tensor.detach().clone()
    est = NoRankEmbedder(**TINY).fit(tensor, torch.from_numpy(y))
    assert np.array_equal(est.transform(tensor), fitted.transform(X))
    assert tensor.grad is None and torch.equal(tensor.detach(), before) and tensor.requires_grad
    half = tensor.detach().to(torch.bfloat16)  # numpy has no bfloat16: read as float32, exactly
    assert np.array_equal(est.transform(half), fitted.transform(half.float().numpy()))


class ShapeLenGetitem:
    """The documented minimum of a lazy input: shape, __len__, __getitem__ (no dtype, no ndim)."""

    def __init__(self, array, slices=True):
        self.array, self.shape, self.slices = array, array.shape, slices

    def __len__(self):
        return len(self.array)

    def __getitem__(self, item):
        if not self.slices and not isinstance(item, int):
            raise TypeError("integers only")
        return self.array[item].tolist()


@pytest.mark.parametrize("slices", [True, False])
def test_array_like_with_only_shape_len_and_getitem(data, slices):
    X, y = data
    X = X.astype(np.float32)
    expected = NoRankEmbedder(**TINY).fit(X, y).transform(X)
    est = NoRankEmbedder(**TINY).fit(ShapeLenGetitem(X, slices), y)
    np.testing.assert_allclose(est.transform(ShapeLenGetitem(X, slices)), expected, atol=1e-6)


def test_array_like_with_bad_samples_gets_one_clear_error(data):
    X, y = data

    class Ragged(ShapeLenGetitem):
        def __getitem__(self, item):
            return [[1.0]] if item == 5 else super().__getitem__(item)

    with pytest.raises(ValueError, match="declares samples of shape"):
        NoRankEmbedder(**TINY).fit(Ragged(X, slices=False), y)
    words = np.full(X.shape, "a")
    with pytest.raises(TypeError, match="numeric"):
        NoRankEmbedder(**TINY).fit(ShapeLenGetitem(words), y)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (lambda X: X.astype(object).astype(str).astype(object), TypeError, "strings"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, None, X.astype(object)), ValueError, "NaN"),
        (lambda X: X.astype(object) * 1j, ValueError, "Complex"),
        (lambda X: X.astype(np.complex64), ValueError, "Complex"),
    ],
)
def test_object_and_complex_inputs(data, bad, error, match):
    X, y = data
    with pytest.raises(error, match=match):
        NoRankEmbedder(**TINY).fit(bad(X), y)


def test_evaluate_refuses_complex_instead_of_dropping_the_imaginary_part(data):
    X, y = data
    Z = X.reshape(40, -1)
    for kwargs in ({"Z": Z + 1j * Z}, {"Z": Z, "X": X + 1j}, {"Z": torch.from_numpy(Z + 1j * Z)}):
        with pytest.raises(ValueError, match="Complex data not supported"):
            evaluate(**{"y": y, **kwargs})
    with pytest.raises(ValueError, match="Complex"):
        knn_accuracy(Z + 1j, y, Z, y)


# -- labels: one check (items 11.4 and 13) -----------------------------------------------------------
@pytest.mark.parametrize(
    "labels, dtype",
    [
        (np.repeat(np.arange(4, dtype=np.int8), 10), np.int8),
        (np.repeat(np.array([2**63, 2**63 + 1, 2**64 - 1, 5], dtype=np.uint64), 10), np.uint64),
        ([2**63, 2**63 + 1, 2**64 - 1, 5] * 10, np.uint64),  # Python ints beyond int64
        (np.repeat([True, False, True, False], 10), np.bool_),
        (np.repeat([0.5, -1.0, 2.25, 1e300], 10), np.float64),
        (np.repeat(["a", "b", "ç", ""], 10), np.str_),
        (np.repeat(np.array(["a", "b", "c", "d"], dtype=object), 10), np.str_),
        (pd.Series(np.repeat(["a", "b", "c", "d"], 10), dtype="string"), np.str_),
        (pd.Series(np.repeat([1, 2, 3, 4], 10), dtype="Int64"), np.int64),
    ],
)
def test_accepted_label_types_keep_their_dtype_in_classes(data, labels, dtype):
    X, _ = data
    est = NoRankEmbedder(**TINY).fit(X, labels)
    assert type(est.classes_) is np.ndarray and est.classes_.dtype.type is np.dtype(dtype).type
    expected = np.unique(np.asarray(labels, dtype=dtype))
    assert np.array_equal(est.classes_, expected) and len(est.classes_) == len(expected)


REFUSED = [
    (np.repeat([b"a", b"b"], 20), "dtype \\|S1"),
    (np.repeat(np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"), 20), "datetime64"),
    (np.repeat(np.array([1, 2], dtype="timedelta64[s]"), 20), "timedelta64"),
    (np.repeat([1 + 1j, 2.0], 20), "complex"),
    (np.repeat(np.array([1, "a"], dtype=object), 20), "mixes label types \\(int, str\\)"),
    ([1, "a"] * 20, "mixes label types"),  # numpy alone would turn this into strings
    ([True, 2] * 20, "mixes label types"),  # and this into integers
    (np.repeat(np.array([datetime.date(2020, 1, 1), datetime.date(2021, 1, 1)]), 20), "type date"),
    (np.repeat(np.array([decimal.Decimal(1), decimal.Decimal(2)]), 20), "type Decimal"),
    (np.repeat(np.array([b"a", b"b"], dtype=object), 20), "type bytes"),
    ([-1, 2**64] * 20, "beyond 64 bits"),
]


@pytest.mark.parametrize("labels, match", REFUSED)
def test_other_label_types_are_refused_at_fit_with_a_type_error(data, labels, match):
    with pytest.raises(TypeError, match=match):
        NoRankEmbedder(**TINY).fit(data[0], labels)


@pytest.mark.parametrize(
    "labels",
    [
        np.repeat(np.array(["a", None], dtype=object), 20),
        pd.Series(np.repeat(["a", pd.NA], 20), dtype="string"),
        pd.Series(np.repeat([1, pd.NA], 20), dtype="Int64"),
        np.repeat([1.0, np.nan], 20),
    ],
)
def test_missing_labels_are_refused(data, labels):
    with pytest.raises(ValueError, match="NaN|missing"):
        NoRankEmbedder(**TINY).fit(data[0], labels)


@pytest.mark.parametrize("labels, match", REFUSED[:5])
def test_baselines_and_metrics_use_the_same_label_check(data, labels, match):
    X, _ = data
    messages = []
    for call in (
        lambda: NoRankEmbedder(**TINY).fit(X, labels),
        lambda: LDABaseline().fit(X, labels),
        lambda: PCABaseline(n_components=2).fit(X, labels),
        lambda: evaluate(X.reshape(40, -1), labels),
        lambda: knn_accuracy(X.reshape(40, -1), labels, X.reshape(40, -1), labels),
    ):
        with pytest.raises(TypeError, match=match) as info:
            call()
        messages.append(str(info.value).replace("y_train", "y"))  # the same sentence, up to the argument's name
    assert len(set(messages)) == 1


def test_big_unsigned_labels_work_everywhere(data):
    X, _ = data
    y = np.repeat(np.array([2**63 + 7, 2**63, 3, 2**64 - 1], dtype=np.uint64), 10)
    lda = LDABaseline().fit(X, y)
    assert lda.classes_.dtype == np.uint64 and lda.classes_[-1] == 2**64 - 1
    scores = evaluate(X.reshape(40, -1), y)
    assert scores["precision_at_1"] == pytest.approx(evaluate(X.reshape(40, -1), y.astype(str))["precision_at_1"])
    with pytest.raises(ValueError, match="y_train has 39 labels but X_train has 40 samples.*or y_train=None"):
        PCABaseline(n_components=2).fit(X, y[:-1])
    assert label_values(y[:, None], 40).shape == (40,)
