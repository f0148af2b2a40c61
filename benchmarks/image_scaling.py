"""Per-pixel, global, and per-pixel-mean-with-one-scale standardisation of images (issue 10).

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

from backprop.config import TrainConfig
from backprop.data import Preprocessor, load_dataset
from backprop.report import evaluate
from backprop.run import train

#: Column name -> Preprocessor.fit options.
VARIANTS = {
    "per-pixel": {"per_feature": True},
    "global": {"per_feature": False, "per_feature_mean": False},
    "pixel mean, one scale": {"per_feature": False, "per_feature_mean": True},
}


def run(dataset: str, seed: int, variant: str, epochs: int | None) -> tuple[float, float]:
    """Test accuracy and seconds of one default training run with the chosen scaling."""
    ds = load_dataset(dataset, seed=0)
    original = Preprocessor.fit
    options = VARIANTS[variant]
    Preprocessor.fit = functools.partial(original.__func__, Preprocessor, **options)  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        model, _ = train(ds, TrainConfig(seed=seed, epochs=epochs), progress=False)
        seconds = time.perf_counter() - start
    finally:
        Preprocessor.fit = original  # type: ignore[method-assign]
    return evaluate(model, ds.X_test, ds.y_test)["accuracy"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="digits")
    parser.add_argument("seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    print(f"| {args.dataset} seed | {' | '.join(VARIANTS)} |")
    print("|---" * (len(VARIANTS) + 1) + "|")
    acc: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in args.seeds:
        for variant in VARIANTS:
            acc[variant].append(run(args.dataset, seed, variant, args.epochs)[0])
        print(f"| {seed} | {' | '.join(f'{a[-1]:.4f}' for a in acc.values())} |", flush=True)
    print(f"| mean | {' | '.join(f'{np.mean(a):.4f}' for a in acc.values())} |")


if __name__ == "__main__":
    main()
