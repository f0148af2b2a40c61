"""``backprop evaluate MODEL``: a saved model's scores on held-out data.

The dataset is the one the model records (a file by its absolute path, with its target
and dropped columns), split with the model's training seed so the test rows are those
``train`` held out. Any other file given with ``--data`` is scored on every row. Inputs
are matched by column name, labels through the model's class labels.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from backprop.cli.argtypes import nonnegative_int
from backprop.cli.common import CLIError, HelpFormatter, add_data_flags
from backprop.data import NAMED_DATASETS, Dataset, LabelEncoder, load_dataset
from backprop.data.formats import MissingColumnError
from backprop.io import Model
from backprop.io import load as load_model
from backprop.report import score_line, test_scores

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop evaluate``: print the model's test scores (or a JSON object)."""
    model = load_model(args.model)
    task = "classification" if model.is_classifier else "regression"
    config = model.config
    recorded = config.get("dataset")
    data = args.data if args.data is not None else recorded
    if data is None:
        raise CLIError(f"{args.model} does not record its dataset: give --data NAME|PATH")
    if args.data is None and data not in NAMED_DATASETS and not Path(data).exists():
        raise CLIError(
            f"{args.model} was trained on {recorded!r}, which is not there any more (or was "
            "recorded without its directory): give --data PATH"
        )
    if args.task is not None and args.task != task:
        raise CLIError(f"--task {args.task}: the model is a {task} model")
    # A file other than the training data is scored on every row; the training data (or a
    # named dataset) on the test split `train` held out, from the model's training seed.
    every_row = data not in NAMED_DATASETS and not _same_file(data, recorded)
    seed = args.seed if args.seed is not None else int(config.get("seed", 0))
    recorded_target = config.get("target")
    load = functools.partial(
        load_dataset,
        data,
        data_dir=args.data_dir,
        task=task,
        drop=args.drop or config.get("drop") or (),
        seed=seed,
        dtype=model.net.dtype,
        every_row=every_row,
    )
    try:
        ds = load(target=args.target if args.target is not None else recorded_target)
    except MissingColumnError:
        if args.target is not None or not every_row:
            raise
        # Another file may name its labels otherwise: the rule for a file without --target.
        ds = load(target=None)
    if ds.feature_names is not None:  # a CSV header: columns matched by name
        ds = dataclasses.replace(
            ds, X_test=model.pre.select_columns(ds.X_test, ds.feature_names, ds.name)
        )
    if ds.X_test.shape[1] != model.n_features:
        raise CLIError(
            f"model expects {model.n_features} features per row, dataset {ds.name!r} has "
            f"{ds.X_test.shape[1]}"
        )
    result = test_scores(model, ds, _model_targets(model, ds, ds.y_test))
    n = len(ds.X_test)
    doc = {"model": args.model, "data": ds.name, "task": task, "n_test": n, "every_row": every_row}
    doc.update({k: float(v) for k, v in result.items()})
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        name = ds.name + (" (every row)" if every_row else "")
        print(score_line(name, task, n, result, loss=model.net.loss))
    return 0


def _same_file(data: str, recorded: object) -> bool:
    """Whether ``data`` names the file the model was trained on."""
    if not isinstance(recorded, str) or recorded in NAMED_DATASETS:
        return False
    try:
        return Path(data).resolve() == Path(recorded).resolve()
    except OSError:
        return False


def _model_targets(model: Model, ds: Dataset, y: np.ndarray) -> np.ndarray:
    """Dataset targets ``y`` in the model's own encoding: a classifier's class indices of
    ``ds.classes`` re-encoded as indices of ``model.classes``; a regressor's as they are."""
    if not model.is_classifier:
        return y
    assert ds.classes is not None
    model_classes = model.labels
    assert model_classes is not None  # a classifier has labels
    return LabelEncoder(model_classes).transform(
        np.asarray(ds.classes)[y], what="evaluation labels", among="the model's classes"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "evaluate",
        help="a saved model's accuracy and loss (or RMSE) on held-out data",
        description="Evaluate a saved model: accuracy and cross-entropy for a classifier, "
        "RMSE and squared-error loss for a regressor. On the data it was trained on (the "
        "default) the scores are on the test split train held out; any other file given "
        "with --data is scored on every row. CSV columns are matched by name, labels "
        "through the model's class labels.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    add_data_flags(p, default_data=None)
    for action in p._actions:  # --data defaults to the dataset the model records
        if action.dest == "data":
            action.required = False
            action.help = f"{action.help} (default: the dataset the model was trained on)"
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=None,
        help="seed of the test split for files without one (default: the model's training "
        "seed, so the split is the one train held out)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)
