"""``backprop evaluate MODEL``: a saved model's scores on a dataset's test split.

The dataset is the one the model records (or ``--data``), split with the model's training
seed so the test rows are those ``train`` held out; labels are matched through the model's
class labels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from backprop.cli.argtypes import nonnegative_int
from backprop.cli.common import CLIError, HelpFormatter, add_data_flags
from backprop.data import Dataset, LabelEncoder, load_dataset
from backprop.io import Model, load
from backprop.report import score_line, test_scores

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop evaluate``: print the model's test scores (or a JSON object)."""
    model = load(args.model)
    task = "classification" if model.is_classifier else "regression"
    recorded = model.config.get("dataset") if isinstance(model.config, dict) else None
    data = args.data if args.data is not None else recorded
    if data is None:
        raise CLIError(f"{args.model} does not record its dataset: give --data NAME|PATH")
    if args.task is not None and args.task != task:
        raise CLIError(f"--task {args.task}: the model is a {task} model")
    seed = args.seed
    if seed is None:  # reproduce the training run's test split
        seed = int(model.config.get("seed", 0)) if isinstance(model.config, dict) else 0
    ds = load_dataset(
        data,
        data_dir=args.data_dir,
        task=task,
        target=args.target,
        seed=seed,
        dtype=model.net.dtype,
    )
    if ds.feature_names is not None:  # a CSV header: columns matched by name
        pick = model.pre.select_columns
        ds = dataclasses.replace(
            ds,
            X_train=pick(ds.X_train, ds.feature_names, ds.name),
            X_test=pick(ds.X_test, ds.feature_names, ds.name),
        )
    if ds.n_features != model.n_features:
        raise CLIError(
            f"model expects {model.n_features} features per row, dataset {ds.name!r} has "
            f"{ds.n_features}"
        )
    result = test_scores(model, ds, _model_targets(model, ds, ds.y_test))
    doc = {"model": args.model, "data": ds.name, "task": task, "n_test": len(ds.X_test)}
    doc.update({k: float(v) for k, v in result.items()})
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(score_line(ds.name, task, len(ds.X_test), result))
    return 0


def _model_targets(model: Model, ds: Dataset, y: np.ndarray) -> np.ndarray:
    """Dataset targets ``y`` in the model's own encoding: a classifier's class indices of
    ``ds.classes`` re-encoded as indices of ``model.classes``; a regressor's as they are."""
    if not model.is_classifier:
        return y
    assert ds.classes is not None
    n_classes = 2 if model.is_binary else model.net.n_outputs
    model_classes = np.arange(n_classes) if model.classes is None else np.asarray(model.classes)
    return LabelEncoder(model_classes).transform(
        np.asarray(ds.classes)[y], what="test labels", among="the model's classes"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "evaluate",
        help="a saved model's accuracy and loss (or RMSE) on a dataset's test split",
        description="Evaluate a saved model on the test split of a dataset: accuracy and "
        "cross-entropy for a classifier, RMSE and squared-error loss for a regressor. "
        "Labels are matched through the model's class labels.",
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
