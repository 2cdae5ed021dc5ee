"""Persistence: saves that never lose a model (a real saving process killed at every step), loads that trust
nothing (tampered, inconsistent and adversarial files), classes_ dtypes, and models of format version 1."""

import json
import os
import signal
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from norank import NoRankEmbedder

TINY = dict(hidden_layer_sizes=(8,), embedding_dim=4, epochs=1, batch_size=12, encoder="mlp")
DATA = Path(__file__).parent / "data" / "model_v1"
needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="needs fork and /proc")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3, 4)).astype(np.float32)
    return X, np.repeat(np.arange(3), 8)


@pytest.fixture(scope="module")
def model_a(data):
    return NoRankEmbedder(**TINY, random_state=0).fit(*data)


@pytest.fixture(scope="module")
def model_b(data):
    """Another model: other sizes (numpy ints, as in the issue's reproducer), other labels and their dtype."""
    X, y = data
    params = {**TINY, "hidden_layer_sizes": (np.int64(16),), "embedding_dim": np.int64(4)}
    return NoRankEmbedder(**params, random_state=1).fit(X, (y + 10).astype(np.uint8))


def same_model(loaded, ref, X) -> bool:
    """Bitwise the same model: embeddings, classes_ with their dtype, parameters and history."""
    return (
        np.array_equal(loaded.transform(X), ref.transform(X))
        and loaded.classes_.dtype == ref.classes_.dtype
        and np.array_equal(loaded.classes_, ref.classes_)
        and loaded.get_params() == ref.get_params()
        and loaded.history_ == ref.history_
    )


def read_config(folder) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


def write_config(folder, config) -> None:
    (Path(folder) / "config.json").write_text(json.dumps(config))


# -- 1. atomic save ----------------------------------------------------------------------------------
def test_issue_reproducer_numpy_sizes_saved_over_a_model(model_a, model_b, data, tmp_path):
    model_a.save(tmp_path / "m")
    model_b.save(tmp_path / "m")
    loaded = NoRankEmbedder.load(tmp_path / "m")
    assert same_model(loaded, model_b, data[0])
    assert loaded.hidden_layer_sizes == (16,) and type(loaded.hidden_layer_sizes[0]) is int
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary folder or backup left behind


class LossObject:
    def __call__(self, embeddings, labels):
        return embeddings.sum()


@pytest.mark.parametrize("name", ["loss", "miner"])
def test_an_object_that_cannot_be_stored_is_refused_before_anything_is_written(model_a, data, tmp_path, name):
    model_a.save(tmp_path / "m")
    before = {p: (tmp_path / "m" / p).read_bytes() for p in os.listdir(tmp_path / "m")}
    bad = NoRankEmbedder.load(tmp_path / "m").set_params(**{name: LossObject()})
    with pytest.raises(TypeError, match=rf"{name}=.*cannot be saved.*Pass .*{name}.*pickle or joblib"):
        bad.save(tmp_path / "m")
    assert {p: (tmp_path / "m" / p).read_bytes() for p in os.listdir(tmp_path / "m")} == before
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert same_model(NoRankEmbedder.load(tmp_path / "m"), model_a, data[0])


def test_runtime_only_parameters_are_stored_as_their_defaults(model_a, data, tmp_path):
    import pickle

    est = pickle.loads(pickle.dumps(model_a)).set_params(
        callbacks=[lambda epoch, logs: None],
        checkpoint_dir=tmp_path / "ckpt",
        verbose=1,
        margin=np.float32(2.0),
        random_state=np.random.RandomState(0),
    )
    est.save(tmp_path / "m")
    params = read_config(tmp_path / "m")["params"]
    stored = [params[k] for k in ("callbacks", "checkpoint_dir", "verbose", "random_state")]
    assert stored == [None, None, 0, None]
    loaded = NoRankEmbedder.load(tmp_path / "m")
    assert loaded.margin == 2.0 and loaded.callbacks is None and loaded.verbose == 0
    assert np.array_equal(loaded.transform(data[0]), model_a.transform(data[0]))


