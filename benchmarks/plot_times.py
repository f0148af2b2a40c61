"""Seconds per result plot of a Fashion-MNIST-sized run (issue 24, item 1).

Run with ``python benchmarks/plot_times.py`` (``--quick``: one round, a smoke test). The
plots `backprop.report.write_results` draws are timed on synthetic data of a
Fashion-MNIST run's sizes: W1 of shape (784, 1024), 10,000 test images of 28 x 28 with
10 classes, 20 epochs of history. Each plot runs ``--rounds`` times, interleaved, and the
median is printed beside its ratio to a baseline timed in the same rounds: an empty
900 x 950 figure saved as PNG, the least a plot can cost, so the ratio stays comparable
on a busy machine where the seconds do not. The load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleave, median, timed

from backprop import plots
from backprop.callbacks import EpochLog, History

#: Fashion-MNIST's sizes: inputs, hidden units (the 1024-unit recipe), test set, classes.
D, M, N_TEST, C, EPOCHS = 784, 1024, 10_000, 10, 20
SHAPE = (28, 28)


def contenders(tmp: Path) -> dict[str, Callable[[], None]]:
    """The plots of a run, each drawing its PNG into ``tmp``, and the empty-figure baseline."""
    rng = np.random.default_rng(0)
    W1 = rng.normal(scale=0.05, size=(D, M)).astype(np.float32)
    X = rng.integers(0, 256, size=(N_TEST, D), dtype=np.uint8)
    y = rng.integers(0, C, N_TEST)
    pred = np.where(rng.random(N_TEST) < 0.9, y, rng.integers(0, C, N_TEST))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
    names += ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    history = History(
        [EpochLog(e, 1.0 / e, 1.1 / e, 0.8 + 0.005 * e, 1e-3, 2.0) for e in range(1, EPOCHS + 1)],
        metric_name="accuracy",
    )

    def empty() -> None:
        from matplotlib.figure import Figure

        Figure(figsize=(9, 9.5)).savefig(tmp / "empty.png", dpi=plots.DPI, format="png")

    return {
        "empty figure (baseline)": empty,
        "loss.png": lambda: plots.plot_loss(history, tmp / "loss.png", best_epoch=EPOCHS),
        "confusion.png": lambda: plots.plot_confusion(y, pred, names, tmp / "confusion.png"),
        "weights.png": lambda: plots.plot_first_layer_weights(W1, SHAPE, tmp / "weights.png"),
        "mistakes.png": lambda: plots.plot_mistakes(X, y, pred, names, SHAPE, tmp / "m.png"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="one round: a smoke test")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        todo = contenders(Path(tmp))
        for draw in todo.values():  # warm-up: fonts, colour maps, the PNG writer
            draw()
        times = interleave({k: timed(f) for k, f in todo.items()}, rounds)
    base = median(times["empty figure (baseline)"])
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {rounds} rounds, medians")
    print(f"{'plot':<26}{'seconds':>9}{'/ empty':>9}")
    total = 0.0
    for name, ts in times.items():
        s = median(ts)
        if name != "empty figure (baseline)":
            total += s
        print(f"{name:<26}{s:9.3f}{s / base:9.1f}")
    print(f"{'plots, total':<26}{total:9.3f}{total / base:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
