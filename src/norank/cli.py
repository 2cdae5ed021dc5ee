"""The `norank` command line: fit, embed, evaluate, reproduce.

`norank fit` has one option per entry of the parameter table `norank.params.PARAMETERS` (`--margin 0.3`,
`--hidden-layer-sizes 512,256`); the table's constraints parse and check the text, so the options and the
estimator never drift apart. A usage error (unknown option, bad value, missing argument) ends in typer's usage
message and exit status 2; bad input ends in one `error: ...` line and status 2; Ctrl-C in one line and status
130. Output paths are checked before any data is read, so a bad path never costs a training run.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from norank.datasets import NAMES as DATASET_NAMES
from norank.params import PARAMETERS, Param

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=(
        "No-rank tensor decomposition by metric learning: learn an embedding of labelled tensors "
        "(images, connectivity matrices, volumes) where distance follows class similarity.\n\n"
        "DATA is a .npy/.npz/.mat/.h5/.csv file (arrays under the keys X or images, labels under y or "
        f"target) or a dataset name: {', '.join(DATASET_NAMES)}."
    ),
)

DATA_HELP = "A .npy/.npz/.mat/.h5/.csv file (keys X/images and y/target) or a dataset name such as digits."
Y_KEY_HELP = (
    "Key of the labels (default y or target); for a .csv, the label column: a header name or an "
    "index (0 = first column, -1 = last), which also works for a file without a header."
)
INTERRUPTED = 130  # the shell's status for Ctrl-C; typer returns it when a command is interrupted


class CLIError(Exception):
    """A user-facing error: printed as one line."""


def _read_data(data: str, x_key: str | None, y_key: str | None, data_dir: str | None, mmap: bool = False):
    from norank import datasets

    path = Path(data)
    if path.suffix:
        if not path.exists():
            raise CLIError(f"{data}: no such file; pass a .npy/.npz/.mat/.h5/.csv file or a dataset name.")
        kwargs: dict[str, Any] = {"x_key": x_key, "y_key": y_key}
        if mmap and path.suffix == ".npy":
            kwargs["mmap"] = True
        return datasets.load_file(path, **kwargs)
    return datasets.load(data, data_dir=data_dir)


def _check_output(path: Path, flag: str, kind: str) -> Path:
    """Refuse an output path that cannot be written ('dir' or 'file'), before any data is read or trained on."""
    path = Path(path).expanduser()
    if kind == "file" and (path.is_dir() or path.name in ("", ".", "..")):
        raise CLIError(f"{flag} {path} is a directory; give a file name, e.g. {path / 'embeddings.npy'}.")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise CLIError(f"{flag} {path} is an existing file; give a directory (it is created when missing).")
    full = path.absolute()
    existing = next(p for p in (full, *full.parents) if p.exists())
    if existing != full and not existing.is_dir():
        raise CLIError(f"{flag} {path}: {existing} is a file, so nothing can be created under it; choose another path.")
    if not os.access(existing, os.W_OK):
        raise CLIError(f"{flag} {path}: {existing} is not writable; choose another path.")
    return path


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_parser(name: str, param: Param):
    """Text -> value through the table's constraint; a bad value is a usage error that names what is accepted."""

    def parse(text: str):
        try:
            value = param.constraint.parse(text)
            param.constraint.check(name, value)
        except (ValueError, TypeError):
            raise typer.BadParameter(f"{text!r} is not accepted; use {param.constraint.describe()}.") from None
        return value

    return parse


def _reads_registry(constraint) -> bool:
    """Whether describe() reads a part registry, which imports torch: `--help` then leaves the names to the help."""
    inner = getattr(constraint, "inner", constraint)
    return getattr(inner, "registry", None) is not None


def _model_option(name: str, param: Param) -> inspect.Parameter:
    """One `norank fit` option from one table entry; not given means the estimator's default."""
    default = param.default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
    accepted = "" if _reads_registry(param.constraint) else f"accepts {param.constraint.describe()}; "
    option = typer.Option(
        None,
        _flag(name),
        parser=_value_parser(name, param),
        metavar="VALUE",
        help=f"{param.help} ({accepted}default {shown})",
        show_default=False,
        rich_help_panel="Model options",
    )
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Any, default=option)


def _keyword(name: str, annotation, option) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)


def _fit_signature() -> inspect.Signature:
    """DATA, the file and output options, then one option per `cli=True` entry of PARAMETERS."""
    params = [
        inspect.Parameter(
            "data",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=str,
            default=typer.Argument(..., help=DATA_HELP, metavar="DATA", show_default=False),
        ),
        _keyword("out", Path, typer.Option(..., "--out", "-o", help="Directory to write the model to.")),
        _keyword("x_key", str | None, typer.Option(None, help="Key of the samples in the file (default X or images).")),
        _keyword("y_key", str | None, typer.Option(None, help=Y_KEY_HELP)),
        _keyword(
            "data_dir",
            str | None,
            typer.Option(None, help="Folder of local dataset copies (default $NORANK_DATA_DIR)."),
        ),
        _keyword(
            "labels",
            Path | None,
            typer.Option(None, help="A .npy file of labels, for DATA without labels (a .npy array)."),
        ),
    ]
    return inspect.Signature(params + [_model_option(n, p) for n, p in PARAMETERS.items() if p.cli])


