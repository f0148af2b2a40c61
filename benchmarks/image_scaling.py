"""Global against per-pixel standardisation of images (issue 10, item 5).

Trains the default recipe on an image dataset once per seed and variant and prints the
test accuracy of each run as a Markdown table.  The recorded numbers are in
``docs/training.md``.

Usage: ``python benchmarks/image_scaling.py [DATASET] [SEED ...] [--epochs N]``
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from backprop.data import Preprocessor, load_dataset
from backprop.training import TrainConfig, evaluate, train


def run(dataset: str, seed: int, per_feature: bool, epochs: int | None) -> tuple[float, float]:
    """Test accuracy and seconds of one default training run with the chosen scaling."""
    ds = load_dataset(dataset, seed=0)
    original = Preprocessor.fit
    Preprocessor.fit = functools.partial(original.__func__, Preprocessor, per_feature=per_feature)  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        model, _ = train(ds, TrainConfig(seed=seed, epochs=epochs), progress=False)
        seconds = time.perf_counter() - start
    finally:
        Preprocessor.fit = original  # type: ignore[method-assign]
    assert model.pre.standardization == ("per-feature" if per_feature else "global")
    return evaluate(model, ds.X_test, ds.y_test)["accuracy"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="digits")
    parser.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    print(f"| {args.dataset} seed | per-pixel | global |")
    print("|---|---|---|")
    acc: dict[bool, list[float]] = {True: [], False: []}
    for seed in args.seeds:
        row = []
        for per_feature in (True, False):
            a, _ = run(args.dataset, seed, per_feature, args.epochs)
            acc[per_feature].append(a)
            row.append(f"{a:.4f}")
        print(f"| {seed} | {' | '.join(row)} |", flush=True)
    print(f"| mean | {np.mean(acc[True]):.4f} | {np.mean(acc[False]):.4f} |")


if __name__ == "__main__":
    main()
