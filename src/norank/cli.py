"""The `norank` command line: fit, embed, evaluate, reproduce.

`norank fit` takes every NoRankEmbedder keyword as an option (`--margin 0.3`, `--hidden-layer-sizes
512,256`), built from the estimator's own signature so the two never drift apart. Errors print one line
and exit with status 2; there is no traceback for bad input.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=(
        "No-rank tensor decomposition by metric learning: learn an embedding of labelled tensors "
        "(images, connectivity matrices, volumes) where distance follows class similarity.\n\n"
        "DATA is a .npy/.npz/.mat/.h5/.csv file (arrays under the keys X or images, labels under y or "
        "target) or a dataset name: olivetti, lfw, abide, digits, galaxy, crystal, galaxy-hard, crystal-hard."
    ),
)

DATA_HELP = "A .npy/.npz/.mat/.h5/.csv file (keys X/images and y/target) or a dataset name such as digits."


class CLIError(Exception):
    """A user-facing error: printed as one line."""


def _read_data(data: str, x_key: Optional[str], y_key: Optional[str], data_dir: Optional[str], mmap: bool = False):
    from norank import datasets

    path = Path(data)
    if path.suffix:
        if not path.exists():
            raise CLIError(f"{data}: no such file; pass a .npy/.npz/.mat/.h5/.csv file or a dataset name.")
        kwargs = {"x_key": x_key, "y_key": y_key}
        if mmap and path.suffix == ".npy":
            kwargs["mmap"] = True
        return datasets.load_file(path, **kwargs)
    return datasets.load(data, data_dir=data_dir)


def _param_help() -> dict[str, str]:
    """Parameter descriptions from the estimator's numpydoc docstring."""
    from norank.estimator import NoRankEmbedder

    doc = inspect.getdoc(NoRankEmbedder) or ""
    section = doc.split("Parameters\n----------\n", 1)[-1].split("\n\nAttributes", 1)[0]
    out: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        if line and not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",")]
            for n in names:
                out[n] = line.split(":", 1)[1].strip() if ":" in line else ""
        elif line.strip():
            for n in names:
                out[n] += " " + line.strip()
    return out


def _parse_value(name: str, text: str, default):
    if text is None:
        return default
    if name == "hidden_layer_sizes":
        try:
            return tuple(int(v) for v in re.split(r"[,\s]+", text.strip("()[] ")) if v)
        except ValueError:
            raise CLIError(f"--hidden-layer-sizes {text!r}: give comma-separated integers, e.g. 512,256.") from None
    if text.lower() in ("none", "null"):
        return None
    if isinstance(default, bool) or text.lower() in ("true", "false"):
        if text.lower() not in ("true", "false"):
            raise CLIError(f"--{name.replace('_', '-')} {text!r}: give true or false.")
        return text.lower() == "true"
    for cast in (int, float):
        if isinstance(default, cast) or default is None:
            try:
                return cast(text)
            except ValueError:
                continue
    return text


def _fit_command():
    """Build `norank fit` with one option per NoRankEmbedder parameter."""
    from norank.estimator import NoRankEmbedder

    helps = _param_help()
    estimator_params = [p for p in inspect.signature(NoRankEmbedder).parameters.values()]
    params = [
        inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                          default=typer.Argument(..., help=DATA_HELP, show_default=False)),
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                          default=typer.Option(..., "--out", "-o", help="Directory to write the model to.")),
        inspect.Parameter("x_key", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                          default=typer.Option(None, help="Key of the samples in the file (default X or images).")),
        inspect.Parameter("y_key", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                          default=typer.Option(None, help="Key or column of the labels (default y or target).")),
        inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                          default=typer.Option(None, help="Folder of local dataset copies (default $NORANK_DATA_DIR).")),
        inspect.Parameter("labels", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                          default=typer.Option(None, help="A .npy file of labels, for DATA without labels (a .npy array).")),
    ]
    for p in estimator_params:
        default = p.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        params.append(inspect.Parameter(
            p.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
            default=typer.Option(None, f"--{p.name.replace('_', '-')}", help=f"{helps.get(p.name, '')} [default: {shown}]",
                                 show_default=False, rich_help_panel="Model options"),
        ))

    def fit(**kwargs):
        import numpy as np

        from norank import distributed

        data, out = kwargs.pop("data"), kwargs.pop("out")
        x_key, y_key, data_dir = kwargs.pop("x_key"), kwargs.pop("y_key"), kwargs.pop("data_dir")
        labels = kwargs.pop("labels")
        options = {p.name: _parse_value(p.name, kwargs[p.name], p.default) for p in estimator_params}
        ds = _read_data(data, x_key, y_key, data_dir, mmap=True)
        y = ds.y
        if labels is not None:
            if not Path(labels).is_file():
                raise CLIError(f"--labels {labels}: no such file; pass a .npy array with one label per sample.")
            y = np.load(labels, allow_pickle=False)
        if y is None:
            raise CLIError(f"{data} holds no labels; store them under the key y or target, or pass --labels FILE.npy.")
        distributed.setup()
        est = NoRankEmbedder(**options).fit(ds.X, y)
        if distributed.is_main_process():
            est.save(out)
            h = est.history_
            typer.echo(f"fitted {len(y)} samples with the {est.encoder_kind_} encoder in {est.n_epochs_} epochs "
                       f"(final loss {h['loss'][-1]:.4f}, active anchors {h['active_fraction'][-1]:.2f}); "
                       f"model saved to {out}")
        distributed.teardown()

    fit.__signature__ = inspect.Signature(params)
    fit.__doc__ = "Train a NoRankEmbedder on DATA and save it to --out. Every model option has a flag."
    return fit