def _labels(data: str, ds, labels: Path | None):
    """The labels to fit on: --labels FILE.npy, else the data's own."""
    import numpy as np

    if labels is None:
        if ds.y is None:
            raise CLIError(
                f"{data} holds no labels; store them under the key y or target, pass --y-key (for a "
                ".csv, the label column's name or index) or --labels FILE.npy."
            )
        return ds.y
    if not Path(labels).is_file():
        raise CLIError(f"--labels {labels}: no such file; pass a .npy array with one label per sample.")
    return np.load(labels, allow_pickle=False)


def fit(**kwargs):
    """Train a NoRankEmbedder on DATA and save it to --out. Every model option has a flag."""
    data, out, labels = kwargs.pop("data"), kwargs.pop("out"), kwargs.pop("labels")
    x_key, y_key, data_dir = kwargs.pop("x_key"), kwargs.pop("y_key"), kwargs.pop("data_dir")
    options = {name: value for name, value in kwargs.items() if value is not None}
    _check_output(out, "--out", "dir")
    if options.get("checkpoint_dir") is not None:
        _check_output(options["checkpoint_dir"], "--checkpoint-dir", "dir")
    ds = _read_data(data, x_key, y_key, data_dir, mmap=True)
    y = _labels(data, ds, labels)
    from norank import distributed  # torch is imported only once the paths and the data are known to be good
    from norank.estimator import NoRankEmbedder

    distributed.setup()
    try:
        est = NoRankEmbedder(**options).fit(ds.X, y)
        if distributed.is_main_process():
            est.save(out)
            h = est.history_
            typer.echo(
                f"fitted {len(y)} samples with the {est.encoder_kind_} encoder in {est.n_epochs_} epochs "
                f"(final loss {h['loss'][-1]:.4f}, active anchors {h['active_fraction'][-1]:.2f}); "
                f"model saved to {out}"
            )
        distributed.wait_for_all()
    finally:
        distributed.teardown()


fit.__signature__ = _fit_signature()  # type: ignore[attr-defined]  # inspect (and so typer) reads it
app.command("fit")(fit)


def _npy_path(out: Path) -> Path:
    """np.save's own rule, made visible: a name without .npy gets it appended."""
    out = _check_output(out, "--out", "file")
    return out if out.suffix == ".npy" else out.with_name(out.name + ".npy")


def _model_to_npy_command(name: str, doc: str, model_help: str, out_help: str, run):
    """Register `norank NAME MODEL_DIR DATA --out FILE.npy`, which applies a saved model to DATA.

    `run(model_dir, read)` loads the model, calls `read()` for the samples (so a bad model folder is named
    before any data is read) and returns the array to save and the report line's start.
    """

    def command(
        model_dir: Path = typer.Argument(..., help=model_help),
        data: str = typer.Argument(..., help=DATA_HELP),
        out: Path = typer.Option(..., "--out", "-o", help=out_help),
        x_key: str | None = typer.Option(None, help="Key of the samples in the file."),
        data_dir: str | None = typer.Option(None, help="Folder of local dataset copies."),
    ):
        import numpy as np

        out = _npy_path(out)
        result, report = run(model_dir, lambda: _read_data(data, x_key, None, data_dir, mmap=True).X)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, result, allow_pickle=False)
        typer.echo(f"{report} to {out}")

    command.__doc__ = doc
    return app.command(name)(command)


def _embed(model_dir: Path, read):
    from norank.estimator import NoRankEmbedder

    est = NoRankEmbedder.load(model_dir)
    Z = est.transform(read())
    return Z, f"wrote {Z.shape[0]} × {Z.shape[1]} embeddings"


def _predict(model_dir: Path, read):
    from norank.classifier import NoRankClassifier

    clf = NoRankClassifier.load(model_dir)
    labels = clf.predict(read())
    return labels, f"wrote {len(labels)} predicted labels ({len(clf.classes_)} classes)"


