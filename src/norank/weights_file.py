"""The weights file (safetensors) read without trusting it.

`read_header` parses the header alone and checks that its entries tile the data exactly, so tensor names,
dtypes and shapes can be compared with what the config implies (`compare_tensors`) before any tensor is
read; `read_weights` then checks the bytes against the hash the config pinned and refuses NaN or infinity.
A refusal is an `InvalidModel` naming the tensor.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from norank.model_schema import _want, parse_json

WEIGHTS_FILE = "weights.safetensors"
MAX_HEADER_BYTES = 100 * 1024**2  # safetensors' own limit
_ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}


def read_header(file: Path) -> tuple[dict, dict]:
    """({name: (dtype, shape)}, metadata) of a safetensors file, reading the header only."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        prefix = f.read(8)
        _want(len(prefix) == 8, f"{WEIGHTS_FILE} is too short to hold a safetensors header")
        n = int.from_bytes(prefix, "little")
        _want(n <= min(size - 8, MAX_HEADER_BYTES), f"{WEIGHTS_FILE} declares a header longer than the file")
        header = parse_json(f.read(n), f"the header of {WEIGHTS_FILE}")
    _want(isinstance(header, dict), f"the header of {WEIGHTS_FILE} is not an object")
    metadata = header.pop("__metadata__", None) or {}
    _want(
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()),
        f"the metadata of {WEIGHTS_FILE} must map names to strings",
    )
    entries, spans = {}, []
    for name, entry in header.items():
        _want(
            isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"},
            f"tensor {name!r:.60} of {WEIGHTS_FILE} needs exactly dtype, shape and data_offsets",
        )
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        _want(isinstance(dtype, str) and dtype in _ITEMSIZE, f"tensor {name!r:.60} has an unknown dtype")
        _want(
            isinstance(shape, list) and len(shape) <= 32 and all(_is_count(s) for s in shape),
            f"tensor {name!r:.60} has a malformed shape",
        )
        _want(
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_count(o) for o in offsets)
            and offsets[1] - offsets[0] == math.prod(shape) * _ITEMSIZE[dtype],
            f"tensor {name!r:.60} has data offsets that disagree with its shape",
        )
        entries[name] = (dtype, tuple(shape))
        spans.append(tuple(offsets))
    spans.sort()
    ends = [0] + [e for _, e in spans]
    _want(
        all(b == e for (b, _), e in zip(spans, ends, strict=False)) and ends[-1] == size - 8 - n,
        f"the tensors of {WEIGHTS_FILE} do not tile its data exactly",
    )
    return entries, metadata


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def dtype_name(dtype) -> str:
    """The safetensors name of a torch dtype (what the header says for a tensor of that dtype)."""
    import torch

    names = {
        torch.float64: "F64",
        torch.float32: "F32",
        torch.float16: "F16",
        torch.bfloat16: "BF16",
        torch.int64: "I64",
        torch.int32: "I32",
        torch.uint8: "U8",
        torch.bool: "BOOL",
    }
    return names.get(dtype, str(dtype))


def compare_tensors(header: dict, expected: dict) -> None:
    """Refuse a header whose tensors are not exactly `expected` ({name: (allowed dtypes, shape)})."""
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    _want(not missing, f"{WEIGHTS_FILE} lacks tensor(s) {missing[:3]} that the config implies")
    _want(not extra, f"{WEIGHTS_FILE} holds tensor(s) {[e[:60] for e in extra[:3]]} that the config does not describe")
    for name, (dtypes, shape) in expected.items():
        have = header[name]
        _want(
            have[0] in dtypes and have[1] == shape,
            f"tensor {name} is {have[0]} {list(have[1])} in {WEIGHTS_FILE}, "
            f"but the config implies {'/'.join(dtypes)} {list(shape)} (input_shape_ or layer sizes differ)",
        )


def read_weights(file: Path, record, version: int) -> dict:
    """Every tensor of `file`, once its bytes match the config's hash record (format 2 on) and all are finite."""
    from safetensors.torch import load as deserialise

    blob = file.read_bytes()
    if version >= 2:
        _want(isinstance(record, dict) and set(record) == {"sha256", "bytes"}, "the weights record is malformed")
        _want(
            record["bytes"] == len(blob) and record["sha256"] == hashlib.sha256(blob).hexdigest(),
            f"{WEIGHTS_FILE} is not the file this config was saved with (its SHA-256 differs)",
        )
    tensors = deserialise(blob)
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    _want(not bad, f"tensor(s) {bad[:3]} hold NaN or infinity")
    return tensors
