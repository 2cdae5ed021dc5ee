"""Model directories: a save that never loses a model, a load that trusts nothing.

A model is a folder with config.json (settings, fitted state, the SHA-256 of the weights) and
weights.safetensors (every tensor; safetensors, so loading never unpickles anything).

Saving makes everything JSON-safe and serialises the weights in memory first, so a value that cannot be
stored raises before any byte is written; `norank.model_dir` then replaces the folder atomically (a kill
at any instant leaves the old model or the new one, whole).

Loading checks config.json against the schema (`norank.model_schema`), reads only the header of the
weights file (`norank.weights_file`) and compares every tensor's name, dtype and shape with what the
config implies (modules are laid out on torch's meta device, which allocates nothing), then checks the
file's hash: a refused file costs memory in proportion to its own size. Only ValueError, TypeError
(arguments of the wrong type) and FileNotFoundError leave `load`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from norank.model_dir import as_path, locate, replace_folder
from norank.model_schema import (
    InvalidModel,
    _want,
    classes_to_json,
    json_safe,
    params_to_json,
    parse_json,
    read_fitted,
    read_params,
    read_preprocessing,
)
from norank.weights_file import WEIGHTS_FILE, compare_tensors, dtype_name, read_header, read_weights

MODEL_FORMAT = "norank-model"
MODEL_FORMAT_VERSION = 3  # 2: classes_ keep their dtype; the config pins the weights by hash; 3: tangent_metric
READABLE_VERSIONS = (1, 2, 3)
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 256 * 1024**2


class _NotAModel(ValueError):
    """A refusal whose message is complete (not a model folder, another format or version)."""


@dataclass(frozen=True)
class HeadSpec:
    """How a classifier keeps its head beside the embedding: `shapes(config, params, fitted)` gives the
    (dtype, shape) of each array the head config implies (raising InvalidModel), `restore(est, config,
    arrays)` sets the head on a loaded estimator. Arrays are stored as 'classifier.<name>'."""

    shapes: Callable[[dict, dict, dict], dict]
    restore: Callable[[object, dict, dict], None]


# -- saving ------------------------------------------------------------------------------------------
def save_model(est, path, head: tuple[dict, dict] | None = None) -> Path:
    """Write fitted `est` (and a classifier head's (config, arrays)) to the folder `path`, atomically."""
    config, tensors = _embedder_state(est)
    if head is not None:
        import torch

        head_config, arrays = head
        config["head"] = json_safe(head_config, "head")
        tensors.update({f"classifier.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
    return write_model_dir(path, config, tensors, {"n_classes": str(len(est.classes_))})


def _embedder_state(est) -> tuple[dict, dict]:
    import torch

    from norank import __version__

    pre_config, pre_arrays = est.preprocessor_.get_state()
    fitted = {
        "classes_": classes_to_json(est.classes_),
        "input_shape_": json_safe(est.input_shape_, "input_shape_"),
        "n_features_in_": int(est.n_features_in_),
        "n_epochs_": int(est.n_epochs_),
        "history_": json_safe(est.history_, "history_"),
        "encoder_kind_": str(est.encoder_kind_),
        "encoder_selection_": json_safe(est.encoder_selection_, "encoder_selection_"),
    }
    config = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "norank_version": __version__,
        "estimator": type(est).__name__,
        "params": params_to_json(est.get_params()),
        "fitted": fitted,
        "preprocessing": json_safe(pre_config, "preprocessing"),
    }
    tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in est.encoder_.state_dict().items()}
    if est.head_ is not None:
        tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in est.head_.state_dict().items()})
    tensors.update({f"preprocessing.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in pre_arrays.items()})
    return config, tensors


def write_model_dir(path, config: dict, tensors: dict, metadata: dict) -> Path:
    """Serialise in memory (so nothing is written when something cannot be), pin the weights by hash in
    the config, then replace the folder atomically."""
    from safetensors.torch import save as serialise

    blob = serialise(tensors, metadata=metadata)
    config = {**config, "weights": {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}}
    text = json.dumps(config, indent=1).encode("utf-8")
    return replace_folder(path, {WEIGHTS_FILE: blob, CONFIG_FILE: text})


# -- loading -----------------------------------------------------------------------------------------
def load_model(cls, path, device="cpu", head: HeadSpec | None = None):
    """A fitted `cls` read from the folder `path`, every field checked before anything is built."""
    path = as_path(path)
    device = _check_device(device)
    folder = locate(path)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(
            f"{path} is not a norank model directory: it needs {CONFIG_FILE} and {WEIGHTS_FILE}, as written by "
            f"{cls.__name__}.save."
        )
    from safetensors import SafetensorError

    try:
        return _load(cls, folder, device, head)
    except (_NotAModel, FileNotFoundError):
        raise
    except InvalidModel as exc:
        raise ValueError(f"{path} is not a valid norank model: {exc}; save the model again.") from None
    except (
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
        RuntimeError,
        UnicodeError,
        SafetensorError,
        TypeError,
        ValueError,
        OSError,
    ) as exc:
        raise ValueError(f"{path} is not a valid norank model ({type(exc).__name__}: {exc}); save it again.") from None


def _check_device(device):
    import torch

    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device={device!r} must be 'cpu', 'cuda', 'cuda:N' or a torch.device.")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device={device!r} is not a device torch knows; use 'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for CUDA, which is not available here; load with device='cpu'.")
    return device


def _read_config(folder: Path, cls, head: HeadSpec | None) -> tuple[dict, int]:
    file = folder / CONFIG_FILE
    _want(file.stat().st_size <= MAX_CONFIG_BYTES, f"{CONFIG_FILE} is larger than {MAX_CONFIG_BYTES} bytes")
    config = parse_json(file.read_bytes(), CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise _NotAModel(f"{file} does not describe a norank model (missing format {MODEL_FORMAT!r}).")
    version = config.get("format_version")
    if not (isinstance(version, int) and version in READABLE_VERSIONS):
        raise _NotAModel(
            f"{folder} uses model format version {version!r}, but this norank reads versions {READABLE_VERSIONS}; "
            "load it with the norank version that saved it."
        )
    saved_as = config.get("estimator", "NoRankEmbedder")
    if saved_as != cls.__name__:
        raise _NotAModel(
            f"{folder} holds a {saved_as!s:.40}, not a {cls.__name__}; load it with {saved_as!s:.40}.load."
        )
    _want(head is None or "head" in config, f"{CONFIG_FILE} lacks the classifier's head")
    known = {"format", "format_version", "norank_version", "params", "fitted", "preprocessing"}
    known |= {"estimator", "weights"} | ({"head"} if head is not None else set())
    unknown = sorted(set(config) - known)
    _want(not unknown, f"{CONFIG_FILE} has unknown field(s) {unknown[:5]}")
    return config, version


def _load(cls, folder: Path, device, head: HeadSpec | None):
    from norank.encoders import ENCODERS
    from norank.preprocessing import NORMALIZATIONS
    from norank.tangent import DEFAULT_METRIC, METRICS

    config, version = _read_config(folder, cls, head)
    params = read_params(config.get("params"), version)
    fitted = read_fitted(config.get("fitted"), params, version, tuple(ENCODERS))
    metrics = (DEFAULT_METRIC, *[m for m in METRICS if m != DEFAULT_METRIC])  # the default first: older models
    pre_state, pre_arrays = read_preprocessing(
        config.get("preprocessing"), params, fitted, tuple(NORMALIZATIONS), metrics
    )
    expected = {f"preprocessing.{k}": v for k, v in pre_arrays.items()}
    if head is not None:
        head_shapes = head.shapes(config["head"], params, fitted)
        expected.update({f"classifier.{k}": v for k, v in head_shapes.items()})
    header, metadata = read_header(folder / WEIGHTS_FILE)
    modules = _meta_modules(params, fitted, pre_state["n_features_"], len(header))
    for prefix, module in modules.items():
        state = module.state_dict()
        expected.update({f"{prefix}.{k}": ((dtype_name(v.dtype),), tuple(v.shape)) for k, v in state.items()})
    compare_tensors(header, expected)
    n_classes = str(len(fitted["classes_"]))
    _want(
        metadata.get("n_classes", n_classes if version == 1 else None) == n_classes,
        f"fitted.classes_ holds {len(fitted['classes_'])} labels, the weights were saved for "
        f"{metadata.get('n_classes')!s:.20} classes",
    )
    tensors = read_weights(folder / WEIGHTS_FILE, config.get("weights"), version)
    est = _assemble(cls, params, fitted, pre_state, modules, tensors, device)
    if head is not None:
        arrays = {k[len("classifier.") :]: v.numpy() for k, v in tensors.items() if k.startswith("classifier.")}
        head.restore(est, config["head"], arrays)
    return est


def _meta_modules(params: dict, fitted: dict, n_features: int, n_tensors: int) -> dict:
    """The modules the config describes, laid out on torch's meta device: shapes without memory."""
    import torch

    from norank.encoders import ProjectionHead
    from norank.encoders import construct_encoder as encoder_layout  # the modules, left uninitialised

    # Each MLP layer stores two tensors: refuse a layer count the file cannot hold before laying them out.
    _want(
        fitted["encoder_kind_"] == "transformer" or 2 * len(params["hidden_layer_sizes"]) < n_tensors,
        f"params.hidden_layer_sizes has more layers than {WEIGHTS_FILE} holds tensors for",
    )
    try:
        with torch.device("meta"):
            modules = {
                "encoder": encoder_layout(
                    fitted["encoder_kind_"],
                    n_features,
                    fitted["input_shape_"],
                    tuple(params["hidden_layer_sizes"]),
                    params["embedding_dim"],
                    params["dropout"],
                    params["layer_norm"],
                )
            }
            if params["projection_head"]:
                modules["head"] = ProjectionHead(params["embedding_dim"])
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        raise InvalidModel(f"the encoder it describes cannot be built ({exc})") from None
    _want(
        all(t.is_meta for m in modules.values() for t in m.state_dict().values()),
        "the encoder's layout allocated memory",
    )  # a guard: shapes must cost nothing before they are checked
    return modules


def _assemble(cls, params, fitted, pre_state, modules, tensors, device):
    from norank.preprocessing import TensorPreprocessor

    arrays = {k[len("preprocessing.") :]: v.numpy() for k, v in tensors.items() if k.startswith("preprocessing.")}
    _want(bool((arrays["scale_"] > 0).all()), "preprocessing.scale_ holds values that are not positive")
    pre = TensorPreprocessor.from_state({**pre_state, "input_shape_": list(pre_state["input_shape_"])}, arrays)
    for prefix, module in modules.items():
        part = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        module.load_state_dict(part, strict=True, assign=True)
        _want(
            not any(t.is_meta for t in [*module.parameters(), *module.buffers()]),
            f"the {prefix} has state that {WEIGHTS_FILE} does not hold",
        )
        module.to(device).eval()
    est = cls(**params)
    est.classes_ = fitted["classes_"]
    est.input_shape_ = fitted["input_shape_"]
    est.n_features_in_ = fitted["n_features_in_"]
    est.n_epochs_ = fitted["n_epochs_"]
    est.history_ = fitted["history_"]
    est.encoder_kind_ = fitted["encoder_kind_"]
    est.encoder_selection_ = dict(fitted["encoder_selection_"])
    est.preprocessor_ = pre
    est.device_ = device
    est.encoder_ = modules["encoder"]
    est.head_ = modules.get("head")
    return est
