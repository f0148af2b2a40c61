"""``backprop predict MODEL INPUT``: a saved model's predictions for a CSV, NPY or IDX
file, to stdout or to an atomically written ``--output`` file (.csv or .npy)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from backprop._fileutil import atomic_path
from backprop.cli.common import CLIError, HelpFormatter
from backprop.data import read_idx, read_npy
from backprop.data.formats import printable
from backprop.data.tables import read_csv_columns
from backprop.io import Model, load

__all__ = ["add_parser", "run"]


def _read_inputs(path: Path, model: Model) -> np.ndarray:
    """Raw inputs for ``model`` from a CSV, NPY or IDX file, as the file holds them.

    Scaling is the model's business (its preprocessor), so the same images give the same
    answers whatever the container. CSV columns are matched by name
    (`Preprocessor.select_columns`).
    """
    if not path.exists():
        raise CLIError(f"{path}: no such file")
    if path.is_dir():
        raise CLIError(f"{path}: is a directory, expected a .csv, .npy or IDX file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_csv_columns(path, model.net.dtype)
        if table.header is None:
            table.refuse_text(table.text)
            return model.pre.select_columns(table.values, None, str(path))
        # Text columns other than the model's inputs (string labels, an id) are ignored.
        order = model.pre.column_order(table.header, str(path))
        table.refuse_text(order)
        return table.values[:, order]
    A = read_npy(path) if suffix == ".npy" else read_idx(path)
    if A.ndim == 1:  # one feature per row, or one example
        A = A.reshape(-1, 1) if model.n_features == 1 else A.reshape(1, -1)
    return A


def run(args: argparse.Namespace) -> int:
    """``backprop predict``: predict for INPUT, write the table to stdout or --output."""
    model = load(args.model)
    if args.proba and not model.is_classifier:
        raise CLIError("--proba needs a classifier; this model is a regressor")
    out = Path(args.output) if args.output is not None else None
    if out is not None and out.suffix.lower() not in (".csv", ".npy"):
        raise CLIError(f"--output {out}: unsupported extension; use .csv or .npy")
    if out is not None and not out.parent.is_dir():
        raise CLIError(f"--output {out}: directory {out.parent} does not exist")
    X = _read_inputs(Path(args.input), model)
    try:  # the model's preprocessor checks the width and warns on an unexpected range
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = model.predict_proba(X) if args.proba else model.predict(X)
    except ValueError as exc:
        raise CLIError(f"{args.input}: {exc}") from None
    for w in caught:  # one line each, without Python's source-line echo
        print(printable(f"backprop predict: warning: {args.input}: {w.message}"), file=sys.stderr)
    if args.proba:
        classes = np.arange(values.shape[1]) if model.classes is None else model.classes
        header = [f"p_{c}" for c in classes]
    else:
        header = (
            ["prediction"]
            if values.ndim == 1
            else [f"prediction_{j}" for j in range(values.shape[1])]
        )
    if out is not None and out.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, values, allow_pickle=False)
        with _atomic_path(out) as tmp:
            tmp.write_bytes(buf.getvalue())
        return 0
    text = _csv_text(header, values)
    if out is None:
        sys.stdout.write(text)
    else:
        with _atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return 0


def _csv_text(header: list[str], values: np.ndarray) -> str:
    """A CSV document: a header row, then one row per example (floats round-trip)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    rows = values.reshape(len(values), -1)
    for row in rows.tolist():
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``predict`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "predict",
        help="predictions of a saved model for a CSV, NPY or IDX file",
        description="Predict with a saved model. INPUT holds raw values as training saw "
        "them (digits pixels 0..16, uint8 images 0..255: the model scales them itself): a "
        ".npy array of any integer or float dtype, shape (n, d) or (n, h, w) for images; an "
        "IDX image file; or a numeric CSV file. CSV columns are matched by name: with a "
        "header holding the model's feature names those columns are used in the model's "
        "order; otherwise columns named label, target, y, id, index, 'Unnamed: 0' or with "
        "an empty name are dropped and the rest must be exactly the model's inputs; a "
        "headerless CSV must have exactly that many columns. Anything else is refused. The "
        "output has a header row and one row per input row: the predicted label (or "
        "value), or with --proba one probability per class.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    p.add_argument("input", metavar="INPUT", help="a .csv, .npy or IDX (.gz or raw) file")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default=None,
        help="write here instead of stdout; .csv or .npy chooses the format (written atomically)",
    )
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.set_defaults(func=run)


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` that is renamed onto it if the block succeeds.

    On any failure (including Ctrl-C) the temporary file is removed and ``path`` is left
    as it was: never a half-written file under the final name.
    """
    if path.is_dir():
        raise CLIError(f"{path}: is a directory, not a file name")
    if not path.parent.is_dir():
        raise CLIError(f"{path}: directory {path.parent} does not exist")
    with atomic_path(path) as tmp:
        yield tmp
