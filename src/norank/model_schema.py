"""What a saved model's config.json may hold, both ways: made JSON-safe on save, checked on load.

Saving converts every value to plain JSON (numpy scalars, tuples and paths included) before the first
byte is written, and refuses what JSON cannot hold (a loss or miner given as an object) with a message
naming the parameter. Loading checks every field before anything is built from it: parameters through
the parameter table (`norank.params`), so a value `fit` refuses is refused here too; the fitted state and
the preprocessing state by type, range and agreement with each other. A refusal is an `InvalidModel`
(a ValueError) naming the field.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re

import numpy as np

from norank.params import PARAMETERS, Choice, Optional, check_params

MAX_DEPTH = 8  # deepest nesting a valid config or weights header uses, with room to spare
FITTED_KEYS = (
    "classes_",
    "input_shape_",
    "n_features_in_",
    "n_epochs_",
    "history_",
    "encoder_kind_",
    "encoder_selection_",
)
PREPROCESSING_KEYS = (
    "normalization",
    "symmetric",
    "fisher_z",
    "fisher_clip",
    "input_shape_",
    "symmetric_",
    "n_features_",
    "n_components",
    "tangent_metric",
)
_CLASS_DTYPE = re.compile(r"[<>|=]?(b1|i[1248]|u[1248]|f[248]|U[1-9][0-9]{0,5})")
_MAX_DIMS = 32  # numpy's own limit on dimensions


class InvalidModel(ValueError):
    """A saved model that is malformed or inconsistent; the message names the field."""


def _want(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidModel(message)


def parse_json(data: bytes, what: str):
    """The JSON value in `data` (config.json or a weights header), refused when corrupt or nested more than
    MAX_DEPTH levels: the depth check is iterative, so a hostile file cannot recurse here either."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise InvalidModel(f"{what} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, and ints past Python's digit limit
        raise InvalidModel(f"{what} is corrupt (not valid JSON: {exc})") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            _want(depth <= MAX_DEPTH, f"{what} is nested more than {MAX_DEPTH} levels deep")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- saving: plain JSON ------------------------------------------------------------------------------