app.command("fit")(_fit_command())


@app.command()
def embed(
    model_dir: Path = typer.Argument(..., help="A model directory written by `norank fit`."),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the embeddings (.npy)."),
    x_key: Optional[str] = typer.Option(None, help="Key of the samples in the file."),
    data_dir: Optional[str] = typer.Option(None, help="Folder of local dataset copies."),
):
    """Embed DATA with a saved model and write the (n, embedding_dim) float32 array to --out."""
    import numpy as np

    from norank.estimator import NoRankEmbedder

    est = NoRankEmbedder.load(model_dir)
    ds = _read_data(data, x_key, None, data_dir, mmap=True)
    Z = est.transform(ds.X)
    np.save(out, Z)
    typer.echo(f"wrote {Z.shape[0]} × {Z.shape[1]} embeddings to {out}")


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="A model directory written by `norank fit`."),
    data: str = typer.Argument(..., help=DATA_HELP + " Must hold labels."),
    x_key: Optional[str] = typer.Option(None, help="Key of the samples in the file."),
    y_key: Optional[str] = typer.Option(None, help="Key or column of the labels."),
    data_dir: Optional[str] = typer.Option(None, help="Folder of local dataset copies."),
    k: int = typer.Option(5, help="Neighbours for trustworthiness and continuity."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the metrics as JSON here."),
):
    """Embed labelled DATA with a saved model and print clustering and retrieval metrics as JSON."""
    import numpy as np

    from norank.estimator import NoRankEmbedder
    from norank.metrics import evaluate as evaluate_embedding

    est = NoRankEmbedder.load(model_dir)
    ds = _read_data(data, x_key, y_key, data_dir)
    if ds.y is None:
        raise CLIError(f"{data} holds no labels; evaluation needs them (key y or target, or --y-key).")
    X = np.asarray(ds.X)
    metrics = evaluate_embedding(est.transform(X), ds.y, X=X, k=k)
    text = json.dumps({k_: float(v) for k_, v in metrics.items()}, indent=2)
    typer.echo(text)
    if out is not None:
        Path(out).write_text(text + "\n")


@app.command()
def reproduce(
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Output folder: results.json, results.csv, report.md, figures/."),
    datasets: Optional[str] = typer.Option(None, help="Comma-separated dataset names (default: every one available)."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated method names (default: norank and every baseline)."),
    seeds: int = typer.Option(5, help="Seeds of the held-out protocol (stratified 70/30 splits)."),
    study_seeds: int = typer.Option(3, help="How many of those seeds the studies use (at most --seeds)."),
    protocol: str = typer.Option("both", help="heldout, insample or both."),
    quick: bool = typer.Option(False, "--quick", help="Small, fast run: fewer seeds, epochs and studies."),
    data_dir: Optional[str] = typer.Option(None, help="Folder of local dataset copies (default $NORANK_DATA_DIR)."),
    studies: Optional[str] = typer.Option(None, help="Comma-separated studies to run (default: all; none for the main table only)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished runs in --out and run only the missing ones."),
    rerun: Optional[str] = typer.Option(None, help="With --resume: comma-separated methods to run again (norank includes its study variants)."),
):
    """Run the paper's experiments under both protocols and write tables, a report and figures."""
    from norank.experiments import run_reproduce

    if protocol not in ("heldout", "insample", "both"):
        raise CLIError(f"--protocol {protocol!r}: use heldout, insample or both.")
    split = lambda s: [v.strip() for v in s.split(",") if v.strip()] if s else None  # noqa: E731
    run_reproduce(out=out, datasets=split(datasets), methods=split(methods), seeds=seeds, protocol=protocol,
                  quick=quick, data_dir=data_dir, studies=split(studies), command=" ".join(sys.argv), resume=resume,
                  study_seeds=study_seeds, rerun=split(rerun))


def main(argv=None) -> None:
    """Entry point of `norank` and `python -m norank`: one-line errors, exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit:
        raise
    except (CLIError, ValueError, TypeError, FileNotFoundError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except Exception as exc:  # click's usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
