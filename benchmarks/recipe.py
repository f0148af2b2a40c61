"""Measure the default training recipe: test accuracy (or RMSE) and wall time per dataset.

Run: ``.venv/bin/python benchmarks/recipe.py [digits diabetes fashion-mnist] [--key value]``
(``--key value`` overrides a `TrainConfig` field, e.g. ``--epochs 20 --lr 3e-3``).
Prints one line per dataset; the numbers in ``docs/training.md`` come from this script.
"""

from __future__ import annotations

import ast
import os
import sys
import time

from backprop.data import load_dataset
from backprop.training import TrainConfig, evaluate, train


def main(argv: list[str]) -> None:
    names = [a for a in argv if not a.startswith("--") and not _is_value(argv, a)]
    overrides = {
        argv[i][2:].replace("-", "_"): _value(argv[i + 1])
        for i in range(len(argv))
        if argv[i].startswith("--")
    }
    config = TrainConfig(**overrides)
    print(f"config: {config.to_dict()}  (cpus: {os.cpu_count()})")
    for name in names or ["digits", "diabetes", "fashion-mnist"]:
        ds = load_dataset(name)
        t0 = time.perf_counter()
        model, result = train(ds, config, progress=False)
        seconds = time.perf_counter() - t0
        metrics = evaluate(model, ds.X_test, ds.y_test)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(
            f"{name:14s} {shown}  epochs={result.epochs_run} best_epoch={result.best_epoch} "
            f"fit_seconds={result.train_seconds:.1f} total_seconds={seconds:.1f}"
        )


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