def json_safe(value, where: str, depth: int = 0):
    """`value` as plain JSON types; TypeError naming `where` for anything JSON cannot hold."""
    if depth > MAX_DEPTH:
        raise TypeError(f"{where} is nested too deeply to be saved.")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "biuf":
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: json_safe(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    raise TypeError(f"{where}={value!r} cannot be stored in a model's JSON config.")


def _names(constraint) -> tuple:
    inner = constraint.inner if isinstance(constraint, Optional) else constraint
    return inner.names() if isinstance(inner, Choice) else ()


def params_to_json(params: dict, table: dict | None = None) -> dict:
    """The saved parameters: runtime-only ones (saved=False) as their defaults, the rest as plain JSON
    that the table accepts; an object (a loss or miner instance) raises TypeError naming the fix."""
    table = PARAMETERS if table is None else table
    out = {}
    for name, param in table.items():
        value = params[name] if param.saved else param.default
        if name == "random_state" and isinstance(value, np.random.RandomState):
            value = None  # a RandomState has no JSON form; the fitted weights do not depend on it any more
        try:
            out[name] = json_safe(value, name)
            param.constraint.check(name, out[name])
        except (TypeError, ValueError):
            names = _names(param.constraint)
            named = f"a named {name} (one of {names})" if names else f"{name}={param.default!r}"
            raise TypeError(
                f"{name}={value!r} cannot be saved: a model directory keeps settings as JSON, not objects. "
                f"Pass {named}, or keep this model with pickle or joblib, which store objects."
            ) from None
    return out


def classes_to_json(classes) -> dict:
    """classes_ with its exact dtype: bool, ints of every width, floats or str (what `fit` accepts)."""
    arr = np.asarray(classes)
    kind = arr.dtype.kind
    if arr.ndim == 1 and kind == "b":
        return {"dtype": arr.dtype.str, "values": [bool(v) for v in arr]}
    if arr.ndim == 1 and kind in "iu":
        return {"dtype": arr.dtype.str, "values": [int(v) for v in arr]}
    if arr.ndim == 1 and kind == "f":
        return {"dtype": arr.dtype.str, "values": [float(v) for v in arr]}
    if arr.ndim == 1 and kind == "U":
        return {"dtype": arr.dtype.str, "values": [str(v) for v in arr]}
    raise TypeError(
        f"classes_ of dtype {arr.dtype} cannot be saved; fit the model with int, bool, float or str labels."
    )


# Format version that first stored each parameter added after version 2 (older configs lack it).
PARAMETER_SINCE = {"tangent_metric": 3}


# -- loading: the parameters ---------------------------------------------------------------------------
def read_params(raw, version: int, table: dict | None = None) -> dict:
    """Checked keyword arguments for the estimator. A config of an older format version may lack the
    parameters added since (they take their defaults, which reproduce the older behaviour); any other
    missing or unknown name is refused; runtime-only parameters always take their defaults."""
    table = PARAMETERS if table is None else table
    _want(isinstance(raw, dict), f"params must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(table))
    _want(not unknown, f"unknown parameter(s) {unknown[:5]}")
    params = {}
    for name, param in table.items():
        _want(name in raw or version < PARAMETER_SINCE.get(name, 2), f"parameter {name!r} is missing")
        value = raw.get(name, param.default)
        if isinstance(param.default, tuple) and isinstance(value, list):
            value = tuple(value)
        try:
            param.constraint.check(name, value)
        except (TypeError, ValueError) as exc:
            raise InvalidModel(f"params: {exc}") from None
        params[name] = value if param.saved else param.default
    try:
        check_params(params)
    except (TypeError, ValueError) as exc:
        raise InvalidModel(f"params: {exc}") from None
    return params


# -- loading: classes_ ---------------------------------------------------------------------------------
def classes_from_json(data, version: int) -> np.ndarray:
    """classes_ in its saved dtype, refused unless it is what `fit` makes: >= 2 sorted distinct labels."""
    _want(isinstance(data, dict), "fitted.classes_ must be an object")
    _want(isinstance(data.get("values"), list), "fitted.classes_.values must be a list")
    values = data["values"]
    if version == 1:
        dtype = _v1_dtype(data.get("kind"), values)
    else:
        _want(set(data) == {"dtype", "values"}, "fitted.classes_ needs exactly 'dtype' and 'values'")
        _want(
            isinstance(data["dtype"], str) and _CLASS_DTYPE.fullmatch(data["dtype"]) is not None,
            f"fitted.classes_.dtype {data.get('dtype')!r} is not a label dtype norank saves",
        )
        dtype = np.dtype(data["dtype"])
    _want(len(values) >= 2, f"fitted.classes_ holds {len(values)} label(s); a fitted model has at least 2")
    _check_label_values(values, dtype)
    arr = np.array(values, dtype=dtype)
    _want(all(a < b for a, b in zip(arr[:-1], arr[1:], strict=True)), "fitted.classes_ is not sorted and distinct")
    return arr


def _v1_dtype(kind, values) -> np.dtype:
    _want(kind in ("int", "float", "str"), f"fitted.classes_.kind {kind!r} is not int, float or str")
    if kind == "float":
        return np.dtype(np.float64)
    if kind == "str":
        _want(all(isinstance(v, str) for v in values), "fitted.classes_ of kind str holds non-strings")
        return np.dtype(f"<U{max([1, *map(len, values)])}")
    _want(all(_is_int(v) for v in values), "fitted.classes_ of kind int holds non-integers")
    fits_signed = all(-(2**63) <= v < 2**63 for v in values)
    return np.dtype(np.int64 if fits_signed or not values else np.uint64)


def _check_label_values(values: list, dtype: np.dtype) -> None:
    kind, where = dtype.kind, "fitted.classes_"
    if kind == "b":
        _want(all(isinstance(v, bool) for v in values), f"{where} of dtype bool holds non-booleans")
    elif kind in "iu":
        info = np.iinfo(dtype)
        _want(
            all(_is_int(v) and info.min <= v <= info.max for v in values),
            f"{where} holds values that are not integers in the range of {dtype}",
        )
    elif kind == "f":
        ok = all(_is_number(v) and abs(v) < 1e308 and math.isfinite(float(v)) for v in values)
        _want(ok, f"{where} holds values that are not finite numbers")
        with np.errstate(over="ignore"):
            exact = all(float(dtype.type(v)) == v for v in values)
        _want(exact, f"{where} holds values that {dtype} cannot represent exactly")
    else:
        _want(all(isinstance(v, str) for v in values), f"{where} of dtype {dtype} holds non-strings")
        _want(dtype.itemsize // 4 == max(1, *map(len, values)), f"{where}.dtype does not fit its values")


# -- loading: fitted and preprocessing state -----------------------------------------------------------
def _shape(value, where: str) -> tuple:
    _want(
        isinstance(value, list) and 1 <= len(value) <= _MAX_DIMS and all(_is_int(s) and s >= 1 for s in value),
        f"{where} must be a list of 1 to {_MAX_DIMS} positive integers",
    )
    return tuple(value)


def read_fitted(raw, params: dict, version: int, encoders: tuple) -> dict:
    """The fitted attributes, classes_ decoded; each checked alone and against the parameters."""
    _want(isinstance(raw, dict), f"fitted must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(FITTED_KEYS))
    _want(not unknown, f"unknown fitted attribute(s) {unknown[:5]}")
    old = version == 1 and params["encoder"] != "auto"  # early version-1 models did not record the kind
    defaults = {"encoder_kind_": params["encoder"], "encoder_selection_": {}} if old else {}
    missing = [k for k in FITTED_KEYS if k not in raw and k not in defaults]
    _want(not missing, f"fitted attribute(s) {missing} missing")
    fitted = {**defaults, **raw}
    fitted["classes_"] = classes_from_json(raw["classes_"], version)
    shape = fitted["input_shape_"] = _shape(raw["input_shape_"], "fitted.input_shape_")
    _want(
        fitted["n_features_in_"] == math.prod(shape) and _is_int(fitted["n_features_in_"]),
        f"fitted.n_features_in_ {fitted['n_features_in_']!r} is not the size of input_shape_ {shape}",
    )
    n_epochs = fitted["n_epochs_"]
    _want(
        _is_int(n_epochs) and 1 <= n_epochs <= params["epochs"],
        f"fitted.n_epochs_ {n_epochs!r} is not an epoch count in [1, epochs={params['epochs']}]",
    )
    _check_history(fitted["history_"], n_epochs)
    _want(
        fitted["encoder_kind_"] in encoders,
        f"fitted.encoder_kind_ {fitted['encoder_kind_']!r} is not one of {encoders}",
    )
    _want(params["encoder"] in ("auto", fitted["encoder_kind_"]), "fitted.encoder_kind_ disagrees with params.encoder")
    selection = fitted["encoder_selection_"]
    _want(
        isinstance(selection, dict)
        and all(k in encoders and (v is None or _is_number(v)) for k, v in selection.items()),
        "fitted.encoder_selection_ must map encoder names to scores or null",
    )
    return fitted


def _check_history(history, n_epochs: int) -> None:
    _want(isinstance(history, dict) and "loss" in history, "fitted.history_ must be an object with a 'loss' list")
    for key, values in history.items():
        _want(
            isinstance(values, list) and len(values) == n_epochs,
            f"fitted.history_[{key!r}] must be a list of n_epochs_={n_epochs} entries",
        )
        _want(all(v is None or _is_number(v) for v in values), f"fitted.history_[{key!r}] holds non-numbers")


def read_preprocessing(raw, params: dict, fitted: dict, normalizations: tuple, metrics: tuple) -> tuple[dict, dict]:
    """(checked preprocessing state, {array: (dtypes, shape)} of every preprocessing array it implies)."""
    _want(isinstance(raw, dict), f"preprocessing must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(PREPROCESSING_KEYS))
    _want(not unknown, f"unknown preprocessing field(s) {unknown[:5]}")
    # Fields added since version 1 began: principal components, then the tangent space.
    state = {"n_components": None, "tangent_metric": metrics[0], **raw}
    missing = [k for k in PREPROCESSING_KEYS if k not in state]
    _want(not missing, f"preprocessing field(s) {missing} missing")
    norm = state["normalization"]
    _want(
        norm in normalizations and norm == params["normalization"],
        f"preprocessing.normalization {norm!r} is unknown or disagrees with the parameters",
    )
    pairs = [
        ("symmetric", "symmetric"),
        ("fisher_z", "fisher_z"),
        ("n_components", "pca_components"),
        ("tangent_metric", "tangent_metric"),
    ]
    for key, param in pairs:
        want = params.get(param, state[key])  # tangent_metric may not be a parameter
        _want(
            type(state[key]) is type(want) and state[key] == want,
            f"preprocessing.{key} {state[key]!r} disagrees with params.{param} {want!r}",
        )
    _want(state["tangent_metric"] in metrics, f"preprocessing.tangent_metric {state['tangent_metric']!r} is unknown")
    clip = state["fisher_clip"]
    _want(_is_number(clip) and 0 < clip < 1, f"preprocessing.fisher_clip {clip!r} must lie in (0, 1)")
    shape = state["input_shape_"] = _shape(state["input_shape_"], "preprocessing.input_shape_")
    _want(shape == fitted["input_shape_"], "preprocessing.input_shape_ disagrees with fitted.input_shape_")
    width = _width(state, params)
    k = state["n_components"]
    _want(
        state["n_features_"] == (width if k is None else k) and _is_int(state["n_features_"]),
        f"preprocessing.n_features_ {state['n_features_']!r} disagrees with the input shape and components",
    )
    floats = ("F32", "F64")  # statistics were float32 before they were kept in float64
    arrays: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
        "mean_": (floats, (state["n_features_"],)),
        "scale_": (floats, (state["n_features_"],)),
    }
    if k is not None:
        _want(k <= width, f"preprocessing.n_components {k} exceeds the {width} features")
        arrays.update(pca_mean_=(floats, (width,)), pca_components_=(("F32",), (width, k)))
    if norm == "tangent":
        arrays["tangent_reference_"] = (("F64",), (shape[0], shape[0]))
    return state, arrays


def _width(state: dict, params: dict) -> int:
    """Features per sample before principal components, from the input shape and the symmetric decision."""
    shape, sym = state["input_shape_"], state["symmetric_"]
    square = len(shape) == 2 and shape[0] == shape[1] >= 2
    _want(
        isinstance(sym, bool) and (not sym or square),
        "preprocessing.symmetric_ must be a boolean, true only for square matrices",
    )
    if state["normalization"] == "tangent":
        _want(sym and not params["fisher_z"], "preprocessing for the tangent space needs whole square matrices")
        return shape[0] * (shape[0] + 1) // 2
    _want(
        sym or (params["symmetric"] is not True and not params["fisher_z"]),
        "preprocessing.symmetric_ is false, but the parameters ask for the upper triangle",
    )
    return shape[0] * (shape[0] - 1) // 2 if sym else math.prod(shape)