def test_save_never_replaces_a_folder_of_other_files(model_a, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        model_a.save(folder)
    assert os.listdir(folder) == ["notes.txt"] and sorted(os.listdir(tmp_path)) == ["results"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        model_a.save(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    model_a.save(tmp_path / "empty")  # an empty folder is fine
    assert sorted(os.listdir(tmp_path / "empty")) == ["config.json", "weights.safetensors"]


_STEPS = ("mkdir", "open", "write", "fsync", "rename", "unlink", "rmdir")


def _save_in_child_killed_at(model, target, step: int) -> tuple[bool, int]:
    """Fork a process that saves `model` to `target` and SIGKILLs itself at its `step`-th file-system call
    (a write is cut in half first); step 0 never kills. Returns (killed, calls made when it finished)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the saving process
        status = 1
        try:
            real_write, calls = os.write, [0]

            def hooked(name, real):
                def call(*args, **kwargs):
                    calls[0] += 1
                    if calls[0] == step:
                        if name == "write":
                            real(args[0], bytes(args[1])[: len(args[1]) // 2])
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)

                return call

            for name in _STEPS:
                setattr(os, name, hooked(name, getattr(os, name)))
            model.save(target)
            real_write(write_end, str(calls[0]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    calls = os.read(read_end, 32)
    os.close(read_end)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed or os.WEXITSTATUS(status) == 0
    return killed, int(calls) if calls else -1


@needs_fork
def test_a_save_killed_at_every_step_leaves_the_old_model_or_the_new_one(model_a, model_b, data, tmp_path):
    X = data[0]
    model_a.save(tmp_path / "count" / "m")
    killed, n_calls = _save_in_child_killed_at(model_b, tmp_path / "count" / "m", 0)
    assert not killed and n_calls > 10
    outcomes, target_was_absent = [], False
    for step in range(1, n_calls + 1):
        target = tmp_path / str(step) / "m"
        model_a.save(target)
        killed, _ = _save_in_child_killed_at(model_b, target, step)
        assert killed
        target_was_absent |= not target.exists()
        loaded = NoRankEmbedder.load(target)
        outcome = "old" if same_model(loaded, model_a, X) else "new" if same_model(loaded, model_b, X) else "mixed"
        outcomes.append(outcome)
        model_b.save(target)  # the next save removes what the killed one left
        assert os.listdir(target.parent) == ["m"] and same_model(NoRankEmbedder.load(target), model_b, X)
    assert "mixed" not in outcomes, outcomes
    assert {"old", "new"} == set(outcomes) and target_was_absent  # both sides and the backup fallback were reached


def test_load_ignores_a_killed_saves_folder_and_reads_its_backup(model_a, model_b, data, tmp_path):
    model_a.save(tmp_path / "m")
    model_b.save(tmp_path / "other")
    os.rename(tmp_path / "other", tmp_path / ".m.tmp-999999999-abc")  # an unfinished save
    assert same_model(NoRankEmbedder.load(tmp_path / "m"), model_a, data[0])
    os.rename(tmp_path / "m", tmp_path / ".m.old-999999999-def")  # killed between its two renames
    assert same_model(NoRankEmbedder.load(tmp_path / "m"), model_a, data[0])
    with pytest.raises(FileNotFoundError, match="No model at"):
        NoRankEmbedder.load(tmp_path / "absent")


def _spd(n, r, rng):
    A = rng.normal(size=(n, r, 2 * r))
    return (A @ A.transpose(0, 2, 1) / (2 * r)).astype(np.float64)


def _correlations(n, r, rng):
    C = _spd(n, r, rng)
    d = np.sqrt(np.einsum("nii->ni", C))
    return C / d[:, :, None] / d[:, None, :]


VARIANTS = {
    "conv": (lambda rng: rng.normal(size=(24, 8, 8)), dict(encoder="conv")),
    "transformer": (lambda rng: rng.normal(size=(24, 3, 4)), dict(encoder="transformer")),
    "mlp extras": (
        lambda rng: rng.normal(size=(24, 3, 4)),
        dict(layer_norm=True, dropout=0.2, projection_head=True, hidden_layer_sizes=(8, 6)),
    ),
    "pca, feature": (lambda rng: rng.normal(size=(24, 3, 4)), dict(pca_components=5, normalization="feature")),
    "fisher z": (lambda rng: _correlations(24, 5, rng), dict(symmetric=True, fisher_z=True)),
    "tangent": (lambda rng: _spd(24, 4, rng), dict(normalization="tangent")),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_encoder_and_preprocessing_round_trips_bitwise(tmp_path, variant):
    make, extra = VARIANTS[variant]
    X = make(np.random.default_rng(0))
    y = np.repeat(np.arange(3), 8)
    est = NoRankEmbedder(**{**TINY, **extra}, random_state=0).fit(X, y)
    assert same_model(NoRankEmbedder.load(est.save(tmp_path / "m")), est, X)


# -- 2. loading that trusts nothing --------------------------------------------------------------------
LABELS = {
    "int8": np.array([-5, 0, 7], np.int8),
    "int16": np.array([-300, 0, 300], np.int16),
    "int32": np.array([-(2**31), 0, 2**31 - 1], np.int32),
    "int64": np.array([-(2**63), 0, 2**63 - 1], np.int64),
    "uint8": np.array([0, 1, 255], np.uint8),
    "uint16": np.array([0, 1, 65535], np.uint16),
    "uint32": np.array([0, 1, 2**32 - 1], np.uint32),
    "uint64": np.array([2**63, 2**63 + 1, 2**64 - 1], np.uint64),
    "bool": np.array([False, True]),
    "float16": np.array([-1.5, 0.1, 65504.0], np.float16),
    "float32": np.array([-1e30, 0.1, 3.5], np.float32),
    "float64": np.array([-1e300, 5e-324, 0.1], np.float64),
    "str": np.array(["", "cat", "ünïcode"]),
    "object of str": np.array(["a", "bb", "ccc"], dtype=object),  # fit keeps them as str
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_classes_round_trip_with_their_dtype(data, tmp_path, kind):
    X, y = data
    labels = LABELS[kind]
    y = labels[np.arange(len(y)) % len(labels)]
    est = NoRankEmbedder(**TINY, random_state=0).fit(X, y)
    assert np.array_equal(est.classes_, labels) and est.classes_.dtype.kind == (labels.dtype.kind.replace("O", "U"))
    loaded = NoRankEmbedder.load(est.save(tmp_path / "m"))
    assert loaded.classes_.dtype == est.classes_.dtype and np.array_equal(loaded.classes_, est.classes_)
    assert [type(v) for v in loaded.classes_] == [type(v) for v in est.classes_]


@pytest.mark.parametrize("name", ["first", "last"])
def test_models_of_format_version_1_keep_loading(name):
    expected = np.load(DATA / name / "expected.npz")
    loaded = NoRankEmbedder.load(DATA / name / "model")
    assert loaded.classes_.dtype == expected["classes"].dtype and np.array_equal(loaded.classes_, expected["classes"])
    # Preprocessing now keeps float64 statistics, so embeddings agree to float32 rounding, not bitwise.
    np.testing.assert_allclose(loaded.transform(expected["X"]), expected["Z"], atol=1e-6)


def _tamper(folder, edit) -> None:
    config = read_config(folder)
    edit(config)
    write_config(folder, config)


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _delete(*path):
    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


def _nest(config):
    config["fitted"]["history_"]["loss"] = "NEST"


TAMPERED = {
    "classes_ missing": (_delete("fitted", "classes_"), "classes_.*missing"),
    "classes_ one short": (lambda c: c["fitted"]["classes_"]["values"].pop(), "weights were saved for 3 classes"),
    "classes_ one extra": (lambda c: c["fitted"]["classes_"]["values"].append(99), "weights were saved for 3 classes"),
    "classes_ unsorted": (_set("fitted", "classes_", "values", [2, 1, 0]), "not sorted"),
    "classes_ overflow": (_set("fitted", "classes_", "values", [0, 1, 2**70]), "range of int64"),
    "fitted a list": (_set("fitted", []), "fitted must be an object"),
    "input_shape_ other size": (
        lambda c: (
            _set("fitted", "input_shape_", [3, 5])(c),
            _set("fitted", "n_features_in_", 15)(c),
            _set("preprocessing", "input_shape_", [3, 5])(c),
            _set("preprocessing", "n_features_", 15)(c),
        ),
        "implies F32/F64 \\[15\\]",
    ),
    "input_shape_ vs preprocessing": (_set("fitted", "input_shape_", [4, 3]), "disagrees with fitted.input_shape_"),
    "unknown normalization": (
        lambda c: (_set("params", "normalization", "zscore")(c), _set("preprocessing", "normalization", "zscore")(c)),
        "normalization",
    ),
    "normalization mismatch": (_set("preprocessing", "normalization", "none"), "normalization"),
    "unknown parameter": (_set("params", "hidden_layers", [8]), "unknown parameter"),
    "parameter missing": (_delete("params", "margin"), "'margin' is missing"),
    "parameter out of range": (_set("params", "learning_rate", -1.0), "learning_rate"),
    "parameter of another type": (_set("params", "epochs", "1"), "epochs"),
    "loss object stored": (_set("params", "loss", {"class": "os.system"}), "loss"),
    "n_epochs_ beyond epochs": (_set("fitted", "n_epochs_", 5), "n_epochs_"),
    "history of another length": (_set("fitted", "history_", "loss", [1.0, 2.0]), "history_"),
    "unknown encoder kind": (_set("fitted", "encoder_kind_", "resnet"), "encoder_kind_"),
    "wider layers": (_set("params", "hidden_layer_sizes", [30, 30]), "config implies"),
    "weights record wrong": (_set("weights", "sha256", "0" * 64), "SHA-256"),
    "newer format": (_set("format_version", 4), "format version 4"),
    "another estimator": (_set("estimator", "NoRankClassifier"), "load it with NoRankClassifier.load"),
    "deep nesting": (_nest, "nested"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_load_refuses_tampered_or_inconsistent_configs(model_a, tmp_path, case):
    edit, match = TAMPERED[case]
    model_a.save(tmp_path / "m")
    _tamper(tmp_path / "m", edit)
    if case == "deep nesting":
        text = (tmp_path / "m" / "config.json").read_text().replace('"NEST"', "[" * 100_000 + "]" * 100_000)
        (tmp_path / "m" / "config.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        NoRankEmbedder.load(tmp_path / "m")


def test_load_refuses_weights_from_another_save(data, tmp_path):
    X, y = data
    one = NoRankEmbedder(**TINY, random_state=0).fit(X, y).save(tmp_path / "one")
    two = NoRankEmbedder(**TINY, random_state=1).fit(X, y).save(tmp_path / "two")
    (one / "weights.safetensors").write_bytes((two / "weights.safetensors").read_bytes())  # same shapes
    with pytest.raises(ValueError, match="not the file this config was saved with"):
        NoRankEmbedder.load(one)


def _rewrite_header(folder, edit) -> None:
    raw = (Path(folder) / "weights.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (Path(folder) / "weights.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def test_load_checks_the_weights_header_against_the_config(model_a, tmp_path):
    model_a.save(tmp_path / "m")
    _rewrite_header(tmp_path / "m", lambda h: h["encoder.body.0.weight"].update(shape=[8, 13]))
    with pytest.raises(ValueError, match="data offsets that disagree"):
        NoRankEmbedder.load(tmp_path / "m")
    model_a.save(tmp_path / "m")
    _rewrite_header(tmp_path / "m", lambda h: h["encoder.body.0.weight"].update(shape=[12, 8]))
    with pytest.raises(ValueError, match=r"encoder.body.0.weight is F32 \[12, 8\].*implies F32 \[8, 12\]"):
        NoRankEmbedder.load(tmp_path / "m")
    model_a.save(tmp_path / "n")
    _rewrite_header(tmp_path / "n", lambda h: h["encoder.body.0.weight"].update(dtype="I32"))
    with pytest.raises(ValueError, match="encoder.body.0.weight is I32"):
        NoRankEmbedder.load(tmp_path / "n")
    (tmp_path / "n" / "weights.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(ValueError, match="header longer than the file"):
        NoRankEmbedder.load(tmp_path / "n")


@needs_fork
def test_refusing_a_config_that_asks_for_huge_layers_costs_no_memory(model_a, tmp_path):
    """The issue's 2 KB config with hidden_layer_sizes [30000, 30000] made load allocate 3.9 GB first."""
    model_a.save(tmp_path / "m")
    _tamper(tmp_path / "m", _set("params", "hidden_layer_sizes", [30000, 30000]))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:

            def kib(field):
                line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field))
                return int(line.split()[1])

            before = kib("VmRSS:")
            try:
                NoRankEmbedder.load(tmp_path / "m")
                message = "loaded"
            except ValueError as exc:
                message = str(exc)
            os.write(write_end, json.dumps([kib("VmHWM:") - before, message]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    os.waitpid(pid, 0)
    grown_kib, message = json.loads(os.read(read_end, 4096))
    os.close(read_end)
    assert "config implies" in message
    assert grown_kib < 100 * 1024, f"refusing the file raised peak memory by {grown_kib / 1024:.0f} MiB"


def test_load_arguments_of_the_wrong_type(model_a, tmp_path):
    model_a.save(tmp_path / "m")
    with pytest.raises(TypeError, match="path="):
        NoRankEmbedder.load(3)
    with pytest.raises(TypeError, match="device="):
        NoRankEmbedder.load(tmp_path / "m", device=0)
    with pytest.raises(ValueError, match="device="):
        NoRankEmbedder.load(tmp_path / "m", device="tpu")


# -- 3. property-based: random mutations of a saved model ------------------------------------------------

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 2**63, 1e308, 30000, "sample", "mlp", "F32", ""])
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def saved(model_a, tmp_path_factory):
    folder = model_a.save(tmp_path_factory.mktemp("saved") / "m")
    return read_config(folder), (folder / "weights.safetensors").read_bytes()


def _mutate(draw, node, depth=0):
    """Apply one random edit somewhere inside the JSON `node` (a dict or list), in place."""
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if keys and depth < 6 and draw(st.booleans()):
        key = draw(st.sampled_from(keys))
        if isinstance(node[key], (dict, list)):
            return _mutate(draw, node[key], depth + 1)
    op = draw(st.sampled_from(["replace", "delete", "insert", "nest"] if keys else ["insert"]))
    if op == "insert":
        if isinstance(node, dict):
            node[draw(st.text(max_size=6))] = draw(JSON)
        else:
            node.insert(draw(st.integers(0, len(node))), draw(JSON))
        return
    key = draw(st.sampled_from(keys))
    if op == "delete":
        del node[key]
    elif op == "replace":
        node[key] = draw(JSON)
    else:
        node[key] = "__NEST__"  # replaced by deeply nested brackets in the text


def _nest_text(text: str, depth: int) -> str:
    return text.replace('"__NEST__"', "[" * depth + "1" + "]" * depth)


def _load_or_refuse(folder, X) -> None:
    """Only the documented exceptions; a model that loads gives finite unit-norm rows."""
    try:
        loaded = NoRankEmbedder.load(folder)
    except (ValueError, FileNotFoundError):
        event("refused")
        return
    event("loaded")
    Z = loaded.transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


@PROPERTY
@given(st.data(), st.integers(1, 5000))
def test_load_survives_random_mutations_of_the_config(saved, data, tmp_path_factory, draw_data, depth):
    config, weights = json.loads(json.dumps(saved[0])), saved[1]
    _mutate(draw_data.draw, config)
    folder = tmp_path_factory.mktemp("config")
    (folder / "config.json").write_text(_nest_text(json.dumps(config), depth))
    (folder / "weights.safetensors").write_bytes(weights)
    _load_or_refuse(folder, data[0])


@PROPERTY
@given(st.data(), st.integers(1, 5000), st.sampled_from(["json", "length", "bytes"]))
def test_load_survives_random_mutations_of_the_weights_header(saved, data, tmp_path_factory, draw_data, depth, how):
    config, weights = saved
    n = struct.unpack("<Q", weights[:8])[0]
    header, rest = json.loads(weights[8 : 8 + n]), weights[8 + n :]
    if how == "json":
        _mutate(draw_data.draw, header)
        text = _nest_text(json.dumps(header), depth).encode()
        blob = struct.pack("<Q", len(text)) + text + rest
    elif how == "length":
        blob = struct.pack("<Q", draw_data.draw(st.integers(0, 2**64 - 1))) + weights[8:]
    else:
        where = draw_data.draw(st.integers(0, 8 + n - 1))
        blob = weights[:where] + bytes([draw_data.draw(st.integers(0, 255))]) + weights[where + 1 :]
    folder = tmp_path_factory.mktemp("header")
    write_config(folder, config)
    (folder / "weights.safetensors").write_bytes(blob)
    _load_or_refuse(folder, data[0])


def test_a_version_2_model_without_the_later_tangent_metric_loads(tmp_path):
    """Parameters added in a later format version take their defaults in older configs, and only there."""
    import json

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)).astype(np.float32), np.repeat(np.arange(4), 10)
    est = NoRankEmbedder(epochs=1, hidden_layer_sizes=(8,), embedding_dim=4, encoder="mlp", random_state=0).fit(X, y)
    folder = est.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["params"]["tangent_metric"]
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 3}))
    with pytest.raises(ValueError, match="tangent_metric"):
        NoRankEmbedder.load(folder)
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 2}))
    loaded = NoRankEmbedder.load(folder)
    assert loaded.tangent_metric == "riemann"
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
