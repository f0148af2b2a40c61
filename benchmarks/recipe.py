"""Measure the default training recipe: test accuracy (or RMSE) and wall time per dataset.

Run: ``.venv/bin/python benchmarks/recipe.py [digits diabetes fashion-mnist] [--key value]
[--recipe NAME] [--record FILE] [--out DIR]`` (``--key value`` overrides a `TrainConfig`
field, e.g. ``--epochs 20 --lr 3e-3``; ``--recipe NAME`` starts from a
`backprop.recipes.RECIPES` entry instead of the defaults, and the overrides win over it).
Prints one line per dataset.

``--record FILE`` merges each dataset's result (test metrics, epochs, best epoch, times)
with the machine, the load average before and after, the date and the config into the
JSON file ``FILE`` (one entry per dataset and options, e.g. ``digits``, ``digits --seed 1``
or ``fashion-mnist --recipe best --seed 1``, replaced when run again). The numbers quoted in
README.md and docs/ come from ``benchmarks/results/recipe.json``, written this way, and
``tests/test_docs.py`` checks them against it and re-runs the fast datasets.
``--out DIR`` also writes each run's result files (model, metrics.json, history.csv,
plots) into ``DIR/<dataset>/``, as ``backprop train`` does.
"""

from __future__ import annotations

import ast
import datetime
import fcntl
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_model  # benchmarks/ is on sys.path when a script here runs

from backprop._fileutil import atomic_path
from backprop.config import TrainConfig
from backprop.data import load_dataset
from backprop.report import evaluate
from backprop.run import train

#: Options of this script itself; every other ``--key value`` is a `TrainConfig` field.
SCRIPT_OPTIONS = ("record", "out", "recipe")


def main(argv: list[str]) -> None:
    names = [a for a in argv if not a.startswith("--") and not _is_value(argv, a)]
    options = {
        argv[i][2:].replace("-", "_"): argv[i + 1]
        for i in range(len(argv))
        if argv[i].startswith("--")
    }
    record = options.pop("record", None)
    out = options.pop("out", None)
    # The recipe stays in `options`: it is part of the run's record key.
    recipe = options.get("recipe")
    overrides = {k: _value(v) for k, v in options.items() if k != "recipe"}
    if recipe is None:
        config = TrainConfig(**overrides)
    else:
        config = TrainConfig.from_recipe(recipe, **overrides)
    print(f"config: {config.to_dict()}  (cpus: {os.cpu_count()})")
    for name in names or ["digits", "diabetes", "fashion-mnist"]:
        load_before = os.getloadavg()
        ds = load_dataset(name)
        t0 = time.perf_counter()
        run_out = None if out is None else Path(out) / name
        model, result = train(ds, config, progress=False, out=run_out)
        seconds = time.perf_counter() - t0
        metrics = evaluate(model, ds.X_test, ds.y_test, baseline_mean=_train_mean(ds))
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(
            f"{name:14s} {shown}  epochs={result.epochs_run} best_epoch={result.best_epoch} "
            f"fit_seconds={result.train_seconds:.1f} total_seconds={seconds:.1f}"
        )
        if record is not None:
            entry = {
                **{k: float(v) for k, v in metrics.items()},
                "epochs_run": int(result.epochs_run),
                "best_epoch": result.best_epoch,
                "kept": result.kept,
                "fit_seconds": float(result.train_seconds),
                "total_seconds": seconds,
                "n_train": len(ds.y_train),
                "n_test": len(ds.y_test),
                "overrides": overrides,
                "config": config.to_dict(),
                "command": "benchmarks/recipe.py " + " ".join(argv),
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "load_average_before": list(load_before),
                "load_average_after": list(os.getloadavg()),
            }
            write_record(Path(record), record_key(name, options), entry)


def record_key(name: str, options: dict[str, str]) -> str:
    """A run's record key: the dataset, then the overrides as typed (``digits --seed 1``)."""
    return " ".join([name, *(f"--{k.replace('_', '-')} {v}" for k, v in options.items())])


def machine() -> dict[str, Any]:
    """CPU model, core count, BLAS thread limit from the environment, library versions."""
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def write_record(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Replace ``name``'s entry in the JSON record at ``path`` (created if missing).

    Runs that finish at the same moment (trials side by side) each keep their entry: the
    read, merge and replace happen under an exclusive lock on ``.<name>.lock`` beside it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data[name] = entry
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _train_mean(ds: Any) -> Any:
    # The CLI's regression baseline: always predicting the training targets' mean.
    return None if ds.task == "classification" else np.asarray(ds.y_train, np.float64).mean(0)


def _value(text: str) -> object:
    """A Python literal (``3e-3``, ``(512,)``, ``None``), else the text itself (``adamw``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _is_value(argv: list[str], a: str) -> bool:
    i = argv.index(a)
    return i > 0 and argv[i - 1].startswith("--")


if __name__ == "__main__":
    main(sys.argv[1:])