embed = _model_to_npy_command(
    "embed",
    "Embed DATA with a saved model and write the (n, embedding_dim) float32 array to --out.",
    "A model directory written by `norank fit`.",
    "The .npy file to write the embeddings to (not a directory).",
    _embed,
)
predict = _model_to_npy_command(
    "predict",
    "Predict the class of each sample of DATA with a saved NoRankClassifier; write the labels to --out.",
    "A model directory written by NoRankClassifier.save.",
    "The .npy file to write the predicted labels to.",
    _predict,
)


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="A model directory written by `norank fit`."),
    data: str = typer.Argument(..., help=DATA_HELP + " Must hold labels."),
    x_key: str | None = typer.Option(None, help="Key of the samples in the file."),
    y_key: str | None = typer.Option(None, help=Y_KEY_HELP),
    data_dir: str | None = typer.Option(None, help="Folder of local dataset copies."),
    k: int = typer.Option(5, help="Neighbours for trustworthiness and continuity."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the metrics as JSON to this file."),
):
    """Embed labelled DATA with a saved model and print clustering and retrieval metrics as JSON."""
    import numpy as np

    from norank.estimator import NoRankEmbedder
    from norank.metrics import evaluate as evaluate_embedding

    if out is not None:
        out = _check_output(out, "--out", "file")
    est = NoRankEmbedder.load(model_dir)
    ds = _read_data(data, x_key, y_key, data_dir)
    if ds.y is None:
        raise CLIError(f"{data} holds no labels; evaluation needs them (key y or target, or --y-key).")
    X = np.asarray(ds.X)
    metrics = evaluate_embedding(est.transform(X), ds.y, X=X, k=k)
    text = json.dumps({k_: float(v) for k_, v in metrics.items()}, indent=2)
    typer.echo(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def _split(text: str | None) -> list[str] | None:
    """The non-empty items of a comma-separated option, or None when the option is not given."""
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


@app.command()
def reproduce(
    out: Path = typer.Option(
        Path("results"), "--out", "-o", help="Output folder: results.json, results.csv, report.md, figures/."
    ),
    datasets: str | None = typer.Option(
        None, help=f"Comma-separated dataset names among {', '.join(DATASET_NAMES)} (default: every one available)."
    ),
    methods: str | None = typer.Option(None, help="Comma-separated method names (default: norank and every baseline)."),
    seeds: int = typer.Option(
        5,
        help="How many report seeds (1000-1004, seen by no choice) the held-out protocol "
        "runs (stratified 70/30 splits).",
    ),
    seed_list: str | None = typer.Option(
        None, help="Comma-separated tuning seeds (0-999) instead of report seeds, for tuning runs only."
    ),
    study_seeds: int = typer.Option(3, help="How many of those seeds the studies use (at most --seeds)."),
    protocol: str = typer.Option("both", help="heldout, insample or both."),
    quick: bool = typer.Option(False, "--quick", help="Small, fast run: fewer seeds, epochs and studies."),
    data_dir: str | None = typer.Option(None, help="Folder of local dataset copies (default $NORANK_DATA_DIR)."),
    studies: str | None = typer.Option(
        None, help="Comma-separated studies to run (default: all; none for the main table only)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Keep the finished runs in --out and run only the missing ones."
    ),
    rerun: str | None = typer.Option(
        None, help="With --resume: comma-separated methods to run again (norank includes its study variants)."
    ),
):
    """Run the paper's experiments under both protocols and write tables, a report and figures."""
    from norank.experiments import run_reproduce

    if protocol not in ("heldout", "insample", "both"):
        raise CLIError(f"--protocol {protocol!r}: use heldout, insample or both.")
    _check_output(out, "--out", "dir")
    chosen: int | list[int] = seeds  # a number of report seeds, or the tuning seeds themselves
    if seed_list is not None:
        try:
            chosen = [int(v) for v in _split(seed_list) or ()]
        except ValueError:
            raise CLIError(f"--seed-list {seed_list!r}: give comma-separated integers, e.g. 0,1,2.") from None
    run_reproduce(
        out=out,
        datasets=_split(datasets),
        methods=_split(methods),
        seeds=chosen,
        protocol=protocol,
        quick=quick,
        data_dir=data_dir,
        studies=_split(studies),
        command=" ".join(sys.argv),
        resume=resume,
        study_seeds=study_seeds,
        rerun=_split(rerun),
    )


def _click():
    """The click that typer runs on: its own copy (`typer._click`, typer >= 0.2x) or the click package."""
    import typer.core

    return getattr(typer.core, "_click", None) or typer.core.click  # type: ignore[attr-defined]  # older typer


def main(argv=None) -> None:
    """Entry point of `norank` and `python -m norank`: usage errors and bad input exit 2, Ctrl-C exits 130."""
    exceptions = _click().exceptions
    try:
        # Called with argv (from Python), usage lines say `norank`; from a shell, click names the program.
        status = app(args=argv, prog_name=None if argv is None else "norank", standalone_mode=False)
    except exceptions.ClickException as exc:  # unknown option, bad value, missing argument: typer's message
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:  # outside a command; typer turns one inside a command into status 130
        status = INTERRUPTED
    except (CLIError, ValueError, TypeError, FileNotFoundError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    if status == INTERRUPTED:
        typer.echo("interrupted (Ctrl-C)", err=True)
    if isinstance(status, int) and status:
        sys.exit(status)
